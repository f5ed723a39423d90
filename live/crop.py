"""Face framing for the live loop: a steady square crop around the driver's face, at the model size.

Camera frames and crops are ``(H, W, 3)`` uint8 **BGR** (OpenCV order); the face detector sees RGB (the
:class:`fomm.media.faces.FaceLandmarker` convention). Boxes are float camera pixels.

Per frame, :class:`FaceFramer`:

1. flips the frame horizontally when ``mirror`` is set (everything after, boxes included, is in the flipped
   frame);
2. runs the face detector on a copy downscaled to ``detect_side`` pixels (longest side) on the first frame,
   every ``detect_every`` frames while it tracks a face, and on every frame while no face is seen; on the
   frames in between, the face is *confirmed* by a cheap check: the last face box's region, as a 16x16 gray
   thumbnail, may differ from the last confirmed frame's by at most ``max_change`` (mean absolute difference,
   share of full scale), else the detector runs on that frame too (a cut, the face leaving, a hand over it).
   So :attr:`Framing.face_found` is never true for a frame whose face was not seen or confirmed;
3. turns the largest face box ``(x0, y0, x1, y1)`` into a square of side ``scale * max(w, h)`` centred on the
   box and raised by ``lift * h`` (as :func:`fomm.media.image.face_square`: the detector's box stops at the
   brows, so the raise keeps some hair and the chin margin of the VoxCeleb crops the models were trained on);
4. moves the crop towards that square with an exponential moving average that starts only when the square is
   more than ``min_move`` (relative to the crop side) away and stops once it is close again (hysteresis), so a
   still face gives a pixel-still crop while a moving one is followed smoothly;
5. places the square inside the frame by the one cropping rule of the project
   (:func:`fomm.media.image.place_square`, also used by ``fomm animate --driving-crop face`` and
   ``prepare-data``: shifted into the frame, shrunk to the frame's shorter side when larger, so no edge pixels
   are stretched), cuts it out and resizes it to ``size`` (area averaging when shrinking, bicubic when
   enlarging).

While no face is seen the last box is held; before any face was seen the crop is the frame's centred square.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

from fomm.media._deps import import_cv2
from fomm.media.image import FACE_CROP_LIFT, FACE_CROP_SCALE, Box, crop_resize, place_square

from .types import counted

__all__ = ["CropConfig", "FaceBoxDetector", "FaceFramer", "Framing", "SquareBox"]

logger = logging.getLogger(__name__)

#: A still whose face square is at least this share of its (square) side is taken as already face-cropped.
ALREADY_CROPPED_SHARE = 0.8
#: A still is "square" when its sides differ by at most this share.
SQUARE_TOLERANCE = 0.02
#: The moving average stops once the crop is within this share of ``min_move`` of the target.
SETTLE_SHARE = 0.25
#: Side of the gray thumbnail of the face region that confirms the face on frames the detector skips.
CONFIRM_SIDE = 16

FaceBox = tuple[float, float, float, float]
#: ``(x0, y0, side)``: top-left corner and side of a square, float camera pixels.
SquareBox = tuple[float, float, float]


class FaceBoxDetector(Protocol):
    """What :class:`FaceFramer` needs from a face detector (e.g. :class:`fomm.media.faces.YuNetLandmarker`).

    A detector that also has ``largest(image_rgb) -> Face | None`` (with ``.box`` and ``.score``) is asked
    through it, so that :attr:`Framing.score` is its confidence.
    """

    def box(self, image: np.ndarray) -> FaceBox | None:
        """Box ``(x0, y0, x1, y1)`` (float pixels) of the largest face of a ``(H, W, 3)`` uint8 RGB image."""
        ...


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@dataclass(frozen=True)
class CropConfig:
    """How the driver's face is framed.

    Attributes:
        size: side of the crop fed to the model, pixels.
        scale: crop side / larger side of the detected face box (1.8, as ``fomm.media.image``'s face crop).
        lift: upward shift of the crop centre, relative to the face box height (0.1, as ``fomm.media.image``).
        smoothing: weight of the previous box in the per-frame moving average of centre and side, in
            ``[0, 1)``; 0 jumps to every detection.
        detect_every: run the detector every this many frames while a face is tracked (every frame while none
            is seen).
        min_move: dead band, relative to the crop side: the crop does not move for a target closer than this.
        lost_after: frames without a face before :attr:`Framing.lost` says so (the box is held meanwhile and
            after).
        mirror: flip the camera frame horizontally before everything else.
        detect_side: longest side, pixels, of the downscaled copy the detector runs on (0: the frame as it is;
            YuNet itself searches a larger image at most at :data:`fomm.media.faces.DETECT_SIDE`).
        max_change: on frames the detector skips, the largest change of the face region since the last confirmed
            frame (mean absolute difference of 16x16 gray thumbnails, share of full scale) that still counts as
            the same face; above it the detector runs on that frame. 0 runs the detector on every frame.
    """

    size: int = 256
    scale: float = FACE_CROP_SCALE
    lift: float = FACE_CROP_LIFT
    smoothing: float = 0.8
    detect_every: int = 5
    min_move: float = 0.02
    lost_after: int = 3
    mirror: bool = False
    detect_side: int = 320
    max_change: float = 0.12

    def __post_init__(self) -> None:
        if not _is_int(self.size) or not 16 <= self.size <= 4096:
            raise ValueError(f"CropConfig.size must be an integer in [16, 4096], got {self.size!r}")
        if not _is_real(self.scale) or not 0.5 <= self.scale <= 10.0:
            raise ValueError(f"CropConfig.scale must be a number in [0.5, 10], got {self.scale!r}")
        if not _is_real(self.lift) or not -1.0 <= self.lift <= 1.0:
            raise ValueError(f"CropConfig.lift must be a number in [-1, 1], got {self.lift!r}")
        if not _is_real(self.smoothing) or not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"CropConfig.smoothing must be a number in [0, 1), got {self.smoothing!r}")
        if not _is_int(self.detect_every) or self.detect_every < 1:
            raise ValueError(f"CropConfig.detect_every must be an integer >= 1, got {self.detect_every!r}")
        if not _is_real(self.min_move) or not 0.0 <= self.min_move < 0.5:
            raise ValueError(f"CropConfig.min_move must be a number in [0, 0.5), got {self.min_move!r}")
        if not _is_int(self.lost_after) or self.lost_after < 1:
            raise ValueError(f"CropConfig.lost_after must be an integer >= 1, got {self.lost_after!r}")
        if not isinstance(self.mirror, (bool, np.bool_)):
            raise ValueError(f"CropConfig.mirror must be True or False, got {self.mirror!r}")
        if not _is_int(self.detect_side) or not (self.detect_side == 0 or self.detect_side >= 64):
            raise ValueError(
                f"CropConfig.detect_side must be 0 (full size) or an integer >= 64, got {self.detect_side!r}"
            )
        if not _is_real(self.max_change) or not 0.0 <= self.max_change <= 1.0:
            raise ValueError(f"CropConfig.max_change must be a number in [0, 1], got {self.max_change!r}")


class Framing(NamedTuple):
    """The framing of one camera frame.

    Attributes:
        crop: ``(size, size, 3)`` uint8 BGR, what the model sees.
        box: ``(x0, y0, side)`` of the cropped square, float camera pixels (of the mirrored frame when
            ``mirror`` is set), inside the frame unless the face is larger than the frame.
        face_found: a face is seen this frame: the detector found one this frame or, on frames it skipped,
            the face region is still the one it found (see ``CropConfig.max_change``).
        holding: no face is seen now and the last good box is held.
        detected: the detector ran on this frame.
        score: confidence of the detection the box follows, in ``[0, 1]`` (1 for detectors that give none);
            0 while no face is seen.
        lost: no face for ``lost_after`` frames or more (also before any face was seen).
        face_box: the last detected face box ``(x0, y0, x1, y1)`` in camera pixels, ``None`` before any.
    """

    crop: np.ndarray
    box: SquareBox
    face_found: bool
    holding: bool
    detected: bool
    score: float
    lost: bool = False
    face_box: FaceBox | None = None


def _check_bgr(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        what = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected a (H, W, 3) uint8 BGR image, got {what}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"expected a non-empty image, got shape {image.shape}")


def _center_square(height: int, width: int) -> SquareBox:
    side = float(min(height, width))
    return ((width - side) / 2.0, (height - side) / 2.0, side)


def _placed(cx: float, cy: float, side: float, height: int, width: int) -> tuple[SquareBox, Box]:
    """The square of centre ``(cx, cy)`` and ``side`` placed by the project's cropping rule
    (:func:`fomm.media.image.place_square`): ``(x0, y0, side)`` in float pixels and the integer box cut."""
    if side > min(height, width):
        side = float(min(height, width))
    x0, y0 = cx - side / 2.0, cy - side / 2.0
    if side <= width:
        x0 = min(max(x0, 0.0), width - side)
    if side <= height:
        y0 = min(max(y0, 0.0), height - side)
    return (x0, y0, side), place_square(x0 + side / 2.0, y0 + side / 2.0, side, (width, height))


def _thumbnail(image_bgr: np.ndarray, face_box: FaceBox) -> np.ndarray | None:
    """16x16 float32 gray thumbnail of a face box's region (``None`` when the box leaves nothing)."""
    cv2 = import_cv2()
    height, width = image_bgr.shape[:2]
    x0, y0 = max(0, math.floor(face_box[0])), max(0, math.floor(face_box[1]))
    x1, y1 = min(width, math.ceil(face_box[2])), min(height, math.ceil(face_box[3]))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    gray = cv2.cvtColor(np.ascontiguousarray(image_bgr[y0:y1, x0:x1]), cv2.COLOR_BGR2GRAY)
    return cv2.resize(gray, (CONFIRM_SIDE, CONFIRM_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)


class FaceFramer:
    """Frames the driver's face in a stream of camera frames (see the module docstring for the steps).

    Args:
        config: framing settings.
        detector: any object with ``box(image_rgb) -> (x0, y0, x1, y1) | None``; default
            :func:`fomm.media.faces.default_detector` (YuNet), created on first use.

    Not thread-safe: one framer per stream.
    """

    def __init__(self, config: CropConfig | None = None, detector: FaceBoxDetector | None = None) -> None:
        self.config = config if config is not None else CropConfig()
        self._detector = detector
        self.reset()

    # --- state ------------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the track: the next frame is detected and its face box is taken without smoothing."""
        self._center: tuple[float, float] | None = None  # current crop centre, camera pixels
        self._side = 0.0  # current crop side
        self._target: tuple[float, float, float] | None = None  # (cx, cy, side) of the last detection
        self._moving_center = False
        self._moving_side = False
        self._countdown = 0  # frames until the detector runs again (0: this frame)
        self._misses = 0  # consecutive frames without a face
        self._score = 0.0
        self._face_box: FaceBox | None = None
        self._frame_shape: tuple[int, int] | None = None
        self._confirmed: np.ndarray | None = None  # thumbnail of the face region in the last confirmed frame

    @property
    def detector(self) -> FaceBoxDetector:
        """The face detector (YuNet by default, created here on first use).

        Raises:
            fomm.media.MediaError: the default detector's model is not installed.
        """
        if self._detector is None:
            from fomm.media.faces import default_detector

            self._detector = default_detector()
        return self._detector

    @property
    def tracking(self) -> bool:
        """Whether a face box is known (seen now or held)."""
        return self._center is not None

    # --- detection --------------------------------------------------------------------------------------------

    def _detect(self, image_bgr: np.ndarray, side: int) -> tuple[FaceBox, float] | None:
        """Largest face of a BGR image, searched on a copy whose longest side is at most ``side`` (0: as is).

        Returns ``((x0, y0, x1, y1), score)`` in the image's pixels, or ``None``.
        """
        cv2 = import_cv2()
        height, width = image_bgr.shape[:2]
        small = image_bgr
        if side and max(height, width) > side:
            factor = side / max(height, width)
            size = (max(1, round(width * factor)), max(1, round(height * factor)))
            small = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        detector: Any = self.detector
        largest = getattr(detector, "largest", None)
        if callable(largest):
            face = largest(rgb)
            if face is None:
                return None
            found, score = tuple(face.box), float(face.score)
        else:
            found, score = detector.box(rgb), 1.0
            if found is None:
                return None
        fx, fy = width / small.shape[1], height / small.shape[0]
        x0, y0, x1, y1 = (float(v) for v in found)
        box = (x0 * fx, y0 * fy, x1 * fx, y1 * fy)
        if not all(math.isfinite(v) for v in box) or box[2] <= box[0] or box[3] <= box[1]:
            logger.debug("ignoring a degenerate face box %s", box)
            return None
        return box, min(1.0, max(0.0, score))

    def _square(self, face_box: FaceBox) -> tuple[float, float, float]:
        """``(cx, cy, side)`` of the crop square around a face box."""
        x0, y0, x1, y1 = face_box
        side = max(1.0, self.config.scale * max(x1 - x0, y1 - y0))
        return (x0 + x1) / 2.0, (y0 + y1) / 2.0 - self.config.lift * (y1 - y0), side

    # --- smoothing --------------------------------------------------------------------------------------------

    def _follow(self) -> None:
        """One moving-average step of the crop towards the target, with a dead band and hysteresis."""
        if self._target is None or self._center is None:
            return
        weight = 1.0 - self.config.smoothing
        band = self.config.min_move * self._side
        settle = SETTLE_SHARE * band
        tx, ty, tside = self._target
        cx, cy = self._center
        error = math.hypot(tx - cx, ty - cy)
        if not self._moving_center and error > band:
            self._moving_center = True
        if self._moving_center:
            cx, cy = cx + weight * (tx - cx), cy + weight * (ty - cy)
            if math.hypot(tx - cx, ty - cy) <= settle:
                self._moving_center = False
            self._center = (cx, cy)
        error = abs(tside - self._side)
        if not self._moving_side and error > band:
            self._moving_side = True
        if self._moving_side:
            self._side += weight * (tside - self._side)
            if abs(tside - self._side) <= settle:
                self._moving_side = False

    # --- per frame --------------------------------------------------------------------------------------------

    def __call__(self, image_bgr: np.ndarray) -> Framing:
        """Frame one camera frame.

        Args:
            image_bgr: ``(H, W, 3)`` uint8 BGR camera frame. A frame of another size than the previous one
                resets the track.

        Returns:
            The :class:`Framing`: the ``(size, size, 3)`` uint8 BGR crop and what happened.

        Raises:
            fomm.media.MediaError: the default detector is not installed (first call).
        """
        cv2 = import_cv2()
        _check_bgr(image_bgr)
        config = self.config
        if config.mirror:
            image_bgr = cv2.flip(image_bgr, 1)
        height, width = image_bgr.shape[:2]
        if self._frame_shape is not None and self._frame_shape != (height, width):
            logger.info("camera frame size changed to %dx%d: face track reset", width, height)
            self.reset()
        self._frame_shape = (height, width)

        detected = self._countdown <= 0 or self._misses > 0 or self._center is None
        if not detected and not self._still_confirmed(image_bgr):
            detected = True  # the face region changed since the last confirmed frame: look again now
        if detected:
            found = self._detect(image_bgr, config.detect_side)
            self._countdown = config.detect_every - 1
            if found is None:
                self._misses += 1
                self._score = 0.0
                self._confirmed = None
                if self._misses == config.lost_after and self._center is not None:
                    logger.debug("face lost: holding the last crop")
            else:
                was_lost = self._misses >= config.lost_after
                if was_lost and self._center is not None:
                    logger.debug("face found again after %s", counted(self._misses, "frame"))
                self._misses = 0
                self._face_box, self._score = found
                self._confirmed = _thumbnail(image_bgr, found[0])
                self._target = self._square(found[0])
                if self._center is None or was_lost:  # first face, or back after a loss: no gliding across
                    cx, cy, side = self._target
                    self._center, self._side = (cx, cy), side
                    self._moving_center = self._moving_side = False
        else:
            self._countdown -= 1

        face_found = self._misses == 0 and self._center is not None
        holding = not face_found and self._center is not None
        if face_found:
            self._follow()
        if self._center is None:
            box = _center_square(height, width)
            pixels = Box(round(box[0]), round(box[1]), round(box[0]) + round(box[2]), round(box[1]) + round(box[2]))
        else:
            box, pixels = _placed(self._center[0], self._center[1], self._side, height, width)
        crop = crop_resize(image_bgr, pixels, config.size)
        return Framing(
            crop=crop,
            box=box,
            face_found=face_found,
            holding=holding,
            detected=detected,
            score=self._score if face_found else 0.0,
            lost=self._center is None or self._misses >= config.lost_after,
            face_box=self._face_box,
        )

    def _still_confirmed(self, image_bgr: np.ndarray) -> bool:
        """On a frame the detector would skip: whether the last face box's region still looks as it did in the
        last confirmed frame (and then this frame becomes the confirmed one)."""
        if self._confirmed is None or self._face_box is None or self.config.max_change <= 0:
            return False
        now = _thumbnail(image_bgr, self._face_box)
        if now is None:
            return False
        change = float(np.abs(now - self._confirmed).mean()) / 255.0
        if change > self.config.max_change:
            logger.debug("face region changed by %.3f since the last confirmed frame: detecting", change)
            return False
        self._confirmed = now
        return True

    # --- stills -----------------------------------------------------------------------------------------------

    def crop_image(self, image_bgr: np.ndarray) -> tuple[np.ndarray, SquareBox]:
        """Frame a still image (the avatar) once: no tracking, no smoothing, no mirroring.

        A still that is already a square face crop (its face square covers at least 80 % of it) is only
        resized; a still without a face gives its centred square and a logged warning. The framer's track is
        not touched.

        Args:
            image_bgr: ``(H, W, 3)`` uint8 BGR image.

        Returns:
            ``(crop, box)``: ``(size, size, 3)`` uint8 BGR crop and its ``(x0, y0, side)`` in image pixels.

        Raises:
            fomm.media.MediaError: the default detector is not installed.
        """
        _check_bgr(image_bgr)
        height, width = image_bgr.shape[:2]
        # the whole image: stills are done once, so they get more pixels than live frames (small faces in large
        # photos); the detector shrinks a large one to its working size (YuNet: fomm.media.faces.DETECT_SIDE)
        found = self._detect(image_bgr, 0)
        if found is None:
            logger.warning("no face found in the %dx%d image: using its centre square", width, height)
            box = _center_square(height, width)
        else:
            cx, cy, side = self._square(found[0])
            square = abs(height - width) <= SQUARE_TOLERANCE * max(height, width)
            if square and side >= ALREADY_CROPPED_SHARE * min(height, width):
                logger.debug("the %dx%d image is already a face crop: resized as is", width, height)
                box = _center_square(height, width)
            else:
                box, _ = _placed(cx, cy, side, height, width)
        x0, y0, side = box
        pixels = Box(round(x0), round(y0), round(x0) + max(1, round(side)), round(y0) + max(1, round(side)))
        return crop_resize(image_bgr, pixels, self.config.size), box
