"""Sinks: virtual camera (through pyvirtualcam with a recording test backend), fitting, overlay drawing, the
preview window (refused without a display; shown on Xvfb in a subprocess when available), video files."""

from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from vcam_backend import RecordingBackend

from live.overlay import NO_FACE_TEXT, compose_preview, draw_keypoints, draw_lines, keypoint_colors
from live.sinks import (
    QUIT_KEY,
    NullSink,
    PreviewSink,
    Sink,
    SinkError,
    SinkGroup,
    VideoFileSink,
    VirtualCameraSink,
    has_display,
    letterbox,
)
from live.types import View

REPO = Path(__file__).resolve().parents[2]
BLUE_BGR = (255, 0, 0)
GREEN_BGR = (0, 255, 0)


def solid(height: int, width: int, bgr: tuple[int, int, int]) -> np.ndarray:
    image = np.empty((height, width, 3), np.uint8)
    image[:] = bgr
    return image


def make_view(size: int = 64, **changes: Any) -> View:
    rng = np.random.default_rng(0)
    values: dict[str, Any] = {
        "output": solid(size, size, BLUE_BGR),
        "camera": rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
        "crop": solid(size, size, (40, 40, 40)),
        "keypoints": np.array([[-0.5, -0.5], [0.5, 0.5]], np.float32),
    }
    values.update(changes)
    return View(**values)


# --- virtual camera through pyvirtualcam --------------------------------------------------------------------------


class FailingBackend:
    """A backend whose device is missing, as the real ones report it."""

    def __init__(self, *, device: str | None, **kw: Any) -> None:
        raise RuntimeError(f"device {device or '/dev/video0'} does not exist")


