"""CI cannot pass without the official fixtures: ``.ci/run`` stops first, and under ``CI=true`` the tests that
need them fail instead of skipping."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _pytest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "CI"}
    environ.update(FOMM_FIXTURES=str(tmp_path / "no-fixtures"), PYTHONPATH=str(REPO), **env)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/fomm/test_keys.py", "-rs"]
    return subprocess.run(command, cwd=REPO, env=environ, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_missing_fixtures_fail_under_ci_and_skip_with_a_reason_elsewhere(tmp_path: Path) -> None:
    ci = _pytest(tmp_path, CI="true")
    assert ci.returncode == 1, ci.stdout[-2000:]
    assert "CI must run the parity tests" in ci.stdout and " passed" in ci.stdout and " skipped" not in ci.stdout
    local = _pytest(tmp_path)
    assert local.returncode == 0, local.stdout[-2000:]
    assert "official fixtures not found" in local.stdout and " skipped" in local.stdout


def test_ci_script_stops_first_without_the_fixtures(tmp_path: Path) -> None:
    checkout = tmp_path / "clone"
    (checkout / ".ci").mkdir(parents=True)
    shutil.copy(REPO / ".ci" / "run", checkout / ".ci" / "run")
    environ = {k: v for k, v in os.environ.items() if k != "FOMM_FIXTURES"}
    result = subprocess.run(
        ["bash", str(checkout / ".ci" / "run")], env=environ, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines and "shared/fixtures/official" in lines[-1] and "missing" in lines[-1], result.stderr[-2000:]
