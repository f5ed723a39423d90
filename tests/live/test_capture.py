"""LatestFrameCapture on the bundled face clip (a camera stand-in) and on a loopback ffmpeg stream."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from streams import have_ffmpeg, serve_stream

from fomm.media.video import VideoWriter, open_frames
from live.capture import CameraInfo, CaptureError, CaptureSource, LatestFrameCapture, list_cameras
from live.types import Frame

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / "fomm" / "assets" / "driving.mp4"  # 256x256, 25 fps, 250 frames
CLIP_FRAMES = 250
CLIP_FPS = 25.0

needs_ffmpeg = pytest.mark.skipif(not have_ffmpeg(), reason="needs the ffmpeg executable (apt-get install -y ffmpeg)")


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 2 s (50 frames) of the bundled clip, at 25 fps."""
    path = tmp_path_factory.mktemp("capture") / "short.mp4"
    with open_frames(CLIP, max_frames=50) as frames, VideoWriter(path, CLIP_FPS) as writer:
        for frame in frames:
            writer.write(frame)
    return path


# Waits are event-driven with generous limits (a loaded machine only makes them take longer); the assertions are
# on counts and order. The only time checks left are lower bounds (pacing never runs faster than the clip), which
# load cannot break.
PATIENCE = 60.0  # seconds: only a hung test ever reaches this


def read_all(capture: LatestFrameCapture, limit_s: float = PATIENCE, timeout: float = 10.0) -> list[Frame]:
    """Frames until the source ends; fails the test after ``limit_s`` seconds (a hang, not a slow machine)."""
    frames: list[Frame] = []
    deadline = time.perf_counter() + limit_s
    while (frame := capture.read(timeout=timeout)) is not None:
        frames.append(frame)
        assert time.perf_counter() < deadline, f"still reading after {limit_s} s"
    return frames


def wait_until(condition: Callable[[], bool], limit_s: float = PATIENCE) -> bool:
    """Wait for ``condition`` (checked every few ms); ``False`` only after ``limit_s`` seconds."""
    deadline = time.perf_counter() + limit_s
    while not condition():
        if time.perf_counter() > deadline:
            return False
        time.sleep(0.005)
    return True


