"""Face framing (live.crop): real frames of the bundled clip and avatar with YuNet, plus scripted detectors."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from fomm.media import open_frames  # noqa: E402
from fomm.media.assets import DEFAULT_AVATAR, DEFAULT_DRIVING  # noqa: E402
from fomm.media.faces import default_detector  # noqa: E402
from live.crop import CropConfig, FaceFramer, Framing  # noqa: E402

CANVAS = (480, 640)  # camera-like frame (h, w)
FACE_SIDE = 384  # the 256x256 driving frames are scaled to this and pasted into the canvas


# --- helpers ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def driving_bgr() -> list[np.ndarray]:
    """The first 40 frames of the bundled talking-head clip, (256, 256, 3) uint8 BGR."""
    with open_frames(DEFAULT_DRIVING, max_frames=40) as frames:
        return [cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) for frame in frames]


@pytest.fixture(scope="module")
def avatar_bgr() -> np.ndarray:
    image = cv2.imread(str(DEFAULT_AVATAR), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (256, 256, 3)
    return image


def camera_frame(face: np.ndarray, left: int, top: int, side: int = FACE_SIDE, fill: int = 90) -> np.ndarray:
    """A (480, 640, 3) uint8 BGR frame with ``face`` scaled to ``side`` and pasted with its top-left at
    ``(left, top)`` (clipped at the frame's edges)."""
    h, w = CANVAS
    frame = np.full((h, w, 3), fill, np.uint8)
    scaled = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    x0, y0 = max(0, left), max(0, top)
    x1, y1 = min(w, left + side), min(h, top + side)
    frame[y0:y1, x0:x1] = scaled[y0 - top : y1 - top, x0 - left : x1 - left]
    return frame


def face_center_in_crop(crop_bgr: np.ndarray) -> tuple[float, float]:
    """Centre (x, y) of the largest face YuNet finds in a crop, relative to the crop side (0.5 = middle)."""
    box = default_detector().box(cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2RGB))
    assert box is not None, "no face in the crop"
    side = crop_bgr.shape[0]
    return (box[0] + box[2]) / 2 / side, (box[1] + box[3]) / 2 / side


def box_center(framing: Framing) -> tuple[float, float]:
    x0, y0, side = framing.box
    return x0 + side / 2, y0 + side / 2


