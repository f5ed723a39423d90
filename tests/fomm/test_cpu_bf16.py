"""The bf16 check: native where oneDNN has bf16 kernels, slow (a reason) where not, silent when unknown."""

from __future__ import annotations

import pytest
import torch

from fomm import precision


@pytest.mark.parametrize(("native", "slow"), [(True, False), (None, False), (False, True)])
def test_slow_cpu_bf16_follows_onednn(monkeypatch, native, slow):
    monkeypatch.setattr(precision, "_native_bf16", lambda: native)
    why = precision.slow_cpu_bf16()
    assert (why is not None) == slow
    if slow:
        assert torch.backends.cpu.get_cpu_capability() in why and "slower than fp32" in why


def test_native_bf16_answers_on_this_build():
    assert precision._native_bf16() in (True, False)


def test_native_bf16_is_none_when_the_probe_is_missing(monkeypatch):
    def missing():
        raise RuntimeError("no such op")

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", missing, raising=False)
    assert precision._native_bf16() is None
