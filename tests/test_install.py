"""A clean install: the wheel built from this checkout, installed into a fresh virtual environment, answers
``fomm-live --help`` and ``fomm --help`` from outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_IGNORE = shutil.ignore_patterns(
    ".git", "__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache", "build", "dist", "results", "artifacts"
)


def _run(cmd: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{cmd}: {proc.stderr[-3000:]}"
    return proc


def _source_copy(dest: Path) -> Path:
    """The checkout's files as git tracks them (a plain copy without caches when git is not there)."""
    try:
        cmd = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
        listed = subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True, timeout=60)
        files = [name for name in listed.stdout.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if not files:
        shutil.copytree(ROOT, dest, ignore=_IGNORE)
        return dest
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    return dest


@pytest.mark.slow
def test_wheel_installs_and_the_console_scripts_answer_help(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", reason="building the wheel needs setuptools (pip install -e '.[dev]')")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    src = _source_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", src, "-w", dist]
    _run(pip_wheel, env=env, cwd=tmp_path)
    (wheel,) = dist.glob("fomm_live-*.whl")

    venv = tmp_path / "venv"  # torch, OpenCV, PyAV come from the system site-packages; the package from the wheel
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], env=env)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel], env=env, cwd=tmp_path)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = _run([python, "-c", "import fomm, live; print(fomm.__file__); print(live.__file__)"], env=env, cwd=outside)
    for line in where.stdout.split():
        assert Path(line).resolve().is_relative_to(venv.resolve()), where.stdout  # the wheel, not the checkout
    assets = _run([python, "-c", "from fomm.media.assets import DEMO_MODEL as m; print(m.is_file())"], env=env)
    assert assets.stdout.strip() == "True"
    for script in ("fomm-live", "fomm"):
        proc = _run([bindir / script, "--help"], env=env, cwd=outside)
        assert proc.stdout.startswith(f"usage: {script} "), proc.stdout[:200]