class Counting:
    """Wraps a detector's ``box`` and counts the calls."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls = 0

    def box(self, image: np.ndarray) -> tuple[float, float, float, float] | None:
        self.calls += 1
        return self.inner.box(image)  # type: ignore[attr-defined]


class Scripted:
    """A detector that answers from a function of the call number (boxes in the pixels it is given)."""

    def __init__(self, answer: Callable[[int, np.ndarray], tuple[float, float, float, float] | None]) -> None:
        self.answer = answer
        self.calls = 0
        self.images: list[np.ndarray] = []

    def box(self, image: np.ndarray) -> tuple[float, float, float, float] | None:
        self.images.append(image)
        self.calls += 1
        return self.answer(self.calls - 1, image)


def blank(shape: tuple[int, int] = CANVAS) -> np.ndarray:
    return np.full((*shape, 3), 40, np.uint8)


# --- configuration ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", 0),
        ("size", 256.0),
        ("scale", 0),
        ("smoothing", 1.0),
        ("smoothing", -0.1),
        ("detect_every", 0),
        ("min_move", -0.01),
        ("lost_after", 0),
        ("mirror", "yes"),
        ("detect_side", 10),
    ],
)
def test_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"CropConfig\.{field} .*{value!r}"):
        CropConfig(**{field: value})


def test_config_defaults() -> None:
    config = CropConfig()
    assert (config.size, config.scale, config.smoothing, config.detect_every) == (256, 1.8, 0.8, 5)
    assert (config.min_move, config.lost_after, config.mirror) == (0.02, 3, False)


def test_rejects_non_bgr_images() -> None:
    framer = FaceFramer(detector=Scripted(lambda i, image: None))
    with pytest.raises(ValueError, match="uint8 BGR"):
        framer(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="uint8 BGR"):
        framer(np.zeros((64, 64, 3), np.float32))


# --- real frames, YuNet -------------------------------------------------------------------------------------------


def test_real_frames_crop_is_face_centred(driving_bgr: list[np.ndarray]) -> None:
    framer = FaceFramer(CropConfig())
    for index, face in enumerate(driving_bgr[:12]):
        framing = framer(camera_frame(face, 200, 60))
        assert framing.crop.shape == (256, 256, 3) and framing.crop.dtype == np.uint8
        assert framing.face_found and not framing.holding and not framing.lost
        assert framing.detected == (index % 5 == 0)
        assert 0.5 < framing.score <= 1.0
    cx, cy = face_center_in_crop(framing.crop)
    # horizontally centred; vertically a little below the middle (the crop is raised to keep the hair)
    assert abs(cx - 0.5) < 0.08, cx
    assert 0.45 < cy < 0.65, cy
    # the crop side follows the face: 1.8x the face box's larger side, about the pasted face's size here
    assert 0.8 * FACE_SIDE < framing.box[2] < 1.25 * FACE_SIDE


def test_still_face_gives_a_still_box(driving_bgr: list[np.ndarray]) -> None:
    rng = np.random.default_rng(0)
    frame = camera_frame(driving_bgr[0], 150, 40)
    framer = FaceFramer(CropConfig(detect_every=1))
    boxes = []
    for _ in range(12):  # the same frame with fresh sensor noise: detections jitter slightly
        noisy = np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8)
        boxes.append(framer(noisy).box)
    assert all(box == boxes[2] for box in boxes[2:]), boxes


def test_detector_runs_every_n_frames_while_tracking(driving_bgr: list[np.ndarray]) -> None:
    counting = Counting(default_detector())
    framer = FaceFramer(CropConfig(detect_every=5), detector=counting)
    detected = [framer(camera_frame(face, 200, 60)).detected for face in driving_bgr[:23]]
    assert counting.calls == 5
    assert [i for i, d in enumerate(detected) if d] == [0, 5, 10, 15, 20]


def test_face_lost_and_found(driving_bgr: list[np.ndarray]) -> None:
    config = CropConfig(detect_every=5, lost_after=3)
    counting = Counting(default_detector())
    framer = FaceFramer(config, detector=counting)
    before = [framer(camera_frame(face, 60, 40)) for face in driving_bgr[:10]]
    held = before[-1].box
    calls = counting.calls
    gone = [framer(blank()) for _ in range(6)]
    assert counting.calls - calls >= 5, "the detector must run every frame while no face is seen"
    for index, framing in enumerate(gone):
        assert not framing.face_found and framing.holding and framing.score == 0.0
        assert framing.box == held
        assert framing.crop.shape == (256, 256, 3)
        assert framing.lost == (index + 1 >= config.lost_after)
    # the face comes back on the other side of the frame: the box goes there
    after = [framer(camera_frame(face, 220, 70)) for face in driving_bgr[10:20]]
    assert after[0].detected and after[0].face_found and not after[0].holding and not after[0].lost
    for framing in after:
        assert framing.face_found and not framing.holding
    cx_before, cy_before = box_center(before[-1])
    cx_after, cy_after = box_center(after[-1])
    assert cx_after - cx_before == pytest.approx(160, abs=20)
    assert cy_after - cy_before == pytest.approx(30, abs=20)
    cx, _ = face_center_in_crop(after[-1].crop)
    assert abs(cx - 0.5) < 0.08


def test_face_at_the_edge_is_cropped_inside_the_frame(avatar_bgr: np.ndarray) -> None:
    """The crop square is shifted into the frame (the training crops' rule), never edge-replicated."""
    for corner in ("top-left", "bottom-right"):
        canvas = np.zeros((600, 600, 3), np.uint8)
        if corner == "top-left":
            canvas[:256, :256] = avatar_bgr
        else:
            canvas[-256:, -256:] = avatar_bgr
        framing = FaceFramer()(canvas)
        assert framing.face_found, corner
        x0, y0, side = framing.box
        assert x0 >= 0 and y0 >= 0 and x0 + side <= 600 and y0 + side <= 600, corner
        assert framing.crop.shape == (256, 256, 3) and framing.crop.dtype == np.uint8
        x, y, n = (round(v) for v in framing.box)
        expected = cv2.resize(canvas[y : y + n, x : x + n], (256, 256), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(framing.crop, expected)


def test_crop_image_of_a_face_crop_is_kept(avatar_bgr: np.ndarray) -> None:
    crop, box = FaceFramer().crop_image(avatar_bgr)
    assert box == (0.0, 0.0, 256.0)
    np.testing.assert_array_equal(crop, avatar_bgr)
    crop, box = FaceFramer(CropConfig(size=128)).crop_image(avatar_bgr)
    assert crop.shape == (128, 128, 3) and box == (0.0, 0.0, 256.0)


def test_crop_image_centres_an_off_centre_face(avatar_bgr: np.ndarray) -> None:
    canvas = np.full((720, 960, 3), 200, np.uint8)
    canvas[400:656, 620:876] = avatar_bgr
    framer = FaceFramer()
    crop, (x0, y0, side) = framer.crop_image(canvas)
    assert crop.shape == (256, 256, 3)
    assert 620 < x0 + side / 2 < 876 and 400 < y0 + side / 2 < 656  # the square is around the pasted face
    assert side == pytest.approx(256, rel=0.2)
    cx, cy = face_center_in_crop(crop)
    assert abs(cx - 0.5) < 0.08 and 0.45 < cy < 0.65
    assert not framer.tracking, "crop_image must not start a track"


def test_mirror_flips_the_frame(driving_bgr: list[np.ndarray]) -> None:
    frame = camera_frame(driving_bgr[0], 40, 60)
    plain = FaceFramer(CropConfig())(frame)
    mirrored = FaceFramer(CropConfig(mirror=True))(frame)
    x0, _, side = plain.box
    mx0, _, mside = mirrored.box
    assert mside == pytest.approx(side, rel=0.06)  # YuNet is not exactly mirror-symmetric
    assert mx0 + mside / 2 == pytest.approx(CANVAS[1] - (x0 + side / 2), abs=12)
    flipped_first = FaceFramer(CropConfig())(np.ascontiguousarray(frame[:, ::-1]))
    np.testing.assert_array_equal(mirrored.crop, flipped_first.crop)
    assert mirrored.box == flipped_first.box


# --- scripted detectors: the tracking logic ----------------------------------------------------------------------


def test_no_face_ever_gives_the_centre_square() -> None:
    detector = Scripted(lambda i, image: None)
    framer = FaceFramer(CropConfig(size=64), detector=detector)
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 80:560] = 255  # the centred 480x480 square is white, the sides black
    for _ in range(4):
        framing = framer(frame)
        assert framing.box == (80.0, 0.0, 480.0)
        assert not framing.face_found and not framing.holding and framing.lost and framing.detected
        assert framing.face_box is None
        assert (framing.crop == 255).all()
    assert detector.calls == 4


def test_mirror_flips_before_detection() -> None:
    detector = Scripted(lambda i, image: None)
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[:, :100] = (255, 0, 0)  # blue (BGR) on the left
    framing = FaceFramer(CropConfig(size=64, mirror=True), detector=detector)(frame)
    assert (detector.images[0][:, -40:] == (0, 0, 255)).all(), "the detector sees the flipped frame, RGB"
    assert (framing.crop[:, -5:] == (255, 0, 0)).all()


def test_detection_runs_on_a_downscaled_copy() -> None:
    detector = Scripted(lambda i, image: (100.0, 60.0, 140.0, 110.0))  # in the 320x180 copy
    framer = FaceFramer(CropConfig(detect_side=320, lift=0.0, scale=2.0), detector=detector)
    framing = framer(np.zeros((720, 1280, 3), np.uint8))
    assert detector.images[0].shape == (180, 320, 3)
    assert framing.face_box == pytest.approx((400.0, 240.0, 560.0, 440.0))
    assert framing.box == pytest.approx((280.0, 140.0, 400.0))


def test_jittering_detections_keep_the_box_still() -> None:
    rng = np.random.default_rng(1)

    def jitter(i: int, image: np.ndarray) -> tuple[float, float, float, float]:
        dx, dy, dw = rng.uniform(-0.6, 0.6, 3)  # +-0.6 px on a 100 px face (crop side 180, dead band 3.6 px)
        return (100 + dx, 50 + dy, 200 + dx + dw, 150 + dy + dw)

    framer = FaceFramer(CropConfig(detect_every=1), detector=Scripted(jitter))
    frame = np.zeros((300, 400, 3), np.uint8)
    boxes = [framer(frame).box for _ in range(30)]
    assert all(box == boxes[0] for box in boxes)


def test_moving_face_is_followed_smoothly() -> None:
    position = {"x": 100.0}
    detector = Scripted(lambda i, image: (position["x"], 50.0, position["x"] + 100, 150.0))
    config = CropConfig(detect_every=1, smoothing=0.8, lift=0.0, detect_side=0)
    framer = FaceFramer(config, detector=detector)
    frame = np.zeros((300, 600, 3), np.uint8)
    first = framer(frame)
    assert box_center(first)[0] == pytest.approx(150.0)
    position["x"] = 200.0  # a jump of 100 px
    centres = [box_center(framer(frame))[0] for _ in range(40)]
    assert centres[0] == pytest.approx(150 + 0.2 * 100)  # one EMA step
    assert all(b >= a for a, b in itertools.pairwise(centres)), "monotone, no overshoot"
    assert centres[-1] == pytest.approx(250.0, abs=config.min_move * 180 * 0.25 + 1e-6)
    assert centres[-1] == centres[-2], "settled: the box stops"


def test_detector_countdown_and_lost_counting() -> None:
    present = {"face": True}
    detector = Scripted(lambda i, image: (50.0, 50.0, 150.0, 150.0) if present["face"] else None)
    framer = FaceFramer(CropConfig(detect_every=3, lost_after=2), detector=detector)
    frame = np.zeros((300, 300, 3), np.uint8)
    flags = [framer(frame).detected for _ in range(7)]
    assert flags == [True, False, False, True, False, False, True]
    present["face"] = False
    skipped = [framer(frame) for _ in range(2)]  # frames the detector skips: the face is assumed still there
    assert all(f.face_found and not f.detected and not f.holding for f in skipped)
    miss1, miss2 = framer(frame), framer(frame)
    assert miss1.detected and miss1.holding and not miss1.face_found and not miss1.lost
    assert miss2.detected and miss2.holding and miss2.lost
    present["face"] = True
    back = framer(frame)
    assert back.detected and back.face_found and not back.holding and not back.lost


def test_frame_size_change_and_reset() -> None:
    detector = Scripted(lambda i, image: (10.0, 10.0, 50.0, 50.0))
    framer = FaceFramer(CropConfig(detect_every=10), detector=detector)
    framer(np.zeros((100, 100, 3), np.uint8))
    framer(np.zeros((100, 100, 3), np.uint8))
    assert detector.calls == 1
    framer(np.zeros((200, 100, 3), np.uint8))  # another camera size: detect again
    assert detector.calls == 2
    framer.reset()
    assert not framer.tracking
    assert framer(np.zeros((200, 100, 3), np.uint8)).detected


def test_score_from_a_detector_with_largest() -> None:
    class WithLargest:
        class Face:
            box = (20.0, 20.0, 60.0, 60.0)
            score = 0.75

        def largest(self, image: np.ndarray) -> object:
            return self.Face()

        def box(self, image: np.ndarray) -> tuple[float, float, float, float]:
            raise AssertionError("largest() should be preferred")

    framing = FaceFramer(detector=WithLargest())(np.zeros((100, 100, 3), np.uint8))
    assert framing.score == 0.75 and framing.face_found


def test_box_entirely_outside_and_huge_boxes_still_crop() -> None:
    boxes = iter([(-500.0, -500.0, -400.0, -400.0), (-200.0, -200.0, 200.0, 200.0)])
    framer = FaceFramer(CropConfig(size=32, smoothing=0.0), detector=Scripted(lambda i, image: next(boxes)))
    for _ in range(2):
        framer.reset()
        framing = framer(np.zeros((50, 80, 3), np.uint8))
        assert framing.crop.shape == (32, 32, 3)


def test_crop_image_without_a_face_warns(caplog: pytest.LogCaptureFixture) -> None:
    framer = FaceFramer(CropConfig(size=64), detector=Scripted(lambda i, image: None))
    image = np.zeros((100, 300, 3), np.uint8)
    image[:, 100:200] = 255
    with caplog.at_level(logging.WARNING, logger="live.crop"):
        crop, box = framer.crop_image(image)
    assert box == (100.0, 0.0, 100.0)
    assert (crop == 255).all()
    assert any("no face" in record.getMessage() for record in caplog.records)


def test_framing_box_values_are_finite() -> None:
    framer = FaceFramer(detector=Scripted(lambda i, image: (1.0, 2.0, 3.0, 4.0)))
    framing = framer(np.zeros((20, 20, 3), np.uint8))
    assert all(math.isfinite(v) for v in framing.box)


def test_frames_the_detector_skips_are_confirmed_against_the_last_face() -> None:
    """A cut between two detector runs: the face region changed, so the detector runs at once and no face is
    reported for a frame that has none."""
    face = (100.0, 50.0, 200.0, 150.0)
    detector = Scripted(lambda i, image: face if image[60:140, 110:190].mean() > 100 else None)
    framer = FaceFramer(CropConfig(detect_every=5, detect_side=0), detector=detector)
    rng = np.random.default_rng(0)
    scene = rng.integers(120, 255, (300, 400, 3), dtype=np.uint8)
    first = framer(scene)
    steady = [framer(scene) for _ in range(2)]  # unchanged: confirmed without the detector
    assert first.detected and all(f.face_found and not f.detected for f in steady)
    assert detector.calls == 1
    cut = framer(np.zeros_like(scene))  # frame 4: the detector would skip it
    assert cut.detected and not cut.face_found and cut.holding
    assert detector.calls == 2
