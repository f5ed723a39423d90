"""The hardware markers select real tests, and without the hardware those tests skip with a reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_and_camera_tests_skip_with_a_reason_without_the_hardware() -> None:
    environ = {k: v for k, v in os.environ.items() if k not in ("FOMM_TEST_CAMERA", "CI")}
    environ.update(CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "-m", "gpu or camera or trt"]
    command += ["tests/fomm/test_devices.py", "tests/live/test_webcam.py", "tests/fomm/test_animator.py"]
    result = subprocess.run(command, cwd=REPO, env=environ, capture_output=True, text=True, timeout=300)
    out = result.stdout
    assert result.returncode == 0, out[-3000:]
    assert "needs a CUDA GPU" in out and "needs a real webcam: set FOMM_TEST_CAMERA" in out
    summary = out.strip().splitlines()[-1]
    assert "skipped" in summary and "passed" not in summary and "failed" not in summary, summary
    assert int(summary.split(" skipped")[0].split()[-1]) >= 4, summary
