"""scripts/gpu_check_fast.py: its CPU dry run works, and no section failure stops the run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from fomm.kernels import triton_available

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check_fast.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("gpu_check_fast", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failing_section_is_recorded_and_the_run_goes_on(script, tmp_path):
    report = script.Report(tmp_path / "r.json", budget=100.0)

    def broken() -> dict:
        raise RuntimeError("no kernel image is available for execution on the device")

    report.section("broken", broken)
    report.section("fine", lambda: {"value": 1})
    report.section("late", lambda: {"value": 2}, needs=1000.0)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["broken"]["error"] == "RuntimeError: no kernel image is available for execution on the device"
    assert data["fine"]["value"] == 1
    assert data["late"]["skipped"].startswith("time budget")


@pytest.mark.skipif(not triton_available(), reason="needs triton (pip install 'fomm-live[gpu]')")
def test_cpu_dry_run_writes_the_kernel_checks(script, tmp_path, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    out = tmp_path / "dry.json"
    assert (
        script.main(["--device", "cpu", "--quick", "--sections", "kernels,onnxruntime,tensorrt", "--out", str(out)])
        == 0
    )
    data = json.loads(out.read_text())
    kernels = data["kernels"]
    assert kernels["interpreted"] and kernels["pass"], kernels.get("error")
    assert {r["dtype"] for r in kernels["rows"]} == {"float32", "float16"}
    assert {r["align_corners"] for r in kernels["rows"]} == {True, False}
    assert kernels["max_abs_error"]["float32"] <= 1e-5
    for name in ("onnxruntime", "tensorrt"):  # ran or said why not, never crashed
        assert "error" not in data[name], data[name]
    assert data["environment"]["torch"] == torch.__version__


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer on a machine without CUDA")
def test_cuda_requested_without_cuda_exits_2(script, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert script.main(["--out", str(out)]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert "CUDA is not available" in json.loads(out.read_text())["error"]
