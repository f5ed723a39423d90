"""``run_live.py`` as a user runs it: signals, a network camera that drops, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streams import have_ffmpeg, serve_stream
from vcam_backend import RecordingBackend, read_log, write_sitecustomize

from fomm.media.assets import DEFAULT_DRIVING
from live.app import run
from live.config import LiveConfig
from live.sinks import NullSink
from live.types import View

ROOT = Path(__file__).resolve().parents[2]
pyvirtualcam = pytest.importorskip("pyvirtualcam", reason="pyvirtualcam is not installed (pip install -e '.[live]')")


def _env(tmp_path: Path, *, test_vcam: bool = True) -> dict[str, str]:
    """The subprocess environment; ``test_vcam`` registers the recording virtual camera backend."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    if test_vcam:
        write_sitecustomize(site)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "FOMM_TEST_VCAM_LOG": str(tmp_path / "vcam.jsonl"),
        "FOMM_LIVE_SETTINGS": str(tmp_path / "settings.json"),
        "PYTHONUNBUFFERED": "1",
    }


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(ROOT / "run_live.py"), *args]
    return subprocess.Popen(
        cmd, cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_frames(log: Path, n: int, proc: subprocess.Popen[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(e["event"] == "frame" for e in read_log(log)) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"run_live.py exited early ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail("no frames reached the virtual camera in time")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_signal_shuts_down_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    stats, out = tmp_path / "stats.json", tmp_path / "out.mp4"
    proc = _start(
        tmp_path, "--camera", str(DEFAULT_DRIVING), "--vcam", "--vcam-backend", "fomm-test",
        "--stats", str(stats), "--output", str(out),
    )  # fmt: skip
    _wait_for_frames(tmp_path / "vcam.jsonl", 5, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    events = read_log(tmp_path / "vcam.jsonl")
    assert [e["event"] for e in events].count("close") == 1 and events[-1]["event"] == "close"
    frames = sum(e["event"] == "frame" for e in events)
    data = json.loads(stats.read_text())
    assert data["frames"] == frames >= 5
    assert data["latency_ms"]["glass_to_glass"]["p95"] is not None
    import av

    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == frames
    assert "glass_to_glass" in err  # the percentile table is printed at exit
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["camera"] == str(DEFAULT_DRIVING)  # remembered for the next run


@pytest.mark.skipif(not have_ffmpeg(), reason="needs the ffmpeg executable (apt-get install -y ffmpeg)")
def test_network_camera_that_drops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", dict(pyvirtualcam.camera.BACKENDS))
    pyvirtualcam.register_backend("fomm-test", RecordingBackend)
    RecordingBackend.instances.clear()
    with serve_stream(DEFAULT_DRIVING) as (url, stop_server):
        config = LiveConfig(
            camera=url,
            preview=False,
            vcam=True,
            vcam_backend="fomm-test",
            stats=tmp_path / "s.json",
            remember=False,
            reconnect_seconds=1.0,
        )

        class DropAfter(NullSink):  # the stream drops mid-run, after 15 frames (however slow start-up was)
            def send(self, view: View) -> None:
                super().send(view)
                if self.frames == 15:
                    stop_server()

        started = time.monotonic()
        result = run(config, extra_sinks=[DropAfter()])
    assert time.monotonic() - started < 60
    assert result.stats.frames >= 15
    assert result.camera_lost is not None and "was lost" in result.camera_lost  # the caller exits with 1
    assert RecordingBackend.instances[0].close_calls == 1
    assert json.loads((tmp_path / "s.json").read_text())["frames"] == result.stats.frames


BAD = {
    "missing video": (["--camera", "missing.mp4"], "missing.mp4"),
    "camera that does not open": (["--camera", "7"], "camera 7 cannot be opened; cameras that open: none"),
    "missing avatar": (["--avatar", "nowhere.png"], "nowhere.png"),
    "not a checkpoint": (["--checkpoint", "{junk}"], "junk.pth.tar"),
    "wrong device": (["--device", "gpu0"], "gpu0"),
    "bad filter": (["--filter", "2"], "between 0 (off) and 1"),
    "bad size": (["--vcam-size", "big"], "WIDTHxHEIGHT"),
    "no virtual camera": (["--vcam"], "sudo modprobe v4l2loopback"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_is_one_line(tmp_path: Path, case: str) -> None:
    args, needle = BAD[case]
    junk = tmp_path / "junk.pth.tar"
    junk.write_text("not a checkpoint")
    args = [a.replace("{junk}", str(junk)) for a in args]
    cmd = [sys.executable, str(ROOT / "run_live.py"), "--no-remember", "--max-frames", "2", *args]
    env = _env(tmp_path, test_vcam=False)  # no virtual camera on this machine, as for a user without one
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(errors) == 1 and errors[0].startswith("run_live: error: ") and needle in errors[0], proc.stderr


def test_help_lists_keys() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_live.py"), "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 0
    assert "calibrate" in proc.stdout and "--vcam" in proc.stdout and "find best frame" in proc.stdout
