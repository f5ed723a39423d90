"""Media helpers: images, videos and faces (optional dependencies: OpenCV, PyAV, face-alignment).

Nothing in :mod:`fomm` imports this package; OpenCV and PyAV are imported only when a function needs them.
Frames and images are ``(H, W, 3)`` uint8 RGB arrays; model tensors are float ``(N, 3, H, W)`` RGB in
``[0, 1]``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: public name -> the submodule that defines it (imported on first use, PEP 562: ``fomm.media.assets`` and
#: ``fomm.media.errors`` stay light, and the entry points answer ``--help`` without numpy, OpenCV or torch)
_EXPORTS = {
    "MediaError": "errors",
    "FaceLandmarker": "faces",
    "FanLandmarker": "faces",
    "YuNetLandmarker": "faces",
    "default_detector": "faces",
    "default_landmarker": "faces",
    "find_best_frame": "faces",
    "find_yunet_model": "faces",
    "CROP_MODES": "image",
    "fit_square": "image",
    "load_image": "image",
    "square_box": "image",
    "to_tensor": "image",
    "to_uint8": "image",
    "FrameSource": "video",
    "VideoInfo": "video",
    "VideoWriter": "video",
    "open_frames": "video",
    "read_frame": "video",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fomm.media' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


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
