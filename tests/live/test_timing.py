"""Time in the live tool: recordings last as long as the session that made them, and offline (every-frame) runs
of the same file are reproducible because everything time-dependent uses the frames' own timestamps."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

av = pytest.importorskip("av")

from fomm.media.assets import DEFAULT_DRIVING  # noqa: E402
from fomm.media.faces import find_yunet_model  # noqa: E402
from fomm.media.video import VideoWriter, open_frames  # noqa: E402
from live.app import run  # noqa: E402
from live.capture import LatestFrameCapture  # noqa: E402
from live.config import LiveConfig  # noqa: E402
from live.sinks import NullSink, VideoFileSink  # noqa: E402
from live.types import View  # noqa: E402


def _yunet_missing() -> str | None:
    try:
        find_yunet_model()
    except Exception as exc:
        return str(exc)
    return None


needs_yunet = pytest.mark.skipif(_yunet_missing() is not None, reason=f"YuNet missing: {_yunet_missing()}")


def probe(path: Path) -> tuple[float, list[float]]:
    """Duration (seconds) of a video file and its frames' presentation times."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(frame.pts * frame.time_base) for frame in container.decode(stream)]
        return container.duration / 1e6, times


def view(t: float, value: int = 0) -> View:
    image = np.full((64, 64, 3), value, np.uint8)
    return View(output=image, camera=image, timestamp=t)


@pytest.mark.parametrize("codec", ["auto", "mp4v"])
def test_recording_of_a_slow_producer_lasts_the_wall_time(tmp_path: Path, codec: str) -> None:
    """2 frames per second for 3 s into a file nominally at 25 fps: the file lasts 3 s (+ one frame)."""
    path = tmp_path / "slow.mp4"
    with VideoFileSink(path, 25, codec=codec) as sink:
        for k in range(7):
            sink.send(view(1000.0 + 0.5 * k, value=30 * k))
        sink.send(View(output=np.zeros((64, 64, 3), np.uint8), camera=np.zeros((8, 8, 3), np.uint8), waiting=True))
    duration, times = probe(path)
    assert duration == pytest.approx(3.04, abs=0.03)
    if codec == "auto":  # real presentation times: one frame per produced frame
        assert times == pytest.approx([0.5 * k for k in range(7)], abs=1e-3)
    else:  # fixed-rate fallback: each frame repeated until the next one came
        assert len(times) == 76


def test_writer_checks_timed_use(tmp_path: Path) -> None:
    frame = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="needs time="):
        VideoWriter(tmp_path / "a.mp4", 25, timed=True).write(frame)
    with pytest.raises(ValueError, match="timed=True"):
        VideoWriter(tmp_path / "b.mp4", 25).write(frame, time=0.0)
    writer = VideoWriter(tmp_path / "c.mp4", 25, timed=True)
    for t in (5.0, 5.0, 4.0, 5.2):  # repeated and backwards times are moved just after the previous frame
        writer.write(frame, time=t)
    writer.close()
    assert probe(tmp_path / "c.mp4")[1] == pytest.approx([0.0, 0.001, 0.002, 0.2])


def test_file_frames_carry_their_own_time() -> None:
    with LatestFrameCapture(DEFAULT_DRIVING, realtime=False) as capture:
        frames = [capture.read(timeout=5.0) for _ in range(5)]
    assert [f.media_time for f in frames if f is not None] == pytest.approx([i / 25 for i in range(5)])
    assert all(f is not None and f.time == f.media_time for f in frames)


def live_config(tmp_path: Path, **overrides: Any) -> LiveConfig:
    values: dict[str, Any] = {
        "camera": str(DEFAULT_DRIVING),
        "loop": False,
        "preview": False,
        "remember": False,
        "output": tmp_path / "out.mp4",
    }
    values.update(overrides)
    return LiveConfig(**values)


class Collect(NullSink):
    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.outputs: list[np.ndarray] = []
        self.grabbed_at: list[float] = []  # capture times (perf_counter) of the frames sent

    def send(self, view: View) -> None:
        super().send(view)
        if not getattr(view, "waiting", False):
            self.outputs.append(view.output.copy())
            self.grabbed_at.append(view.timestamp)
            time.sleep(self.delay)


@needs_yunet
def test_live_recording_of_a_slow_loop_lasts_the_session(tmp_path: Path) -> None:
    """The loop produces ~3 fps from a 25 fps camera-like clip: the recording plays as long as the run took."""
    slow = Collect(delay=0.3)
    result = run(live_config(tmp_path, max_frames=8, loop=True), extra_sinks=[slow])
    assert result.stats.frames == 8
    duration, times = probe(tmp_path / "out.mp4")
    wall = slow.grabbed_at[-1] - slow.grabbed_at[0]  # wall time between the first and last frame's capture
    assert wall > 2.0
    assert duration == pytest.approx(wall + 1 / 25, abs=0.15)
    assert len(times) == 8


@needs_yunet
def test_every_frame_runs_of_the_same_file_are_identical(tmp_path: Path) -> None:
    """Keypoint smoothing on: the filter's time steps come from the file, not from how fast this run went."""
    clip = tmp_path / "clip.mp4"
    with open_frames(DEFAULT_DRIVING, max_frames=16) as frames, VideoWriter(clip, 25) as writer:
        for frame in frames:
            writer.write(frame)
    runs = []
    for k, delay in enumerate((0.0, 0.05)):  # the second run is slower
        collect = Collect(delay=delay)
        config = live_config(tmp_path, camera=str(clip), realtime=False, output=None, filter_strength=0.8)
        result = run(config, extra_sinks=[collect])
        assert result.stats.frames == 16, k
        runs.append(collect.outputs)
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)