@pytest.fixture
def pyvirtualcam(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = pytest.importorskip("pyvirtualcam", reason="pyvirtualcam is not installed (pip install -e '.[live]')")
    monkeypatch.setattr(module.camera, "BACKENDS", dict(module.camera.BACKENDS))  # restored after the test
    module.register_backend("fomm-test", RecordingBackend)
    RecordingBackend.instances.clear()
    return module


def open_test_camera(**kwargs: Any) -> tuple[VirtualCameraSink, RecordingBackend]:
    sink = VirtualCameraSink(backend="fomm-test", **kwargs)
    return sink, RecordingBackend.instances[-1]


def test_vcam_frame_shape_format_and_rgb_order(pyvirtualcam: Any) -> None:
    from pyvirtualcam.util import encode_fourcc

    sink, backend = open_test_camera(width=640, height=480, fps=30)
    assert isinstance(sink, Sink)
    assert sink.device_name == "/dev/fomm-test0" and sink.backend_name == "fomm-test"
    assert (backend.width, backend.height, backend.fps) == (640, 480, 30)
    assert backend.fourcc == encode_fourcc(pyvirtualcam.PixelFormat.RGB.value)
    sink.send(make_view(64))  # pure blue BGR avatar
    frame = backend.frames[0]
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    assert tuple(frame[240, 320]) == (0, 0, 255)  # blue, in RGB order
    # letterbox: the square avatar fills 480x480 in the middle, black bars left and right
    assert not frame[:, :80].any() and not frame[:, 560:].any()
    assert (frame[:, 80:560] == (0, 0, 255)).all()
    assert sink.frames_sent == 1 and sink.poll_keys() == []
    sink.close()


def test_vcam_fit_modes_and_device(pyvirtualcam: Any) -> None:
    sink, backend = open_test_camera(width=128, height=72, fit="crop", device="/dev/video7")
    assert sink.device_name == "/dev/video7"
    sink.send(make_view(64))
    assert (backend.frames[0] == (0, 0, 255)).all()  # crop fills the frame
    sink.close()
    with pytest.raises(SinkError, match="fit mode"):
        VirtualCameraSink(backend="fomm-test", fit="zoom")


def test_vcam_passthrough_sends_the_camera(pyvirtualcam: Any) -> None:
    sink, backend = open_test_camera(width=640, height=480)
    sink.send(make_view(64, camera=solid(480, 640, GREEN_BGR), passthrough=True))
    sink.send(make_view(64, camera=solid(480, 640, GREEN_BGR), passthrough=False))
    assert (backend.frames[0] == (0, 255, 0)).all()
    assert tuple(backend.frames[1][240, 320]) == (0, 0, 255)
    sink.close()


def test_vcam_close_closes_the_camera_once(pyvirtualcam: Any) -> None:
    import gc

    with VirtualCameraSink(backend="fomm-test", width=64, height=48) as sink:
        backend = RecordingBackend.instances[-1]
        sink.send(make_view(32))
    sink.close()
    sink.close()
    del sink
    gc.collect()
    assert backend.close_calls == 1
    assert len(backend.frames) == 1


def test_vcam_send_after_close_is_an_error(pyvirtualcam: Any) -> None:
    sink, _ = open_test_camera(width=64, height=48)
    sink.close()
    with pytest.raises(SinkError, match="closed"):
        sink.send(make_view(32))


def test_vcam_print_fps_logs(pyvirtualcam: Any, caplog: pytest.LogCaptureFixture) -> None:
    sink, _ = open_test_camera(width=64, height=48, print_fps=True)
    sink._last_report -= 2.0  # as if the last report was two seconds ago
    with caplog.at_level(logging.INFO, logger="live.sinks"):
        sink.send(make_view(32))
    assert any("fps" in record.getMessage() for record in caplog.records)
    sink.close()


def test_no_virtual_camera_gives_the_install_hint(pyvirtualcam: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", {})
    with pytest.raises(SinkError) as info:
        VirtualCameraSink()
    message = str(info.value)
    assert "\n" not in message
    assert "no virtual camera" in message
    assert "sudo modprobe v4l2loopback devices=1 exclusive_caps=1" in message
    assert "apt install v4l2loopback-dkms" in message and "OBS Studio" in message and "Virtual Camera" in message


def test_missing_device_gives_the_reason_and_hint(pyvirtualcam: Any) -> None:
    pyvirtualcam.register_backend("fomm-missing", FailingBackend)
    with pytest.raises(SinkError) as info:
        VirtualCameraSink(backend="fomm-missing", device="/dev/video9")
    message = str(info.value)
    assert "/dev/video9" in message and "does not exist" in message and "v4l2loopback" in message
    with pytest.raises(SinkError, match="unknown virtual camera backend 'nope'"):
        VirtualCameraSink(backend="nope")


@pytest.mark.skipif(platform.system() != "Linux", reason="the v4l2loopback backend exists on Linux only")
def test_real_v4l2loopback_backend_without_devices(pyvirtualcam: Any) -> None:
    if list(Path("/dev").glob("video*")):
        pytest.skip("this machine has video devices (maybe a real v4l2loopback camera)")
    with pytest.raises(SinkError, match="v4l2loopback-dkms"):
        VirtualCameraSink(backend="v4l2loopback")


def test_pyvirtualcam_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)
    with pytest.raises(SinkError, match=r"pip install pyvirtualcam"):
        VirtualCameraSink()


# --- geometry -----------------------------------------------------------------------------------------------------


def test_letterbox_square_into_landscape() -> None:
    out = letterbox(solid(100, 100, (0, 0, 255)), 640, 480)
    assert out.shape == (480, 640, 3) and out.dtype == np.uint8
    assert not out[:, :80].any() and not out[:, 560:].any()
    assert (out[:, 80:560] == (0, 0, 255)).all()
    out = letterbox(solid(100, 100, (0, 0, 255)), 1280, 720)
    assert out.shape == (720, 1280, 3)
    assert not out[:, :280].any() and (out[:, 280:1000] == (0, 0, 255)).all() and not out[:, 1000:].any()


def test_letterbox_landscape_into_square_has_top_and_bottom_bars() -> None:
    out = letterbox(solid(100, 200, (9, 9, 9)), 100, 100)
    assert not out[:25].any() and not out[75:].any() and (out[25:75] == 9).all()


def test_scale_stretches() -> None:
    out = letterbox(solid(100, 100, (1, 2, 3)), 640, 480, "scale")
    assert out.shape == (480, 640, 3) and (out == (1, 2, 3)).all()


def test_crop_fills_and_cuts_evenly() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, :100] = BLUE_BGR
    image[:, 100:] = GREEN_BGR
    out = letterbox(image, 100, 100, "crop")  # keeps the middle 100 columns
    assert out.shape == (100, 100, 3)
    assert (out[:, :49] == BLUE_BGR).all() and (out[:, 51:] == GREEN_BGR).all()
    out = letterbox(solid(256, 256, (5, 5, 5)), 640, 480, "crop")
    assert out.shape == (480, 640, 3) and (out == 5).all()


def test_letterbox_same_size_and_bad_arguments() -> None:
    image = solid(48, 64, (1, 1, 1))
    assert letterbox(image, 64, 48) is image
    with pytest.raises(ValueError, match="fit mode"):
        letterbox(image, 10, 10, "zoom")
    with pytest.raises(ValueError, match="positive"):
        letterbox(image, 0, 10)
    with pytest.raises(ValueError, match="uint8"):
        letterbox(image.astype(np.float32), 10, 10)


# --- overlay ------------------------------------------------------------------------------------------------------


