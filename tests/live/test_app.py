"""End to end: the live tool on a real face video as the camera, out to a virtual camera and a file."""

from __future__ import annotations

import json
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from vcam_backend import RecordingBackend

from fomm.media.assets import DEFAULT_DRIVING
from fomm.media.video import VideoWriter, open_frames
from live.app import run
from live.config import LiveConfig
from live.sinks import NullSink
from live.types import View

av = pytest.importorskip("av")
pyvirtualcam = pytest.importorskip("pyvirtualcam", reason="pyvirtualcam is not installed (pip install -e '.[live]')")
encode_fourcc = pyvirtualcam.util.encode_fourcc


@pytest.fixture
def vcam(monkeypatch: pytest.MonkeyPatch) -> type[RecordingBackend]:
    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", dict(pyvirtualcam.camera.BACKENDS))
    pyvirtualcam.register_backend("fomm-test", RecordingBackend)
    RecordingBackend.instances.clear()
    return RecordingBackend


def config(tmp_path: Path, **overrides: Any) -> LiveConfig:
    values: dict[str, Any] = {
        "camera": str(DEFAULT_DRIVING),
        "loop": False,
        "preview": False,
        "vcam": True,
        "vcam_backend": "fomm-test",
        "output": tmp_path / "out.mp4",
        "stats": tmp_path / "stats.json",
        "remember": False,
    }
    values.update(overrides)
    return LiveConfig(**values)


def video_frames(path: Path) -> tuple[int, Fraction, tuple[int, int]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, stream.average_rate, (stream.codec_context.width, stream.codec_context.height)


def test_real_video_through_virtual_camera_and_file(tmp_path: Path, vcam: type[RecordingBackend]) -> None:
    result = run(config(tmp_path, max_frames=40, vcam_size=(640, 360), realtime=False))  # every frame: exact count
    assert not result.untrained and "demo-256" in result.model  # the bundled demo model by default
    (camera,) = vcam.instances
    assert camera.close_calls == 1
    assert len(camera.frames) == 40 == result.stats.frames
    assert all(f.shape == (360, 640, 3) and f.dtype == np.uint8 for f in camera.frames)
    assert camera.fourcc == encode_fourcc(pyvirtualcam.PixelFormat.RGB.value)  # RGB24 frames
    frame = camera.frames[-1]
    assert frame[:, :100].max() == 0 and frame[:, -100:].max() == 0  # letterboxed square avatar
    count, rate, size = video_frames(tmp_path / "out.mp4")
    assert count == 40 and rate == 25 and size == (256, 256)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["frames"] == 40
    for stage in ("capture_wait", "crop", "keypoints", "generate", "post", "sink", "glass_to_glass"):
        assert stats["latency_ms"][stage]["p50"] is not None, stage
        assert stats["latency_ms"][stage]["p99"] >= stats["latency_ms"][stage]["p50"]
    assert stats["latency_ms"]["glass_to_glass"]["p50"] >= stats["latency_ms"]["generate"]["p50"]


def test_run_ends_with_the_video_and_counts_drops(tmp_path: Path, vcam: type[RecordingBackend]) -> None:
    short = tmp_path / "short.mp4"
    with open_frames(DEFAULT_DRIVING, max_frames=50) as frames, VideoWriter(short, 25) as writer:
        for frame in frames:
            writer.write(frame)
    result = run(config(tmp_path, camera=str(short), output=None))
    stats = result.stats
    assert 0 < stats.frames <= 50
    assert stats.frames + stats.dropped in (49, 50)  # the last frame may still be waiting when the clip ends
    assert vcam.instances[0].close_calls == 1


def test_face_lost_and_found(tmp_path: Path, vcam: type[RecordingBackend]) -> None:
    """Blank frames in the middle of a real clip: no crash, the avatar holds, animation resumes."""
    clip = tmp_path / "gap.mp4"
    with open_frames(DEFAULT_DRIVING, max_frames=45) as frames, VideoWriter(clip, 25) as writer:
        for i, frame in enumerate(frames):
            writer.write(np.zeros_like(frame) if 15 <= i < 30 else frame)
    # every frame handed over (no pacing), so the blank ones are certainly seen
    result = run(config(tmp_path, camera=str(clip), vcam=False, output=tmp_path / "gap-out.mp4", realtime=False))
    assert result.stats.frames == 45
    assert result.stats.faces_lost == 1
    count, _, _ = video_frames(tmp_path / "gap-out.mp4")
    assert count == 45


def test_stop_event_ends_the_run_cleanly(tmp_path: Path, vcam: type[RecordingBackend]) -> None:
    """A stop request (what Ctrl-C and SIGTERM set) mid-run: everything closed and written."""
    stop = threading.Event()

    class StopAfter(NullSink):
        def send(self, view: View) -> None:
            super().send(view)
            if self.frames == 10:
                stop.set()

    result = run(config(tmp_path, loop=True), stop=stop, extra_sinks=[StopAfter()])
    assert result.stats.frames == 10
    assert vcam.instances[0].close_calls == 1
    assert json.loads((tmp_path / "stats.json").read_text())["frames"] == 10
    assert video_frames(tmp_path / "out.mp4")[0] == 10


def test_switching_to_an_unreadable_avatar_skips_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An avatar that became unreadable during the session is skipped with a warning; the session goes on."""
    import shutil

    from fomm.media.assets import DEFAULT_AVATAR
    from live.app import _switch_avatar
    from live.controls import AvatarList

    for name in ("a.png", "c.png"):
        shutil.copy(DEFAULT_AVATAR, tmp_path / name)
    (tmp_path / "b.png").write_bytes(b"not an image")

    class Pipeline:
        def __init__(self) -> None:
            self.sources: list[tuple[int, ...]] = []

        def set_source(self, image: np.ndarray) -> None:
            self.sources.append(image.shape)

    avatars, pipeline = AvatarList(tmp_path), Pipeline()
    _switch_avatar(avatars, pipeline, forward=True)
    assert avatars.current.name == "c.png" and len(pipeline.sources) == 1
    assert "avatar skipped: image" in caplog.text and "b.png" in caplog.text
    _switch_avatar(avatars, pipeline, forward=False)
    assert avatars.current.name == "a.png" and len(pipeline.sources) == 2
    (tmp_path / "c.png").unlink()  # deleted since: skipped too, back to the one that reads
    _switch_avatar(avatars, pipeline, forward=True)
    assert avatars.current.name == "a.png" and len(pipeline.sources) == 3
