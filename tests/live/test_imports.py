"""The live tool never imports training code (``fomm.train``): not its CLI, not a whole run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import contextlib, io, json, sys
from pathlib import Path

def training():
    return sorted(m for m in sys.modules if m == "fomm.train" or m.startswith("fomm.train."))

seen = {}
import live.cli
with contextlib.redirect_stdout(io.StringIO()):
    try:
        live.cli.main(["--help"])
    except SystemExit:
        pass
seen["help"] = training()

from fomm.media.assets import DEFAULT_DRIVING
from live.app import run
from live.config import LiveConfig

out = Path(sys.argv[1])
config = LiveConfig(
    camera=str(DEFAULT_DRIVING), loop=False, realtime=False, max_frames=3, preview=False, vcam=False,
    output=out / "out.mp4", stats=out / "stats.json", remember=False,
)
result = run(config)
seen["run"] = training()
seen["frames"] = (out / "out.mp4").stat().st_size > 0
print(json.dumps(seen))
"""


@pytest.mark.slow
def test_live_tool_imports_no_training_code(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["help"] == [], f"live.cli --help imported {seen['help']}"
    assert seen["run"] == [], f"a live run imported {seen['run']}"
    assert seen["frames"]
