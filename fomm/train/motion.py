"""Puppeteering metric: how well an animated avatar follows a driver of another identity (issue 10, item 1).

The paper's reconstruction metric (:mod:`fomm.train.evaluate`) drives a person with their own video, so a
model that copies the source's appearance and barely moves scores almost as well as one that follows the head
and mouth. This metric measures the motion directly, across identities:

1. For an avatar and a driving clip (frames at the model's size), the model animates the avatar in relative
   mode (calibrated on driving frame 0, adapted movement scale: what the live tool does).
2. Face landmarks are found on every driving frame and every output frame, and five signals are measured per
   frame (:func:`face_signals`):

   * ``roll``: angle of the eye line (image-left eye centre to image-right eye centre), degrees.
   * ``yaw``: horizontal offset of the nose tip from the eyes' midpoint, divided by the eye distance, in the
     frame of the eye line (unitless; about ``sin(yaw)`` times a face-shape constant).
   * ``pitch``: distance of the nose tip below the eye line, divided by the eye distance (unitless; not the
     mouth line: it moves when the mouth opens).
   * ``mouth``: inner-lip gap divided by the mouth width.
   * ``eyes``: eyelid gap divided by the eye width, mean of both eyes.

   ``mouth`` and ``eyes`` need lip and eyelid points (MediaPipe FaceMesh, 468 points); with YuNet's 5 points
   (eyes, nose tip, mouth corners) only ``roll``, ``yaw`` and ``pitch`` are measured, and the others are
   reported as not measurable.
3. Per signal over the clip, on the frames where both the driver and the output have a face (the others are
   skipped and counted): the Pearson correlation of driver and output, and the amplitude ratio
   ``std(output) / std(driver)``. 1 and 1 is perfect following; a still avatar gives amplitude 0.

**Driver too still**: a driver whose signal varies less than :data:`NOISE_MULTIPLE` times the landmark jitter
(:data:`NOISE_FLOOR`) is "not measurable" for that signal: its numbers compare noise with noise. They are kept
(``measurable: false`` in JSON, in parentheses in the table) and left out of the means.

**Undefined correlation**: when the output's (or the driver's) signal does not vary (standard deviation at or
below :data:`STILL_STD`, e.g. the "copy the first frame" baseline, whose frames are identical), the
correlation is undefined: ``None`` in JSON, ``-`` in the table; its amplitude ratio is 0 (the driver moves,
the output does not) and counts as not following. A driver that does not move makes both undefined.

Every avatar x clip pair gets two rows: the model and the baseline "copy the first frame" (the avatar,
unchanged, as every output frame), so the model's numbers can be read against doing nothing. The summary rows
are means over the pairs (of defined values).

Signals are relative to each face: different identities have different offsets (a wider nose, a mouth that
rests open), which correlation and standard deviations ignore. Landmark jitter adds a noise floor to the
standard deviations: a small amplitude ratio with a correlation near 0 is noise, not motion.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch

from fomm.animator import AnimationOptions, Animator
from fomm.media.errors import MediaError
from fomm.model import Fomm
from fomm.train.evaluate import BASELINE_NAME, _safe_name, _write_json
from fomm.train.face_frame import align_to_face
from fomm.train.names import MOTION_LANDMARK_CHOICES

if TYPE_CHECKING:
    from fomm.media.faces import FaceLandmarker

__all__ = [
    "MOTION_LANDMARK_CHOICES",
    "SIGNALS",
    "STILL_STD",
    "AnimatorPuppeteer",
    "MotionLandmarks",
    "MotionResult",
    "MotionRow",
    "Puppeteer",
    "SignalStats",
    "evaluate_motion",
    "face_signals",
    "follow_stats",
    "format_motion_table",
    "keypoint_spread",
    "signal_track",
]

logger = logging.getLogger(__name__)

SIGNALS: tuple[str, ...] = ("roll", "yaw", "pitch", "mouth", "eyes")
#: Signals that need lip and eyelid points (not measurable with 5 points).
DETAIL_SIGNALS: frozenset[str] = frozenset({"mouth", "eyes"})
#: ``--motion-landmarks`` choices.
#: A signal whose standard deviation over a clip is at or below this does not move: its correlation is undefined.
STILL_STD = 1e-6
#: Landmark jitter per signal (standard deviation of a signal that should stay constant while the bundled portrait
#: is rolled by +-12 degrees and scaled by +-8 %; roll: the residual against the true angle), per landmark model.
NOISE_FLOOR: dict[str, dict[str, float]] = {
    "facemesh": {"roll": 0.5, "yaw": 0.015, "pitch": 0.014, "mouth": 0.004, "eyes": 0.008},
    "yunet": {"roll": 2.0, "yaw": 0.027, "pitch": 0.024},
}
#: A driver whose signal varies less than this many times the noise floor does not move enough to be measured.
NOISE_MULTIPLE = 2.0
MODEL = "model"
BASELINE = BASELINE_NAME  # the same baseline, the same name as the reconstruction table's
METHODS: tuple[str, ...] = (MODEL, BASELINE)

# FaceMesh indices (the subject's right eye is on the image's left).
_FM_EYE_R = (33, 133)
_FM_EYE_L = (362, 263)
_FM_LIDS_R = (159, 145)
_FM_LIDS_L = (386, 374)
_FM_MOUTH = (61, 291)
_FM_LIPS = (13, 14)
_FM_NOSE = 1


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.hypot(*(a - b)))


def face_signals(points: np.ndarray) -> dict[str, float]:
    """The five per-frame signals of one face (see the module doc); ``nan`` for what the points cannot show.

    Args:
        points: ``(468, 2+)`` FaceMesh points or ``(5, 2)`` YuNet points (right eye, left eye, nose tip, right
            and left mouth corners), float pixel ``(x, y)``.

    Returns:
        ``{signal: value}`` for every name in :data:`SIGNALS`.

    Raises:
        ValueError: another number of points.
    """
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    if len(pts) >= 468:
        eye_r = pts[list(_FM_EYE_R)].mean(axis=0)
        eye_l = pts[list(_FM_EYE_L)].mean(axis=0)
        nose = pts[_FM_NOSE]
        mouth_r, mouth_l = pts[_FM_MOUTH[0]], pts[_FM_MOUTH[1]]
    elif len(pts) == 5:
        eye_r, eye_l, nose, mouth_r, mouth_l = pts
    else:
        raise ValueError(f"expected 468 FaceMesh or 5 YuNet points, got {len(pts)}")
    dx, dy = eye_l - eye_r
    eye_distance = math.hypot(dx, dy)
    nan = float("nan")
    if not eye_distance > 0:
        return dict.fromkeys(SIGNALS, nan)
    roll = math.atan2(dy, dx)
    # the face in the frame of its eye line: x along the eyes, y down the face, origin between the eyes
    cos, sin = math.cos(roll), math.sin(roll)
    middle = (eye_r + eye_l) / 2.0

    def level(p: np.ndarray) -> tuple[float, float]:
        x, y = p - middle
        return cos * x + sin * y, -sin * x + cos * y

    nose_x, nose_y = level(nose)
    signals = {
        "roll": math.degrees(roll),
        "yaw": nose_x / eye_distance,
        "pitch": nose_y / eye_distance,
        "mouth": nan,
        "eyes": nan,
    }
    if len(pts) >= 468:
        width = _distance(mouth_r, mouth_l)
        signals["mouth"] = _distance(pts[_FM_LIPS[0]], pts[_FM_LIPS[1]]) / width if width > 0 else nan
        openings = []
        for lids, corners in ((_FM_LIDS_R, _FM_EYE_R), (_FM_LIDS_L, _FM_EYE_L)):
            eye_width = _distance(pts[corners[0]], pts[corners[1]])
            openings.append(_distance(pts[lids[0]], pts[lids[1]]) / eye_width if eye_width > 0 else nan)
        signals["eyes"] = float(np.mean(openings))
    return signals


def signal_track(points: Iterable[np.ndarray | None]) -> np.ndarray:
    """Per-frame signals of a sequence of landmark sets: ``(T, len(SIGNALS))`` float64, rows of ``nan`` where
    a frame has no face (``None``)."""
    rows = []
    for p in points:
        values = face_signals(p) if p is not None else dict.fromkeys(SIGNALS, float("nan"))
        rows.append([values[name] for name in SIGNALS])
    return np.array(rows, dtype=np.float64).reshape(-1, len(SIGNALS))


@dataclass
class SignalStats:
    """How one signal of the output follows the driver's over a clip.

    Attributes:
        correlation: Pearson correlation, or ``None`` when undefined (a signal does not vary, or fewer than 3
            frames).
        amplitude: ``std(output) / std(driver)``; ``None`` when the driver does not vary or is not measured.
        driver_std: standard deviation of the driver's signal (degrees for roll, unitless otherwise).
        output_std: the output's.
        frames: frames used (both faces present, signal measurable in both).
        measurable: whether the driver's signal varies more than ``NOISE_MULTIPLE`` times the landmark noise.
    """

    correlation: float | None
    amplitude: float | None
    driver_std: float | None
    output_std: float | None
    frames: int
    measurable: bool = True


def follow_stats(driver: np.ndarray, output: np.ndarray, noise: float = 0.0) -> SignalStats:
    """Correlation and amplitude ratio of two per-frame signals, skipping frames where either is ``nan``.

    Args:
        driver: ``(T,)`` the driver's signal.
        output: ``(T,)`` the output's signal.
        noise: the landmark jitter of this signal (a standard deviation): a driver varying less than
            ``NOISE_MULTIPLE * noise`` is marked not measurable.
    """
    driver = np.asarray(driver, dtype=np.float64)
    output = np.asarray(output, dtype=np.float64)
    if driver.shape != output.shape or driver.ndim != 1:
        raise ValueError(f"expected two (T,) signals, got {driver.shape} and {output.shape}")
    both = np.isfinite(driver) & np.isfinite(output)
    frames = int(both.sum())
    if frames < 2:
        return SignalStats(None, None, None, None, frames, measurable=False)
    d, o = driver[both], output[both]
    d_std, o_std = float(d.std()), float(o.std())
    amplitude = None
    if d_std > STILL_STD:
        amplitude = o_std / d_std if o_std > STILL_STD else 0.0  # a still output: exactly 0
    correlation = None
    if d_std > STILL_STD and o_std > STILL_STD and frames >= 3:
        correlation = float(np.clip(np.mean((d - d.mean()) * (o - o.mean())) / (d_std * o_std), -1.0, 1.0))
    measurable = d_std > max(STILL_STD, NOISE_MULTIPLE * noise)
    return SignalStats(correlation, amplitude, d_std, o_std, frames, measurable)


# --- landmarks --------------------------------------------------------------------------------------------------


class MotionLandmarks:
    """The landmark model of the metric: FaceMesh (all five signals) or YuNet's 5 points (roll, yaw, pitch).

    Args:
        kind: ``"auto"`` (FaceMesh when installed, else YuNet with a warning), ``"facemesh"`` or ``"yunet"``.

    Raises:
        MediaError: the chosen model (or YuNet, which gives the face box in every case) is not installed.
    """

    def __init__(self, kind: str = "auto") -> None:
        from fomm.media import faces

        if kind not in MOTION_LANDMARK_CHOICES:
            raise ValueError(f"unknown motion landmarks {kind!r}; expected one of {', '.join(MOTION_LANDMARK_CHOICES)}")
        detector = faces.YuNetLandmarker()
        if kind == "auto":
            if faces.facemesh_available():
                kind = "facemesh"
            else:
                logger.warning(
                    "FaceMesh is not installed: the motion metric uses YuNet's 5 points and cannot measure mouth "
                    "or eye opening; %s",
                    faces.FACEMESH_INSTALL_HINT,
                )
                kind = "yunet"
        self.kind = kind
        self.landmarker: FaceLandmarker
        if kind == "facemesh":
            mesh = faces.FaceMeshLandmarker(detector=detector)
            self.landmarker = mesh
            self.info: dict[str, Any] = {
                "name": "MediaPipe FaceMesh 468 points (YuNet face boxes)",
                "points": 468,
                "model": str(mesh.model_path),
                "sha256": faces.FACEMESH_SHA256,
            }
        else:
            self.landmarker = detector
            self.info = {"name": "YuNet 5 points (eyes, nose tip, mouth corners)", "points": 5}
        self.info["unmeasured"] = sorted(DETAIL_SIGNALS) if kind == "yunet" else []
        self.noise: dict[str, float] = dict(NOISE_FLOOR[kind])
        self.info["noise_floor"] = self.noise

    @property
    def measured(self) -> tuple[str, ...]:
        """The signals these landmarks can measure."""
        return tuple(s for s in SIGNALS if s not in self.info["unmeasured"])

    def track(self, frames: Iterable[np.ndarray]) -> np.ndarray:
        """``(T, len(SIGNALS))`` signals of ``(H, W, 3)`` uint8 RGB frames (``nan`` rows: no face)."""
        return signal_track(self.landmarker.landmarks(np.ascontiguousarray(f)) for f in frames)


# --- keypoint consistency across people ----------------------------------------------------------------------------


def keypoint_spread(keypoints: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """How far each keypoint wanders between faces once the faces are aligned: a keypoint detector whose
    keypoint ``k`` sits on the same part of every face (as relative motion transfer to another person needs)
    scores near 0; one that ignores the face scores about the spread of the faces' positions in their frames.

    Each face's 5 points are mapped onto :data:`~fomm.train.face_frame.FACE_TEMPLATE` by a least-squares
    similarity, its keypoints with it (:func:`~fomm.train.face_frame.align_to_face`); the spread of keypoint
    ``k`` is the root-mean-square distance of its aligned positions from their mean.

    Args:
        keypoints: ``(N, K, 2)`` keypoints of ``N`` faces (any one coordinate system shared with ``landmarks``).
        landmarks: ``(N, 5, 2)`` the same faces' 5 points, in the same coordinates.

    Returns:
        ``(K,)`` spreads, in eye distances.

    Raises:
        ValueError: mismatched shapes or fewer than two faces.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    lm = np.asarray(landmarks, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[-1] != 2 or lm.shape != (len(kp), 5, 2) or len(kp) < 2:
        raise ValueError(
            f"expected (N, K, 2) keypoints and (N, 5, 2) landmarks of N >= 2 faces, got {kp.shape} and {lm.shape}"
        )
    stack = align_to_face(torch.from_numpy(kp), torch.from_numpy(lm)).numpy()  # (N, K, 2)
    return np.sqrt(((stack - stack.mean(0)) ** 2).sum(-1).mean(0))


# --- animation --------------------------------------------------------------------------------------------------


@runtime_checkable
class Puppeteer(Protocol):
    """What :func:`evaluate_motion` calls to animate an avatar (inject a stand-in to test the metric)."""

    def set_source(self, avatar: np.ndarray) -> None:
        """The avatar, ``(S, S, 3)`` uint8 RGB."""
        ...

    def calibrate(self, frame: np.ndarray) -> None:
        """The driving frame the motion is measured from, ``(S, S, 3)`` uint8 RGB."""
        ...

    def animate(self, driving: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 RGB driving frames -> ``(N, S, S, 3)`` uint8 RGB (or float ``[0, 1]``) outputs."""
        ...


class AnimatorPuppeteer:
    """The model as the live tool runs it: :class:`fomm.Animator`, relative motion, adapted movement scale.

    Args:
        model: the networks.
        adapt_movement_scale: scale relative motion by the keypoint hulls' size ratio.
    """

    def __init__(self, model: Fomm, *, adapt_movement_scale: bool = True) -> None:
        self.animator = Animator(model, AnimationOptions(relative=True, adapt_movement_scale=adapt_movement_scale))

    def set_source(self, avatar: np.ndarray) -> None:
        from fomm.media.image import to_tensor

        self.animator.set_source(to_tensor(avatar, device=self.animator.device))

    def calibrate(self, frame: np.ndarray) -> None:
        from fomm.media.image import to_tensor

        self.animator.calibrate(to_tensor(frame, device=self.animator.device))

    @torch.no_grad()
    def animate(self, driving: np.ndarray) -> np.ndarray:
        from fomm.media.image import to_tensor, to_uint8

        return to_uint8(self.animator.step(to_tensor(driving, device=self.animator.device)))


def _as_uint8(frames: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.shape != shape:
        raise ValueError(f"the animation has shape {frames.shape}, expected {shape}")
    if frames.dtype == np.uint8:
        return frames
    return np.clip(frames.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


# --- results ----------------------------------------------------------------------------------------------------


@dataclass
class MotionRow:
    """One avatar x driving clip x method (``"model"`` or the copy-frame-0 baseline).

    Attributes:
        avatar, driver, method: what was measured.
        frames: driving frames.
        skipped: frames left out because the driver or the output has no face.
        signals: per signal name, its :class:`SignalStats` (absent: not measurable with these landmarks).
    """

    avatar: str
    driver: str
    method: str
    frames: int
    skipped: int
    signals: dict[str, SignalStats] = field(default_factory=dict)


@dataclass
class MotionResult:
    """All rows, the means over pairs per method, and what produced them."""

    rows: list[MotionRow]
    landmarks: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self, method: str) -> dict[str, dict[str, float | None]]:
        """Means over the avatar x clip pairs of ``method``: ``{signal: {"correlation", "amplitude", "pairs"}}``,
        each the mean of the defined values of the pairs whose driver moves measurably (``None`` when none)."""
        out: dict[str, dict[str, float | None]] = {}
        rows = [r for r in self.rows if r.method == method]
        for name in SIGNALS:
            if not any(name in r.signals for r in rows):
                continue
            stats = [r.signals[name] for r in rows if name in r.signals and r.signals[name].measurable]
            corr = [s.correlation for s in stats if s.correlation is not None]
            amp = [s.amplitude for s in stats if s.amplitude is not None]
            out[name] = {
                "correlation": float(np.mean(corr)) if corr else None,
                "amplitude": float(np.mean(amp)) if amp else None,
                "pairs": len(stats),
            }
        return out

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (atomically) and return the path."""
        path = Path(path)
        _write_json(path, self.to_dict())
        return path

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the content of ``motion.json``)."""
        return {
            "protocol": PROTOCOL,
            **self.info,
            "landmarks": self.landmarks,
            "signals": list(SIGNALS),
            "undefined_correlation": UNDEFINED,
            "summary": {m: self.summary(m) for m in METHODS},
            "rows": [asdict(r) for r in self.rows],
        }


PROTOCOL = (
    "cross-identity motion following: the avatar animated in relative mode (calibrated on driving frame 0, adapted "
    "movement scale); per frame roll/yaw/pitch/mouth/eye opening of driver and output from face landmarks; per "
    "signal Pearson correlation and std(output)/std(driver) over the frames where both have a face; baseline: "
    "the avatar copied as every output frame"
)
UNDEFINED = (
    f"correlation null (table '-'): the output's or the driver's signal does not vary (std <= {STILL_STD}), e.g. "
    "the copy-first-frame baseline; its amplitude ratio is then 0 (the output does not follow)"
)


# --- evaluation -------------------------------------------------------------------------------------------------


def _check_frames(what: str, frames: np.ndarray, single: bool) -> None:
    ndim = 3 if single else 4
    if (
        not isinstance(frames, np.ndarray)
        or frames.dtype != np.uint8
        or frames.ndim != ndim
        or frames.shape[-1] != 3
        or frames.shape[-2] != frames.shape[-3]
    ):
        expected = "(S, S, 3)" if single else "(T, S, S, 3)"
        got = f"{getattr(frames, 'dtype', type(frames))} {getattr(frames, 'shape', '')}"
        raise MediaError(f"{what}: expected {expected} uint8 RGB, got {got}")
    if not single and frames.shape[0] < 1:
        raise MediaError(f"{what} has no frames")


def _row(avatar: str, driver: str, method: str, drv: np.ndarray, out: np.ndarray, noise: dict[str, float]) -> MotionRow:
    missing = ~(np.isfinite(drv[:, 0]) & np.isfinite(out[:, 0]))
    row = MotionRow(avatar, driver, method, frames=len(drv), skipped=int(missing.sum()))
    for i, name in enumerate(SIGNALS):
        if name in noise:
            row.signals[name] = follow_stats(drv[:, i], out[:, i], noise[name])
    return row


def evaluate_motion(
    puppeteer: Puppeteer | Fomm,
    avatars: Sequence[tuple[str, np.ndarray]],
    drivers: Iterable[tuple[str, np.ndarray] | tuple[str, np.ndarray, float]],
    *,
    landmarks: MotionLandmarks | str = "auto",
    batch_size: int = 8,
    out_dir: str | Path | None = None,
    fps: float = 25.0,
    progress: Any = None,
) -> MotionResult:
    """Animate every avatar with every driving clip and measure how the output follows the driver.

    Args:
        puppeteer: the model (a :class:`Fomm`, run as :class:`AnimatorPuppeteer`) or any :class:`Puppeteer`.
        avatars: ``(name, image)``, images ``(S, S, 3)`` uint8 RGB at the model's size.
        drivers: ``(name, frames)`` or ``(name, frames, fps)``, frames ``(T, S, S, 3)`` uint8 RGB; consumed once.
            The clips a :class:`fomm.train.evaluate.VideoStream` skipped (unreadable) are listed in
            ``info["clips_skipped"]`` of the result (``motion.json``).
        landmarks: a :class:`MotionLandmarks` or its ``kind``.
        batch_size: frames per animation step.
        out_dir: write ``videos/<avatar>__<driver>.mp4`` there (driver | output side by side).
        fps: frame rate of those videos for ``(name, frames)`` items.
        progress: an object with ``update(n)`` (a tqdm bar), called per animated frame.

    Returns:
        Two rows per avatar x clip pair (model, copy-frame-0 baseline), in order.

    Raises:
        MediaError: an avatar or clip of the wrong shape, no avatars or no clips, or a missing landmark model.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not avatars:
        raise MediaError("no avatars to animate")
    for name, image in avatars:
        _check_frames(f"avatar {name!r}", image, single=True)
    started = time.perf_counter()
    runner = AnimatorPuppeteer(puppeteer) if isinstance(puppeteer, Fomm) else puppeteer
    marks = landmarks if isinstance(landmarks, MotionLandmarks) else MotionLandmarks(landmarks)
    still = {name: marks.track([image])[0] for name, image in avatars}
    for name, values in still.items():
        if not np.isfinite(values[0]):
            logger.warning("avatar %r: no face found; its rows count every frame as skipped", name)
    out_path = Path(out_dir) if out_dir is not None else None
    rows: list[MotionRow] = []
    clips = 0
    video_names: set[str] = set()
    for item in drivers:
        driver, frames = item[0], item[1]
        rate = float(item[2]) if len(item) > 2 else fps
        _check_frames(f"driving clip {driver!r}", frames, single=False)
        clips += 1
        drv = marks.track(frames)
        if not np.isfinite(drv[:, 0]).any():
            logger.warning("driving clip %r: no face found in any frame", driver)
        for avatar, image in avatars:
            if image.shape != frames.shape[1:]:
                raise MediaError(f"avatar {avatar!r} is {image.shape}, the clip {driver!r} frames {frames.shape[1:]}")
            runner.set_source(image)
            runner.calibrate(frames[0])
            writer = None
            if out_path is not None:
                from fomm.media.video import VideoWriter

                (out_path / "videos").mkdir(parents=True, exist_ok=True)
                writer = VideoWriter(
                    out_path / "videos" / f"{_safe_name(f'{avatar}__{driver}', video_names)}.mp4", rate
                )
            outputs: list[np.ndarray] = []
            try:
                for start in range(0, len(frames), batch_size):
                    batch = frames[start : start + batch_size]
                    made = _as_uint8(runner.animate(batch), batch.shape)
                    outputs.append(marks.track(made))
                    if writer is not None:
                        writer.write(np.concatenate([batch, made], axis=2))
                    if progress is not None:
                        progress.update(len(batch))
            except BaseException:
                if writer is not None:
                    writer.abort()
                raise
            if writer is not None:
                writer.close()
            out = np.concatenate(outputs)
            rows.append(_row(avatar, driver, MODEL, drv, out, marks.noise))
            rows.append(_row(avatar, driver, BASELINE, drv, np.repeat(still[avatar][None], len(drv), 0), marks.noise))
            model_row = rows[-2]
            logger.info(
                "%s x %s: roll corr %s amp %s, mouth corr %s",
                avatar,
                driver,
                _fmt(model_row.signals["roll"].correlation),
                _fmt(model_row.signals["roll"].amplitude),
                _fmt(model_row.signals["mouth"].correlation) if "mouth" in model_row.signals else "n/a",
            )
    skipped = list(getattr(drivers, "skipped", []))  # unreadable clips a VideoStream skipped
    if not clips:
        raise MediaError("no driving clips to evaluate" + (f" ({len(skipped)} could not be read)" if skipped else ""))
    info = {"seconds": time.perf_counter() - started, "avatars": [a for a, _ in avatars], "clips_skipped": skipped}
    return MotionResult(rows, marks.info, info)


# --- table ------------------------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def format_motion_table(result: MotionResult) -> str:
    """The motion-following table: one model row and one baseline row per avatar x clip, then the means over
    pairs; per signal the correlation ``r`` and the amplitude ratio ``amp``."""
    signals = [s for s in SIGNALS if s not in result.landmarks.get("unmeasured", [])]
    header = ["avatar", "driver", "method", "frames", "skipped"]
    for name in signals:
        header += [f"{name} r", f"{name} amp"]
    table: list[list[str]] = []
    for row in result.rows:
        cells = [row.avatar, row.driver, row.method, str(row.frames), str(row.skipped)]
        for name in signals:
            s = row.signals[name]
            if s.measurable:
                cells += [_fmt(s.correlation), _fmt(s.amplitude)]
            else:
                cells += [f"({_fmt(s.correlation)})", f"({_fmt(s.amplitude)})"]
        table.append(cells)
    means: list[list[str]] = []
    for method in METHODS:
        summary = result.summary(method)
        cells = ["mean over pairs", "", method, "", ""]
        for name in signals:
            mean = summary.get(name, {})
            cells += [_fmt(mean.get("correlation")), _fmt(mean.get("amplitude"))]
        means.append(cells)
    widths = [max(len(r[i]) for r in [header, *table, *means]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "-" * len(line(header))
    body = ["motion following (driver vs output, cross-identity)", line(header), rule]
    body += [line(r) for r in table] + [rule] + [line(r) for r in means]
    unmeasured = result.landmarks.get("unmeasured", [])
    body += [
        "",
        f"landmarks: {result.landmarks['name']}"
        + (f"; not measurable with these points: {', '.join(unmeasured)}" if unmeasured else ""),
        "r: Pearson correlation of the per-frame signal, driver vs output; amp: std(output) / std(driver).",
        "roll: eye-line angle; yaw, pitch: nose tip vs the eyes, normalised by the eye distance; mouth: inner-lip "
        "gap / mouth width; eyes: eyelid gap / eye width.",
        "'-': undefined (the signal does not vary: the copy-first-frame baseline never moves). skipped: frames "
        "where the driver or the output has no face.",
        f"(x): the driver moves less than {NOISE_MULTIPLE:g}x the landmark noise in that signal (not measurable; "
        "left out of the means).",
    ]
    return "\n".join(body)
