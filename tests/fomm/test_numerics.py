"""What the networks call: no matrix inverse, and every grid sample with the configured align_corners."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

import fomm


class Recorder(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[object, dict]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.calls.append((func, kwargs))
        return func(*args, **kwargs)


@pytest.mark.parametrize("align_corners", [True, False])
def test_networks_use_no_inverse_and_explicit_sampling(tiny, align_corners):
    model = fomm.build_fomm(tiny.with_align_corners(align_corners))
    animator = fomm.Animator(model)
    with Recorder() as rec:
        animator.set_source(torch.rand(1, 3, 64, 64))
        animator.step(torch.rand(2, 3, 64, 64))
        model.generator.forward_debug(torch.rand(1, 3, 64, 64), animator.kp_source, animator.kp_source)
    funcs = [f for f, _ in rec.calls]
    assert torch.inverse not in funcs and torch.linalg.inv not in funcs
    samples = [kw for f, kw in rec.calls if f is F.grid_sample]
    assert len(samples) == 2 + 3  # step: sparse + features; debug: sparse + features + deformed image
    assert all(kw.get("align_corners") is align_corners for kw in samples)
