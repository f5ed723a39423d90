"""``fomm doctor``: says what this machine has and what is missing; the tiny-engine self-check on a GPU."""

from __future__ import annotations

import pytest
import torch

import engines.trt as trt_module
from engines.doctor import diagnose, self_check
from engines.errors import EngineError
from fomm.cli import main

pytest_plugins = ["engine_fixtures"]


def test_doctor_reports_what_is_missing(trt, capsys: pytest.CaptureFixture[str], monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FOMM_ENGINE_CACHE", str(tmp_path / "engines"))
    assert main(["doctor"]) == 0
    out = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    out = {k.strip(): v.strip() for k, v in out.items()}
    assert out["torch"] == torch.__version__
    assert out["engine cache"] == f"{tmp_path / 'engines'} (0 engines)"
    if not torch.cuda.is_available():
        assert out["GPU"] == "none visible to torch"
        assert out["self-check"].startswith("skipped")
        assert "a CUDA GPU" in out["missing"]
    info = trt_module.load_tensorrt()
    assert out["TensorRT"] == f"{info.label} ({info.flavour})"
    if info.is_rtx:
        assert "no plugin layers" in out["warp plugin"] and "standard graph" in out["warp plugin"]


def test_doctor_without_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(prefer=None):
        raise EngineError("TensorRT is not installed; install TensorRT: pip install -e .[trt]")

    monkeypatch.setattr(trt_module, "load_tensorrt", missing)
    lines = dict(diagnose(run_self_check=True))
    assert lines["TensorRT"] == "not installed"
    assert "pip install -e .[trt]" in lines["missing"]
    assert "warp plugin" not in lines


@pytest.mark.gpu
@pytest.mark.trt
def test_self_check_on_gpu() -> None:
    torch.backends.cudnn.allow_tf32 = False
    diff, ms = self_check()
    assert diff < 1e-4 and ms > 0
