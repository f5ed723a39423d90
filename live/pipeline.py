"""The per-frame work of the live tool: ``set_source`` once per avatar, ``step`` per camera frame."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

import fomm

from .backends import InferenceBackend
from .processor import FrameProcessor

if TYPE_CHECKING:
    from .crop import FaceFramer, Framing
    from .filters import KeypointFilter

__all__ = ["PuppetPipeline", "StepResult"]

logger = logging.getLogger(__name__)


class Landmarker(Protocol):
    def landmarks(self, image: np.ndarray) -> np.ndarray | None: ...


@dataclass
class StepResult:
    """One animated frame and how it was made.

    Attributes:
        output: ``(S, S, 3)`` uint8 BGR avatar.
        camera: the (mirrored, if asked) ``(H, W, 3)`` uint8 BGR camera frame.
        framing: the driver crop and face status.
        keypoints: ``(K, 2)`` driving keypoints in ``[-1, 1]`` of the crop (``None`` before the first face).
        timings: milliseconds per stage (``crop``, ``keypoints``, ``calibrate``, ``generate``, ``post``).
        calibrated: relative motion has its reference frame (always ``True`` in absolute mode).
        calibration_score: landmark distance between the calibration frame and the avatar (lower is better;
            ``None`` when unknown).
        searching: a find-best-frame search is running.
        rest: while no face is seen, how far the avatar has eased from the held pose back to the rest pose,
            0 (holding the last confirmed pose) to 1 (at rest); 0 while a face is seen.
    """

    output: np.ndarray
    camera: np.ndarray
    framing: Framing
    keypoints: np.ndarray | None
    timings: dict[str, float] = field(default_factory=dict)
    calibrated: bool = False
    calibration_score: float | None = None
    searching: bool = False
    rest: float = 0.0


def _ease(elapsed: float, hold: float, ease: float) -> float:
    """Weight of the rest pose ``elapsed`` seconds into a face loss: 0 during ``hold``, then a smoothstep to 1
    over ``ease`` seconds."""
    if elapsed <= hold:
        return 0.0
    if ease <= 0:
        return 1.0
    x = min(1.0, (elapsed - hold) / ease)
    return x * x * (3.0 - 2.0 * x)


class _Event(Protocol):
    """What :class:`_Timer` needs of a ``torch.cuda.Event(enable_timing=True)``."""

    def record(self) -> None: ...

    def synchronize(self) -> None: ...

    def elapsed_time(self, end: Any) -> float: ...


class _Timer:
    """Milliseconds per stage, stage after stage.

    On the CPU, wall-clock laps. With ``event_factory`` (CUDA: ``torch.cuda.Event(enable_timing=True)``), an event
    is recorded on the current stream at the start and at each lap, and :meth:`result` reads the time between
    consecutive events once the last one has completed: GPU work is counted in the stage that queued it instead
    of in whichever later stage happens to wait for it.
    """

    def __init__(self, event_factory: Callable[[], _Event] | None = None) -> None:
        self._timings: dict[str, float] = {}
        self._factory = event_factory
        self._marks: list[tuple[str, _Event]] = []
        self._t = time.perf_counter()
        if event_factory is not None:
            self._start = event_factory()
            self._start.record()

    def lap(self, stage: str) -> None:
        if self._factory is not None:
            event = self._factory()
            event.record()
            self._marks.append((stage, event))
            return
        now = time.perf_counter()
        self._timings[stage] = self._timings.get(stage, 0.0) + (now - self._t) * 1000.0
        self._t = now

    def result(self) -> dict[str, float]:
        """The timings so far (with events: waits for the last recorded one)."""
        if self._factory is None or not self._marks:
            return dict(self._timings)
        self._marks[-1][1].synchronize()
        timings: dict[str, float] = {}
        previous = self._start
        for stage, event in self._marks:
            timings[stage] = timings.get(stage, 0.0) + float(previous.elapsed_time(event))
            previous = event
        return timings


def _cuda_events(device: torch.device) -> Callable[[], _Event] | None:
    """The event factory of :class:`_Timer` for ``device`` (``None`` off CUDA: wall-clock laps)."""
    if device.type != "cuda":
        return None
    return lambda: torch.cuda.Event(enable_timing=True)


class PuppetPipeline:
    """Face framing -> driving keypoints (filtered) -> motion transfer -> generation.

    Relative motion (the default) needs a calibration frame: the first frame with a face, or the one
    asked for with :meth:`request_calibration`, or the best of a :meth:`find_best_frame` search (the
    frame whose face landmarks are closest to the avatar's, as the original demo does offline).

    Face loss: only frames whose face the framer confirmed (:attr:`Framing.face_found`) drive the avatar. While
    no face is seen, the last confirmed pose is held (the last good output, pixel for pixel) for
    ``hold_seconds``, then the avatar eases smoothly (smoothstep over ``ease_seconds``) to the rest pose: the
    avatar's own keypoints, i.e. the calibration pose in relative mode. When the face comes back the animation
    resumes (the keypoint filter restarts from the new pose). Times are the frames' own timestamps.

    Args:
        backend: computes keypoints and frames.
        framer: turns camera frames into driver crops.
        processor: pixel conversion (default: the backend's device).
        relative, adapt_scale: motion transfer options.
        keypoint_filter: causal smoothing of the driving keypoints, or ``None``.
        landmarker: face landmarks for find-best-frame and the calibration score (``None``: both off).
        mirror: flip camera frames horizontally.
        hold_seconds: how long the last confirmed pose is held after the face is lost.
        ease_seconds: how long the avatar then takes to ease back to the rest pose.
    """

    def __init__(
        self,
        backend: InferenceBackend,
        framer: FaceFramer,
        *,
        processor: FrameProcessor | None = None,
        relative: bool = True,
        adapt_scale: bool = True,
        keypoint_filter: KeypointFilter | None = None,
        landmarker: Landmarker | None = None,
        mirror: bool = False,
        hold_seconds: float = 2.0,
        ease_seconds: float = 1.0,
    ) -> None:
        for name, value in (("hold_seconds", hold_seconds), ("ease_seconds", ease_seconds)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise ValueError(f"PuppetPipeline {name} must be a number of seconds >= 0, got {value!r}")
        self.hold_seconds = float(hold_seconds)
        self.ease_seconds = float(ease_seconds)
        self.backend = backend
        self.framer = framer
        self.processor = processor or FrameProcessor(backend.device)
        self.relative = relative
        self.adapt_scale = adapt_scale
        self.filter = keypoint_filter
        self.landmarker = landmarker
        self.mirror = mirror
        self.source_image: np.ndarray | None = None
        self._kp_source: fomm.Keypoints | None = None
        self._source_landmarks: np.ndarray | None = None
        self._calibration: fomm.Calibration | None = None
        self._calibration_score: float | None = None
        self._calibrate_next = False
        self._search_left = 0
        self._search_best: tuple[float, fomm.Keypoints] | None = None
        self._last_kp: fomm.Keypoints | None = None
        self._still: np.ndarray | None = None
        self._last_good: np.ndarray | None = None
        self._events = _cuda_events(self.backend.device)
        #: frames replaced by the last good frame because a number was not finite or a jacobian singular
        self.bad_frames = 0
        self._rest_output: np.ndarray | None = None  # the avatar in its rest pose (made on first need)
        self._lost_since: float | None = None  # time of the first frame without a face, None while seen

    # --- per source --------------------------------------------------------------------------------------

    def set_source(self, avatar_bgr: np.ndarray) -> np.ndarray:
        """Frame the avatar (face crop at the model size unless it already is one), cache its keypoints and
        encoder features (and warm the per-frame networks up once); clears the calibration. Returns the
        ``(S, S, 3)`` BGR avatar as the model sees it."""
        crop, _ = self.framer.crop_image(avatar_bgr)
        self.source_image = crop
        self._kp_source = self.backend.set_source(self.processor.to_tensor(crop))
        self._source_landmarks = self._normalized_landmarks(crop)
        self._still = self._last_good = crop
        # one untimed pass through the per-frame networks, so that the first camera frame is not slow
        self.backend.generate(self.backend.keypoints(self.processor.to_tensor(crop)))
        self._calibration = None
        self._calibration_score = None
        self._last_kp = None
        self._rest_output = None
        self._lost_since = None
        if self.filter is not None:
            self.filter.reset()
        return crop

    # --- controls ----------------------------------------------------------------------------------------

    def request_calibration(self) -> None:
        """Calibrate on the next frame that shows a face."""
        self._calibrate_next = True
        self._search_left = 0

    def find_best_frame(self, frames: int) -> None:
        """Watch the next ``frames`` frames and calibrate on the one whose face pose is closest to the
        avatar's. Falls back to :meth:`request_calibration` without a landmarker."""
        if self.landmarker is None or self._source_landmarks is None:
            logger.warning("find best frame needs face landmarks of the avatar: calibrating on the next frame")
            self.request_calibration()
            return
        self._search_left = max(1, frames)
        self._search_best = None

    def end_search(self, why: str) -> None:
        """Cut a running find-best-frame search short (``why``: e.g. "the camera ended"): calibrate on the best
        frame seen so far, if any face was seen, and say so. Nothing happens when no search runs."""
        if self._search_left <= 0:
            return
        self._search_left = 0
        best, self._search_best = self._search_best, None
        if best is None:
            logger.warning("find best frame was cut short (%s) before any face was seen: not calibrated", why)
            return
        logger.warning("find best frame was cut short (%s): calibrating on the best frame seen so far", why)
        self._calibrate(best[1], best[0])

    def set_relative(self, relative: bool) -> None:
        self.relative = relative
        if relative:
            self.request_calibration()

    def _bad_frame(self, why: str) -> np.ndarray:
        """The last good frame, in place of one that cannot be shown (logged once per pipeline)."""
        self.bad_frames += 1
        if self.bad_frames == 1:
            logger.warning("%s: showing the last good frame (further such frames are logged at debug level)", why)
        else:
            logger.debug("%s: showing the last good frame (%d so far)", why, self.bad_frames)
        assert self._last_good is not None
        return self._last_good

    # --- per frame ---------------------------------------------------------------------------------------

    def _normalized_landmarks(self, image_bgr: np.ndarray) -> np.ndarray | None:
        if self.landmarker is None:
            return None
        from fomm.media.faces import normalize_landmarks

        points = self.landmarker.landmarks(np.ascontiguousarray(image_bgr[:, :, ::-1]))
        return None if points is None else normalize_landmarks(points)

    def _pose_distance(self, crop_bgr: np.ndarray) -> float | None:
        if self._source_landmarks is None:
            return None
        points = self._normalized_landmarks(crop_bgr)
        if points is None or points.shape != self._source_landmarks.shape:
            return None
        return float(((points - self._source_landmarks) ** 2).sum())

    def _calibrate(self, kp: fomm.Keypoints, score: float | None) -> None:
        assert self._kp_source is not None
        self._calibration = fomm.calibrate(self._kp_source, kp, adapt_movement_scale=self.adapt_scale)
        self._calibration_score = score
        self._calibrate_next = False
        logger.info("calibrated%s", "" if score is None else f" (pose distance {score:.3f})")

    def _update_calibration(self, kp: fomm.Keypoints, crop: np.ndarray) -> None:
        if self._search_left > 0:
            score = self._pose_distance(crop)
            if score is not None and (self._search_best is None or score < self._search_best[0]):
                self._search_best = (score, kp)
            self._search_left -= 1
            if self._search_left == 0:
                if self._search_best is not None:
                    best_score, best_kp = self._search_best
                    self._calibrate(best_kp, best_score)
                else:
                    logger.warning("find best frame saw no face: calibrating on the next frame")
                    self._calibrate_next = True
                self._search_best = None
        elif self._calibrate_next or (self.relative and self._calibration is None):
            self._calibrate(kp, self._pose_distance(crop) if self.landmarker is not None else None)

    def step(self, image_bgr: np.ndarray, timestamp: float | None = None) -> StepResult:
        """Animate the avatar with one ``(H, W, 3)`` uint8 BGR camera frame.

        Args:
            image_bgr: the camera frame.
            timestamp: its capture time in seconds (for the keypoint filter); default now.
        """
        if self._kp_source is None or self._still is None:
            raise RuntimeError("set_source() must run before step()")
        timer = _Timer(self._events)
        now = time.perf_counter() if timestamp is None else float(timestamp)
        # 1. framing
        camera = np.ascontiguousarray(image_bgr[:, ::-1]) if self.mirror else image_bgr
        framing = self.framer(camera)
        timer.lap("crop")
        found = framing.face_found
        if found and self._lost_since is not None:  # the face is back: resume from its pose, not a stale one
            self._lost_since = None
            if self.filter is not None:
                self.filter.reset()
        elif not found and self._lost_since is None:
            self._lost_since = now
        # 2. driving keypoints, only from confirmed faces; unusable ones (NaN, singular jacobians) are not used
        kp = self._last_kp
        usable = True
        if found:
            kp = self.backend.keypoints(self.processor.to_tensor(framing.crop))
            usable = fomm.usable_keypoints(kp)
            if usable:
                if self.filter is not None:
                    kp = self.filter(kp, now)
                self._last_kp = kp
        timer.lap("keypoints")
        # 3. calibration (only with a face in view)
        if found and usable:
            before = self._calibration
            self._update_calibration(kp, framing.crop)
            if self.filter is not None and self._calibration is not before:
                self.filter.reset()
        timer.lap("calibrate")
        # 4. motion transfer + dense motion + generation
        calibrated = not self.relative or self._calibration is not None
        rest = 0.0
        if not usable:
            timer.lap("generate")
            output = self._bad_frame("the driving keypoints are not finite or a jacobian is singular")
        elif calibrated and found:
            output = self._generate(fomm.transfer_motion(kp, self._calibration, relative=self.relative), timer)
        elif calibrated and self._last_kp is not None and self._lost_since is not None:
            rest = _ease(now - self._lost_since, self.hold_seconds, self.ease_seconds)
            output = self._held(rest, timer)
        else:  # nothing to follow yet: the avatar as it is
            timer.lap("generate")
            output = self._still
        timer.lap("post")
        points = None if self._last_kp is None else self._last_kp.value[0].detach().float().cpu().numpy()
        return StepResult(
            output=output,
            camera=camera,
            framing=framing,
            keypoints=points,
            timings=timer.result(),
            calibrated=calibrated,
            calibration_score=self._calibration_score,
            searching=self._search_left > 0,
            rest=rest,
        )

    def _generate(self, kp_norm: fomm.Keypoints, timer: _Timer) -> np.ndarray:
        frame = self.backend.generate(kp_norm)
        timer.lap("generate")
        # 5. back to pixels (a frame that is not finite is never shown)
        if not bool(torch.isfinite(frame).all()):
            return self._bad_frame("the generated frame is not finite")
        self._last_good = self.processor.to_image(frame)
        return self._last_good

    def _held(self, rest: float, timer: _Timer) -> np.ndarray:
        """The output while no face is seen: the last confirmed output, eased towards the rest pose by ``rest``."""
        assert self._last_kp is not None and self._kp_source is not None
        if rest <= 0.0 and self._last_good is not None:  # the last output made from a confirmed face
            timer.lap("generate")
            return self._last_good
        if rest >= 1.0 and self._rest_output is not None:
            timer.lap("generate")
            return self._rest_output
        held = fomm.transfer_motion(self._last_kp, self._calibration, relative=self.relative)
        source = self._kp_source
        kp_norm = fomm.Keypoints(
            torch.lerp(held.value, source.value.to(held.value), rest),
            torch.lerp(held.jacobian, source.jacobian.to(held.jacobian), rest),
        )
        output = self._generate(kp_norm, timer)
        if rest >= 1.0:
            self._rest_output = output
        return output