class PacingEvent(threading.Event):
    """The capture's stop event, recording the pacing waits of its reader thread (``wait`` with a timeout)."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None:
            self.waits.append(timeout)
        return super().wait(timeout)


def check_frames(frames: list[Frame], shape: tuple[int, ...] = (256, 256, 3)) -> None:
    assert frames
    for frame in frames:
        assert frame.image.dtype == np.uint8 and frame.image.shape == shape
    indices = [f.index for f in frames]
    assert all(b > a for a, b in itertools.pairwise(indices)), indices
    times = [f.timestamp for f in frames]
    assert all(b > a for a, b in itertools.pairwise(times))


def assert_stopped(capture: LatestFrameCapture) -> None:
    assert not capture.running
    assert not [t for t in threading.enumerate() if t.name.startswith("capture ") and t.is_alive()]


# --- sources --------------------------------------------------------------------------------------------------


def test_parse_sources(tmp_path: Path) -> None:
    assert CaptureSource.parse(0) == CaptureSource("camera", 0)
    assert CaptureSource.parse(" 2 ") == CaptureSource("camera", 2)
    assert CaptureSource.parse(CLIP) == CaptureSource("file", str(CLIP))
    assert CaptureSource.parse(str(CLIP)).kind == "file"
    assert CaptureSource.parse("rtsp://10.0.0.2:554/live").kind == "stream"
    assert CaptureSource.parse("tcp://127.0.0.1:5000").kind == "stream"
    assert CaptureSource.parse("rtsp://user:secret@cam/1").description == "stream 'rtsp://user:***@cam/1'"
    assert CaptureSource.parse(1).description == "camera 1"
    for bad in ["", "no such thing", str(tmp_path / "missing.mp4"), str(tmp_path), -1, True, 1.5, "://x"]:
        with pytest.raises(CaptureError) as info:
            CaptureSource.parse(bad)  # type: ignore[arg-type]
        message = str(info.value)
        assert "\n" not in message and "expected" in message, message


def test_missing_file_and_bad_string_fail_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mp4"
    with pytest.raises(CaptureError, match=r"missing\.mp4") as info:
        LatestFrameCapture(missing)
    assert "\n" not in str(info.value)
    with pytest.raises(CaptureError, match=r"camera index") as info:
        LatestFrameCapture("definitely not a source")
    assert "\n" not in str(info.value)


def test_file_that_is_not_a_video(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n")
    capture = LatestFrameCapture(fake)
    with pytest.raises(CaptureError, match="cannot be opened") as info:
        capture.start()
    assert "\n" not in str(info.value)
    capture.close()


def test_unopenable_camera_lists_cameras_that_open() -> None:
    cameras = list_cameras()
    assert all(isinstance(c, CameraInfo) for c in cameras)
    if any(c.index == 7 for c in cameras):
        pytest.skip("camera 7 exists on this machine")
    expected = ", ".join(f"{c.index} ({c.width}x{c.height})" for c in cameras) or "none"
    with pytest.raises(CaptureError) as info:
        LatestFrameCapture(7).start()
    assert str(info.value) == f"camera 7 cannot be opened; cameras that open: {expected}"


def test_list_cameras_restores_opencv_log_level() -> None:
    before = cv2.utils.logging.getLogLevel()
    list_cameras(max_index=2)
    assert cv2.utils.logging.getLogLevel() == before


def test_read_before_start_and_bad_arguments() -> None:
    capture = LatestFrameCapture(CLIP)
    with pytest.raises(CaptureError, match="not started"):
        capture.read(timeout=0.1)
    capture.close()
    capture.close()  # idempotent
    assert capture.read(timeout=0.1) is None
    for kwargs in [{"reconnect_attempts": -1}, {"reconnect_delay": -1.0}, {"width": 0}, {"fps": 0}]:
        with pytest.raises(CaptureError):
            LatestFrameCapture(0, **kwargs)  # type: ignore[arg-type]


# --- video files as a camera ----------------------------------------------------------------------------------


def test_realtime_pacing_takes_the_clip_duration(short_clip: Path) -> None:
    capture = LatestFrameCapture(short_clip)
    capture._stop = pacing = PacingEvent()
    start = time.perf_counter()
    with capture:
        assert capture.fps == pytest.approx(CLIP_FPS)
        assert capture.size == (256, 256)
        frames = read_all(capture)
        elapsed = time.perf_counter() - start
        assert capture.ended and capture.last_error is None
        assert capture.frames_read == 50
        assert len(frames) + capture.dropped == 50
        assert capture.frames_delivered == len(frames)
    check_frames(frames)
    assert frames[-1].index == 49  # the last frame is never lost
    # Paced like a camera: never faster than the clip (49 frame periods after the first frame), and the reader
    # waited for the frames' due times. A loaded machine makes it slower, never faster.
    assert elapsed >= 49 / CLIP_FPS, elapsed
    assert all(0 <= w <= 1 / CLIP_FPS + 1e-6 for w in pacing.waits)  # never waits more than one frame period
    assert_stopped(capture)


def test_slow_consumer_gets_the_newest_frames() -> None:
    with LatestFrameCapture(CLIP) as capture:
        frames: list[Frame] = []
        published = 0  # frames the camera had produced when the consumer came back
        for _ in range(8):
            frame = capture.read(timeout=10.0)
            assert frame is not None
            if frames:  # it had produced 3 more since the last read: the newest came, the stale ones were skipped
                assert frame.index >= published - 1 and frame.index >= frames[-1].index + 3, (frame.index, published)
            frames.append(frame)
            wanted = frame.index + 4  # a slow consumer: come back once the camera has produced 3 more frames
            assert wait_until(lambda wanted=wanted: capture.frames_read >= wanted)
            published = capture.frames_read
        dropped, delivered = capture.dropped, capture.frames_delivered
    check_frames(frames)
    assert len({f.index for f in frames}) == len(frames) == delivered  # never the same frame twice
    assert dropped >= 2 * (len(frames) - 1)  # at least 2 stale frames skipped between two reads
    assert_stopped(capture)


def test_not_realtime_delivers_every_frame_once() -> None:
    capture = LatestFrameCapture(CLIP, realtime=False)
    capture._stop = pacing = PacingEvent()
    with capture:
        frames = read_all(capture)
        assert capture.ended
        assert capture.dropped == 0
        assert capture.frames_delivered == capture.frames_read == CLIP_FRAMES
    assert [f.index for f in frames] == list(range(CLIP_FRAMES))
    check_frames(frames)
    assert pacing.waits == []  # not paced: the reader never waited for a due time
    assert_stopped(capture)


def test_a_one_frame_file_ends_after_1_frame(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "one.mp4"
    with open_frames(CLIP, max_frames=1) as frames, VideoWriter(path, CLIP_FPS) as writer:
        writer.write(next(iter(frames)))
    with caplog.at_level(logging.INFO, logger="live.capture"), LatestFrameCapture(path, realtime=False) as capture:
        assert len(read_all(capture)) == 1
    assert "ended after 1 frame" in caplog.text and "1 frames" not in caplog.text


def test_not_realtime_frames_match_the_file() -> None:
    with LatestFrameCapture(CLIP, realtime=False) as capture:
        first = capture.read(timeout=10.0)
    assert first is not None
    with open_frames(CLIP, max_frames=1) as frames:
        rgb = next(iter(frames))
    # same decoder (FFmpeg), maybe another colour conversion: allow small differences
    assert np.abs(first.image[..., ::-1].astype(int) - rgb.astype(int)).mean() < 3.0


def test_loop_keeps_going_past_the_end(short_clip: Path) -> None:
    with LatestFrameCapture(short_clip, loop=True, realtime=False) as capture:
        frames = [capture.read(timeout=10.0) for _ in range(120)]
        assert not capture.ended
    assert all(f is not None for f in frames)
    got: list[Frame] = [f for f in frames if f is not None]
    assert [f.index for f in got] == list(range(120))
    assert np.array_equal(got[50].image, got[0].image)  # rewound to the first frame
    assert np.array_equal(got[100].image, got[0].image)
    assert_stopped(capture)


def test_loop_realtime(short_clip: Path) -> None:
    with LatestFrameCapture(short_clip, loop=True) as capture:
        assert wait_until(lambda: capture.frames_read > 55)
        frame = capture.read(timeout=10.0)
        assert frame is not None and frame.index > 50
        assert not capture.ended
    assert_stopped(capture)


def test_after_index_skips_older_frames(short_clip: Path) -> None:
    with LatestFrameCapture(short_clip, realtime=False) as capture:
        first = capture.read(timeout=10.0)
        assert first is not None and first.index == 0
        # realtime=False: the only newer frame is 1, so asking for > 5 waits; frame 1 is never handed out
        assert capture.read(timeout=0.3, after_index=5) is None
        second = capture.read(timeout=10.0)
        assert second is not None and second.index == 1


def test_close_stops_the_thread_and_is_idempotent() -> None:
    capture = LatestFrameCapture(CLIP).start()
    assert capture.running
    assert capture.read(timeout=10.0) is not None
    capture.close()
    capture.close()
    assert_stopped(capture)
    assert capture.ended
    assert capture.read(timeout=0.1) is None
    with pytest.raises(CaptureError, match="closed"):
        capture.start()


def test_close_while_a_reader_waits() -> None:
    capture = LatestFrameCapture(CLIP, realtime=False).start()
    results: list[Any] = []
    assert capture.read(timeout=10.0) is not None

    def waiter() -> None:
        results.append(capture.read(timeout=5.0, after_index=10_000))

    thread = threading.Thread(target=waiter)
    thread.start()
    # the waiter is blocked: frame 10,000 never comes, and the reader thread waits for frame 1 to be consumed
    assert wait_until(lambda: capture.frames_read == 2)
    capture.close()
    thread.join(PATIENCE)
    assert not thread.is_alive() and results == [None]
    assert_stopped(capture)


# --- failures inside the reader thread (fake VideoCapture) ----------------------------------------------------


class _FlakyCapture:
    """Wraps a real ``cv2.VideoCapture``; ``read`` raises after ``fail_after`` frames."""

    def __init__(self, real: Any, fail_after: int) -> None:
        self.real = real
        self.fail_after = fail_after
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def read(self) -> tuple[bool, Any]:
        self.reads += 1
        if self.reads > self.fail_after:
            raise RuntimeError("decoder exploded")
        return self.real.read()


def test_thread_exception_is_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    real = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", lambda *a: _FlakyCapture(real(*a), fail_after=3))
    with LatestFrameCapture(CLIP, realtime=False) as capture:
        frames = [capture.read(timeout=10.0) for _ in range(3)]
        assert [f.index for f in frames if f is not None] == [0, 1, 2]
        with pytest.raises(CaptureError, match="decoder exploded") as info:
            capture.read(timeout=10.0)
        assert isinstance(info.value.__cause__, RuntimeError)
        assert capture.ended
        assert "decoder exploded" in (capture.last_error or "")
        with pytest.raises(CaptureError):  # and again: the failure stays visible
            capture.read(timeout=0.1)
    assert_stopped(capture)


class _DeadCamera:
    """A camera that opens but never delivers a frame."""

    opened = 0
    reads = 0

    def __init__(self, *args: Any) -> None:
        type(self).opened += 1

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return True

    def read(self) -> tuple[bool, None]:
        type(self).reads += 1
        return False, None

    def get(self, prop: int) -> float:
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        return False

    def release(self) -> None:
        pass


def test_dead_camera_reconnects_then_ends_without_spinning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(cv2, "VideoCapture", _DeadCamera)
    caplog.set_level(logging.WARNING, logger="live.capture")
    with LatestFrameCapture(0, reconnect_attempts=2, reconnect_delay=0.0) as capture:
        assert capture.read(timeout=PATIENCE) is None
        assert capture.ended and capture.reconnects == 2
        assert "camera 0" in (capture.last_error or "")
    assert _DeadCamera.reads == 3 and _DeadCamera.opened == 3  # one open + 2 reopens, one read each
    assert sum("reconnecting" in r.getMessage() for r in caplog.records) == 2
    assert_stopped(capture)


# --- loopback network stream ----------------------------------------------------------------------------------


@needs_ffmpeg
def test_stream_delivers_frames() -> None:
    with serve_stream(CLIP) as (url, _stop), LatestFrameCapture(url, timeout=5.0) as capture:
        assert capture.description == f"stream {url!r}"
        frames = []
        for _ in range(10):
            frame = capture.read(timeout=15.0)
            assert frame is not None
            frames.append(frame)
        assert capture.fps == pytest.approx(CLIP_FPS)
        assert capture.size == (256, 256)
    check_frames(frames)
    assert_stopped(capture)


@needs_ffmpeg
def test_stream_lost_reconnects_then_ends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="live.capture")
    with serve_stream(CLIP) as (url, stop):
        capture = LatestFrameCapture(url, reconnect_attempts=3, reconnect_delay=0.2, timeout=3.0)
        with capture:
            assert capture.read(timeout=15.0) is not None
            stop()  # the server dies mid-run
            frames = read_all(capture)  # what was in flight, then None
            assert capture.ended
            assert capture.reconnects == 3
            assert "3 reconnect attempts" in (capture.last_error or "")
            assert capture.read(timeout=0.1) is None
    if frames:
        check_frames(frames)
    warnings = [r.getMessage() for r in caplog.records if "reconnecting" in r.getMessage()]
    assert len(warnings) == 3 and "attempt 3 of 3" in warnings[-1]
    assert_stopped(capture)


@needs_ffmpeg
def test_stream_comes_back_during_the_reconnect_window() -> None:
    with serve_stream(CLIP) as served:
        url, stop = served
        capture = LatestFrameCapture(url, reconnect_attempts=40, reconnect_delay=0.2, timeout=3.0)
        with capture:
            first = capture.read(timeout=15.0)
            assert first is not None
            stop()
            assert wait_until(lambda: capture.reconnects >= 2)  # at least one try failed
            # drain what was in flight: everything before the outage
            while capture.frames_read > (capture.frames_delivered + capture.dropped):
                capture.read(timeout=0.5)
            before = capture.frames_read
            with serve_stream(CLIP, port=served.port):
                frame = None
                deadline = time.perf_counter() + PATIENCE
                while frame is None or frame.index < before + 5:
                    assert time.perf_counter() < deadline, "frames did not flow again"
                    frame = capture.read(timeout=1.0) or frame
                assert not capture.ended and capture.last_error is None
                assert 2 <= capture.reconnects < 40
    assert_stopped(capture)
