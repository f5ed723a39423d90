"""Expression warps of still portraits (fomm.train.pseudo_motion) and the expressive pseudo-videos."""

from __future__ import annotations

import math

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from fomm.train.names import DatasetError  # noqa: E402
from fomm.train.prepare import prepare_face_dataset, still_pseudo_videos  # noqa: E402
from fomm.train.pseudo_motion import (  # noqa: E402
    MOUTH_INSIDE,
    Expression,
    FaceFrame,
    apply_expression,
    expression_maps,
    random_expressions,
)

SIZE = 256
# A face whose eyes are 60 px apart: eyes, nose tip, mouth corners (YuNet's order).
POINTS = np.array([[98.0, 110.0], [158.0, 110.0], [128.0, 140.0], [106.0, 165.0], [150.0, 165.0]])
FACE = FaceFrame.from_landmarks(POINTS)
D = FACE.eye_distance


def _marker_image(points: list[tuple[float, float]]) -> np.ndarray:
    """Grey image with a small dark blob at each point."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    image = np.full((SIZE, SIZE), 200.0)
    for x, y in points:
        image -= 150.0 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 2.0**2))
    return np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _centroid(image: np.ndarray, near: tuple[float, float], radius: int = 14) -> tuple[float, float]:
    x0, y0 = round(near[0]) - radius, round(near[1]) - radius
    patch = 200.0 - image[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1, 0].astype(np.float64)
    patch = np.clip(patch - 20.0, 0.0, None)
    ys, xs = np.mgrid[0 : patch.shape[0], 0 : patch.shape[1]]
    total = patch.sum()
    assert total > 0, "marker not found"
    return x0 + float((xs * patch).sum() / total), y0 + float((ys * patch).sum() / total)


def _moved(point: tuple[float, float], expression: Expression, search: tuple[float, float] | None = None):
    out = apply_expression(_marker_image([point]), FACE, expression)
    return np.subtract(_centroid(out, search or point), point)


def test_no_expression_is_the_identity():
    map_x, map_y = expression_maps((SIZE, SIZE), FACE, Expression())
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    assert np.array_equal(map_x, xs.astype(np.float32)) and np.array_equal(map_y, ys.astype(np.float32))
    image = _marker_image([(128.0, 128.0)])
    assert np.array_equal(apply_expression(image, FACE, Expression()), image)


def test_mouth_opening_drops_the_chin_and_darkens_the_gap():
    chin = (128.0, 165.0 + 0.45 * D)
    forehead = (128.0, 80.0)
    drop = FACE.mouth_drop
    dx, dy = _moved(chin, Expression(mouth=1.0), search=(chin[0], chin[1] + drop))
    assert abs(dx) < 0.5 and dy == pytest.approx(drop, abs=1.0)
    _, half_dy = _moved(chin, Expression(mouth=0.5), search=(chin[0], chin[1] + drop / 2))
    assert half_dy == pytest.approx(drop / 2, abs=1.0)
    assert np.abs(_moved(forehead, Expression(mouth=1.0))).max() < 0.2
    out = apply_expression(np.full((SIZE, SIZE, 3), 200, np.uint8), FACE, Expression(mouth=1.0))
    inside = out[round(165 + drop / 2), 128].astype(int)
    assert np.abs(inside - np.array(MOUTH_INSIDE)).max() < 30
    assert (out[100, 40] == 200).all()  # away from the mouth: unchanged


def test_blink_closes_the_lids_towards_the_eye_line():
    (ex, ey), _ = FACE.eyes
    above, below = (ex, ey - 0.15 * D), (ex, ey + 0.15 * D)
    image = _marker_image([above, below])
    out = apply_expression(image, FACE, Expression(blink=1.0))
    top = _centroid(out, (ex, ey - 5), radius=8)
    bottom = _centroid(out, (ex, ey + 5), radius=8)
    assert bottom[1] - top[1] < 0.7 * (below[1] - above[1])
    assert np.abs(_moved((128.0, 165.0 + 0.45 * D), Expression(blink=1.0))).max() < 0.2


def test_yaw_moves_the_nose_more_than_the_eyes_and_keeps_the_outline():
    nose = tuple(FACE.nose)
    eye = FACE.eyes[0]
    outline = (128.0 - 1.7 * D, 125.0)
    for sign in (1.0, -1.0):
        expression = Expression(yaw=sign * math.radians(18))
        nose_dx = _moved(nose, expression, search=(nose[0] + sign * 10, nose[1]))[0]
        eye_dx = _moved(eye, expression, search=(eye[0] + sign * 8, eye[1]))[0]
        assert sign * nose_dx > sign * eye_dx + 2.0 > 2.0
        assert np.abs(_moved(outline, expression)).max() < 0.5


def test_yaw_map_does_not_fold():
    for yaw in (-0.4, 0.4):
        map_x, _ = expression_maps((SIZE, SIZE), FACE, Expression(yaw=yaw, mouth=1.0, blink=1.0))
        assert np.diff(map_x, axis=1).min() > 0.3


def test_random_expressions_stay_in_range_and_move():
    tracks = [random_expressions(60, np.random.default_rng(seed)) for seed in range(8)]
    yaw = np.array([[e.yaw for e in t] for t in tracks])
    mouth = np.array([[e.mouth for e in t] for t in tracks])
    blink = np.array([[e.blink for e in t] for t in tracks])
    assert np.abs(yaw).max() <= math.radians(18) + 1e-9 and yaw.std() > math.radians(3)
    assert mouth.min() >= 0 and mouth.max() <= 1 and (mouth == 0).any() and (mouth > 0.5).any()
    assert blink.min() >= 0 and blink.max() <= 1
    assert random_expressions(60, np.random.default_rng(3)) == tracks[3]


def test_expressive_pseudo_videos():
    image = _marker_image([tuple(p) for p in POINTS])
    box = (83.0, 85.0, 173.0, 190.0)
    affine = still_pseudo_videos(image, box, size=64, videos=2, frames=6, seed=1)
    expressive = still_pseudo_videos(
        image, box, size=64, videos=2, frames=6, seed=1, motion="expressive", landmarks=POINTS
    )
    again = still_pseudo_videos(image, box, size=64, videos=2, frames=6, seed=1, motion="expressive", landmarks=POINTS)
    assert [v.shape for v in expressive] == [(6, 64, 64, 3)] * 2
    assert all(np.array_equal(a, b) for a, b in zip(expressive, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(expressive, affine, strict=True))
    with pytest.raises(ValueError, match="landmarks"):
        still_pseudo_videos(image, box, size=64, motion="expressive")
    with pytest.raises(ValueError, match="motion must be one of"):
        still_pseudo_videos(image, box, size=64, motion="wobbly")


def test_prepare_rejects_bad_still_options(tmp_path):
    with pytest.raises(DatasetError, match="still_motion"):
        prepare_face_dataset(tmp_path / "out", still_motion="wobbly")
    with pytest.raises(DatasetError, match="still_videos"):
        prepare_face_dataset(tmp_path / "out", still_videos=0)
    assert not (tmp_path / "out").exists()


def test_landmarks_must_be_five_points():
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        FaceFrame.from_landmarks(np.zeros((4, 2)))
