"""Lazy imports of the optional media dependencies, with install hints."""

from __future__ import annotations

from types import ModuleType

from .errors import MediaError

__all__ = ["have_av", "import_av", "import_cv2"]


def import_cv2() -> ModuleType:
    """``cv2`` or a :class:`MediaError` saying how to install it."""
    try:
        import cv2
    except ImportError as exc:
        raise MediaError(
            f"OpenCV is needed for images and faces but cannot be imported ({exc}); "
            "install it with: pip install 'opencv-python>=4.10,<5' (one OpenCV distribution only)"
        ) from exc
    return cv2


def import_av() -> ModuleType:
    """``av`` (PyAV) or a :class:`MediaError` saying how to install it."""
    try:
        import av
    except ImportError as exc:
        raise MediaError(f"PyAV is needed for video files but cannot be imported ({exc}); pip install av") from exc
    return av


def have_av() -> bool:
    """Whether PyAV imports."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True
