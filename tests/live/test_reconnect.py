"""A camera that goes away: reopened for a configurable window with backoff, then the run ends with exit
status 1 and one line; while no frame comes the preview is refreshed and the keys still work."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

import fomm  # noqa: E402
from fomm.media.assets import DEFAULT_DRIVING  # noqa: E402
from fomm.media.faces import find_yunet_model  # noqa: E402
from fomm.media.video import open_frames  # noqa: E402
from live.backends import TorchBackend  # noqa: E402
from live.capture import LatestFrameCapture  # noqa: E402
from live.cli import main  # noqa: E402
from live.crop import Framing  # noqa: E402
from live.loop import LoopOptions, run_loop  # noqa: E402
from live.pipeline import PuppetPipeline  # noqa: E402
from live.stats import LatencyStats  # noqa: E402
from live.types import Frame, View  # noqa: E402


@pytest.fixture(scope="module")
def real_frames() -> list[np.ndarray]:
    with open_frames(DEFAULT_DRIVING, max_frames=6) as frames:
        return [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]


def fake_camera(frames: list[np.ndarray]) -> type:
    """A webcam class for ``cv2.VideoCapture``: every instance opens and reads from the one live feed, ``frames``
    (a start-up probe takes a frame or two, the capture the rest); once they are out the camera is unplugged:
    reads fail, reopened instances open but never deliver."""
    feed = list(frames)

    class Camera:
        def __init__(self, *args: Any) -> None:
            pass

        def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
            return True

        def read(self) -> tuple[bool, np.ndarray | None]:
            time.sleep(0.01)
            return (True, feed.pop(0)) if feed else (False, None)

        def get(self, prop: int) -> float:
            return 0.0

        def set(self, prop: int, value: float) -> bool:
            return False

        def release(self) -> None:
            pass

    return Camera


def test_reconnect_window_backs_off_then_the_camera_is_lost(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, real_frames: list[np.ndarray]
) -> None:
    monkeypatch.setattr(cv2, "VideoCapture", fake_camera(real_frames[:3]))
    caplog.set_level(logging.WARNING, logger="live.capture")
    with LatestFrameCapture(0, realtime=False, reconnect_seconds=1.5, reconnect_delay=0.05) as capture:
        frames = [capture.read(timeout=2.0) for _ in range(3)]
        assert all(f is not None for f in frames)
        assert wait_for(lambda: capture.reconnecting, 2.0)
        started = time.perf_counter()
        assert capture.read(timeout=5.0) is None
        waited = time.perf_counter() - started
        assert capture.ended and capture.lost and not capture.reconnecting
        assert "camera 0 was lost" in (capture.last_error or "")
    assert 1.0 < waited < 3.0
    pauses = [float(m.group(1)) for r in caplog.records if (m := re.search(r"reconnecting in ([\d.]+) s", r.message))]
    assert pauses[:4] == pytest.approx([0.05, 0.1, 0.2, 0.4])  # exponential backoff
    assert pauses == sorted(pauses[:-1]) + pauses[-1:]  # growing (the last one cut at the window's end)


def test_a_file_that_ends_is_not_lost() -> None:
    with LatestFrameCapture(DEFAULT_DRIVING, realtime=False, reconnect_seconds=1.0) as capture:
        while capture.read(timeout=5.0) is not None:
            pass
        assert capture.ended and not capture.lost


def wait_for(condition: Any, limit: float) -> bool:
    end = time.perf_counter() + limit
    while time.perf_counter() < end:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_lost_camera_exits_1_with_one_line_and_keeps_the_recording(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, real_frames: list[np.ndarray]
) -> None:
    try:
        find_yunet_model()
    except Exception as exc:
        pytest.skip(f"face detector missing: {exc}")
    monkeypatch.setattr(cv2, "VideoCapture", fake_camera(real_frames))
    out = tmp_path / "out.mp4"
    args = ["--camera", "0", "--no-remember", "--no-preview", "--output", str(out), "--reconnect-seconds", "0.5"]
    status = main(args)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert status == 1, err
    assert len(errors) == 1 and errors[0].startswith("run_live: error: camera gone: camera 0 was lost")
    assert "Traceback" not in err
    assert out.is_file()  # the recording of what came before is kept


class _Framer:
    def __init__(self, size: int) -> None:
        self.size = size

    def crop_image(self, image: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
        return image[: self.size, : self.size].copy(), (0.0, 0.0, float(self.size))

    def __call__(self, image: np.ndarray) -> Framing:
        return Framing(image[: self.size, : self.size].copy(), (0.0, 0.0, float(self.size)), True, False, True, 1.0)

    def reset(self) -> None:
        pass


class _Reconnecting:
    """Two frames, then nothing: the camera is being reconnected (forever)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.frames = [Frame(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), i, time.perf_counter()) for i in (0, 1)]
        self.ended = False
        self.dropped = 0
        self.reconnecting = False

    def read(self, timeout: float | None = None, after_index: int = -1) -> Frame | None:
        if self.frames:
            return self.frames.pop(0)
        self.reconnecting = True
        time.sleep(timeout or 0.0)
        return None


class _KeySink:
    """Records views; presses ``q`` once it was shown a "reconnecting" status."""

    def __init__(self) -> None:
        self.views: list[View] = []

    def send(self, view: View) -> None:
        self.views.append(view)

    def poll_keys(self) -> list[int]:
        waiting = [v for v in self.views if getattr(v, "waiting", False)]
        return [ord("q")] if waiting else []


def test_keys_work_and_the_preview_is_refreshed_while_reconnecting(tiny: fomm.FommConfig) -> None:
    pipeline = PuppetPipeline(TorchBackend(fomm.build_fomm(tiny)), _Framer(64))  # type: ignore[arg-type]
    pipeline.set_source(np.full((64, 64, 3), 128, np.uint8))
    sink = _KeySink()
    stop = threading.Event()
    worker = threading.Thread(
        target=run_loop,
        args=(_Reconnecting(), pipeline, sink),
        kwargs={"stats": LatencyStats(), "stop": stop, "options": LoopOptions(read_timeout=0.05)},
        daemon=True,
    )
    worker.start()
    worker.join(10.0)
    quit_worked = not worker.is_alive()
    stop.set()
    worker.join(5.0)
    assert quit_worked, "q was not handled while no frame came"
    waiting = [v for v in sink.views if v.waiting]
    assert waiting and any("reconnecting" in line for line in waiting[0].lines)
    assert waiting[0].output is sink.views[1].output  # the last avatar frame, not a blank one
