"""Media helpers: images, videos and faces (optional dependencies: OpenCV, PyAV, face-alignment).

Nothing in :mod:`fomm` imports this package; OpenCV and PyAV are imported only when a function needs them.
Frames and images are ``(H, W, 3)`` uint8 RGB arrays; model tensors are float ``(N, 3, H, W)`` RGB in
``[0, 1]``.
"""

from .errors import MediaError
from .faces import (
    FaceLandmarker,
    FanLandmarker,
    YuNetLandmarker,
    default_detector,
    default_landmarker,
    find_best_frame,
    find_yunet_model,
)
from .image import CROP_MODES, fit_square, load_image, square_box, to_tensor, to_uint8
from .video import FrameSource, VideoInfo, VideoWriter, open_frames, read_frame

__all__ = [
    "CROP_MODES",
    "FaceLandmarker",
    "FanLandmarker",
    "FrameSource",
    "MediaError",
    "VideoInfo",
    "VideoWriter",
    "YuNetLandmarker",
    "default_detector",
    "default_landmarker",
    "find_best_frame",
    "find_yunet_model",
    "fit_square",
    "load_image",
    "open_frames",
    "read_frame",
    "square_box",
    "to_tensor",
    "to_uint8",
]