def test_draw_keypoints_at_corners() -> None:
    image = np.zeros((40, 60, 3), np.uint8)
    points = np.array([[-1.0, -1.0], [1.0, 1.0], [1.0, -1.0]])
    out = draw_keypoints(image, points, radius=3)
    assert out is image  # drawn in place
    colours = keypoint_colors(3)
    assert len(set(colours)) == 3
    assert tuple(out[0, 0]) == colours[0]
    assert tuple(out[39, 59]) == colours[1]
    assert tuple(out[0, 59]) == colours[2]  # x is the column, y the row
    assert not out[15:25, 25:35].any()


def test_draw_keypoints_on_a_read_only_image_returns_a_copy() -> None:
    image = np.zeros((20, 20, 3), np.uint8)
    image.flags.writeable = False
    out = draw_keypoints(image, np.zeros((1, 2)))
    assert out is not image and out[10, 10].any() and not image.any()


def test_draw_lines_changes_pixels_in_the_corner() -> None:
    image = np.full((100, 200, 3), 128, np.uint8)
    draw_lines(image, ["12.3 fps", "kp 4.1 ms"])
    assert (image[:45, :120] == 255).any() and (image[:45, :120] == 0).any()
    assert (image[60:, 150:] == 128).all()


def test_compose_preview_size_and_panels() -> None:
    view = make_view(64, lines=[])
    out = compose_preview(view)
    assert out.shape == (64, 128, 3) and out.dtype == np.uint8
    assert (out[:, 64:] == BLUE_BGR).all()  # avatar on the right
    assert not np.array_equal(out[:, :64], view.crop)  # keypoints drawn on the crop panel
    assert (view.crop == 40).all()  # the view is not modified
    passthrough = compose_preview(make_view(64, passthrough=True))
    assert passthrough.shape == (64, 64 + round(64 * 64 / 48), 3)
    no_crop = compose_preview(make_view(64, crop=None, keypoints=None))
    assert no_crop.shape == (64, round(64 * 64 / 48) + 64, 3)


def test_compose_preview_no_face_banner() -> None:
    seen = compose_preview(make_view(128, lines=["fps 20"]))
    lost = compose_preview(make_view(128, lines=["fps 20"], face_found=False))
    assert seen.shape == lost.shape
    changed = np.any(seen != lost, axis=-1)
    assert changed[100:].mean() > 0.5 and not changed[:60].any()  # a bar across the bottom only
    b, g, r = (int(c) for c in np.median(lost[-8:].reshape(-1, 3), axis=0))
    assert r > 150 and g < 60 and b < 60  # red
    assert NO_FACE_TEXT.startswith("NO FACE")


def test_compose_preview_lines_change_pixels() -> None:
    plain = compose_preview(make_view(128))
    text = compose_preview(make_view(128, lines=["12.0 fps", "calibrated 0.93"]))
    assert np.any(plain != text)


# --- preview window -----------------------------------------------------------------------------------------------


@pytest.fixture
def no_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


@pytest.mark.skipif(platform.system() != "Linux", reason="macOS and Windows always have a display")
def test_has_display_false_without_display(no_display: None, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    assert has_display() is False
    monkeypatch.setenv("DISPLAY", ":4711")  # no such X server: checked, not aborted
    assert has_display() is False
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-9")  # no such socket
    assert has_display() is False


@pytest.mark.skipif(platform.system() != "Linux", reason="macOS and Windows always have a display")
def test_preview_refuses_without_display(no_display: None) -> None:
    with pytest.raises(SinkError, match="no display"):
        PreviewSink()


PREVIEW_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from live.sinks import QUIT_KEY, PreviewSink, has_display
    from live.types import View

    assert has_display(), "has_display() is False on Xvfb"
    sink = PreviewSink(title="fomm-live test", scale=1.5)
    view = View(output=np.zeros((64, 64, 3), np.uint8), camera=np.zeros((48, 64, 3), np.uint8),
                crop=np.zeros((64, 64, 3), np.uint8), keypoints=np.zeros((3, 2)), face_found=False,
                lines=["fps 10"])
    sink.send(view)
    sink.send(view)
    keys = sink.poll_keys()
    assert sink.poll_keys() == []
    assert sink.frames_shown == 2
    assert QUIT_KEY not in keys
    import cv2

    cv2.destroyWindow("fomm-live test")  # as if the user closed the window
    cv2.waitKey(1)
    sink.send(view)
    assert sink.poll_keys() == [QUIT_KEY], "closing the window must report the quit key"
    sink.send(view)  # does not reopen it
    assert sink.frames_shown == 2 and sink.poll_keys() == []
    sink.close()
    sink.close()
    print("PREVIEW OK", keys)
    """
)


@pytest.mark.skipif(platform.system() != "Linux", reason="Xvfb test is for Linux")
@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed (apt-get install -y xvfb)")
def test_preview_on_xvfb(tmp_path: Path) -> None:
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", "1", "-screen", "0", "640x480x24", "-nolisten", "tcp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        number = server.stdout.readline().strip() if server.stdout else ""  # printed once the server is ready
        if not number.isdigit():
            pytest.skip(f"Xvfb did not start (exit code {server.poll()})")
        env = {key: value for key, value in os.environ.items() if key != "WAYLAND_DISPLAY"}
        env.update(DISPLAY=f":{number}", XDG_RUNTIME_DIR=str(tmp_path), PYTHONPATH=str(REPO))
        done = subprocess.run(
            [sys.executable, "-c", PREVIEW_SCRIPT], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
        assert "PREVIEW OK" in done.stdout
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


# --- video file ---------------------------------------------------------------------------------------------------


def decode(path: Path) -> tuple[list[np.ndarray], Fraction]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate)
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    return frames, rate


def test_video_file_sink_writes_a_playable_mp4(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    with VideoFileSink(path, 15) as sink:
        for i in range(10):
            sink.send(make_view(64, timestamp=100.0 + i / 15))  # a 15 fps producer
        assert not path.exists()  # appears only when finished
    assert sink.size == (64, 64) and sink.frames == 10
    frames, rate = decode(path)
    assert len(frames) == 10 and float(rate) == pytest.approx(15, rel=0.01)
    assert frames[0].shape == (64, 64, 3)
    r, g, b = frames[5][32, 32].astype(int)
    assert b > 200 and r < 40 and g < 40  # blue survives the BGR -> RGB conversion
    sink.close()  # idempotent


def test_video_file_sink_preview_and_size(tmp_path: Path) -> None:
    preview = tmp_path / "preview.mp4"
    with VideoFileSink(preview, Fraction(30000, 1001), include_preview=True) as sink:
        sink.send(make_view(64, timestamp=1.0))
        sink.send(make_view(64, passthrough=True, timestamp=1.0 + 1001 / 30000))  # wider: letterboxed
    frames, rate = decode(preview)
    assert len(frames) == 2 and float(rate) == pytest.approx(30000 / 1001, rel=0.02) and frames[0].shape == (64, 128, 3)

    sized = tmp_path / "sized.mp4"
    with VideoFileSink(sized, 25, size=(320, 240)) as sink:
        sink.send(make_view(64))
    frames, _ = decode(sized)
    assert frames[0].shape == (240, 320, 3)


def test_video_file_sink_without_frames_writes_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "empty.mp4"
    with caplog.at_level(logging.WARNING, logger="live.sinks"):
        VideoFileSink(path, 25).close()
    assert not path.exists() and not list(tmp_path.iterdir())
    assert "no frames" in caplog.text
    with pytest.raises(SinkError, match="frame rate"):
        VideoFileSink(path, 0)


# --- null sink and groups -----------------------------------------------------------------------------------------


class KeySink:
    name = "keys"

    def __init__(self, keys: list[int], fail: bool = False) -> None:
        self.keys, self.fail, self.closed, self.sent = keys, fail, 0, 0

    def send(self, view: View) -> None:
        self.sent += 1
        if self.fail:
            raise SinkError("send failed")

    def poll_keys(self) -> list[int]:
        keys, self.keys = self.keys, []
        return keys

    def close(self) -> None:
        self.closed += 1
        if self.fail:
            raise SinkError("close failed")


def test_null_sink_counts() -> None:
    sink = NullSink()
    for i in range(3):
        sink.send(make_view(16, timestamp=float(i)))
    assert sink.frames == 3 and sink.last_timestamp == 2.0 and sink.poll_keys() == []
    sink.close()
    sink.close()
    assert sink.closed


def test_sink_group_gathers_keys_and_closes_all_on_failure(caplog: pytest.LogCaptureFixture) -> None:
    first, broken, last = KeySink([ord("c")]), KeySink([QUIT_KEY], fail=True), KeySink([])
    null = NullSink()
    group = SinkGroup([first, broken, null, last])
    assert group.name == "keys+keys+null+keys" and len(group) == 4
    with pytest.raises(SinkError, match="send failed"):
        group.send(make_view(16))
    assert (first.sent, broken.sent, last.sent, null.frames) == (1, 1, 1, 1)
    assert group.poll_keys() == [ord("c"), QUIT_KEY]
    assert group.poll_keys() == []
    with pytest.raises(SinkError, match="close failed"):
        group.close()
    assert (first.closed, broken.closed, last.closed) == (1, 1, 1) and null.closed
    assert "close failed" in caplog.text
