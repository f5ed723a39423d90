"""Drawing for the preview window: keypoints, status text, and the side-by-side preview image.

All images are ``(H, W, 3)`` uint8 **BGR** (OpenCV order). OpenCV is imported lazily.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from fomm.media._deps import import_cv2

from .types import View

__all__ = [
    "NO_FACE_TEXT",
    "compose_preview",
    "draw_banner",
    "draw_keypoints",
    "draw_lines",
    "import_cv2",
    "keypoint_colors",
]

logger = logging.getLogger(__name__)

NO_FACE_TEXT = "NO FACE - holding last crop"
_RED_BGR = (0, 0, 220)
_WHITE_BGR = (255, 255, 255)
_DARK_BGR = (0, 0, 0)


def _drawable(image: np.ndarray) -> np.ndarray:
    """``image`` itself when OpenCV can draw on it in place, else a contiguous copy."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a (H, W, 3) uint8 BGR image, got {image.dtype} {image.shape}")
    if image.flags.c_contiguous and image.flags.writeable:
        return image
    return np.ascontiguousarray(image).copy()


def keypoint_colors(count: int) -> list[tuple[int, int, int]]:
    """``count`` clearly distinct BGR colours (evenly spaced hues, full saturation)."""
    if count <= 0:
        return []
    cv2 = import_cv2()
    hues = (np.arange(count) * 180.0 / count).astype(np.uint8)
    hsv = np.stack([hues, np.full(count, 255, np.uint8), np.full(count, 255, np.uint8)], axis=-1)[None]
    bgr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]
    return [tuple(int(c) for c in colour) for colour in bgr]  # type: ignore[misc]


def draw_keypoints(image_bgr: np.ndarray, keypoints: np.ndarray, radius: int | None = None) -> np.ndarray:
    """Draw keypoints as filled dots, one distinct colour per keypoint, each with a dark outline.

    Args:
        image_bgr: ``(H, W, 3)`` uint8 BGR; drawn on in place when C-contiguous and writable.
        keypoints: ``(K, 2)`` float ``(x, y)`` in ``[-1, 1]`` (FOMM's coordinate grid: ``-1`` is the centre of the
            first pixel, ``1`` the centre of the last one), so ``(-1, -1)`` is pixel ``(0, 0)`` and ``(1, 1)`` is
            pixel ``(W - 1, H - 1)``. Points outside the image are clipped to its border.
        radius: dot radius in pixels (default: about 1/85 of the image size, at least 2).

    Returns:
        The drawn image (``image_bgr`` itself, or a copy when it could not be drawn on in place).
    """
    cv2 = import_cv2()
    image = _drawable(image_bgr)
    points = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    height, width = image.shape[:2]
    if radius is None:
        radius = max(2, round(min(height, width) / 85))
    xs = np.clip(np.rint((points[:, 0] + 1.0) * 0.5 * (width - 1)), 0, width - 1).astype(int)
    ys = np.clip(np.rint((points[:, 1] + 1.0) * 0.5 * (height - 1)), 0, height - 1).astype(int)
    for x, y, colour in zip(xs, ys, keypoint_colors(len(points)), strict=True):
        if radius > 1:
            cv2.circle(image, (int(x), int(y)), radius + 1, _DARK_BGR, -1, cv2.LINE_AA)
        cv2.circle(image, (int(x), int(y)), radius, colour, -1, cv2.LINE_AA)
    return image


def _font_scale(image_height: int) -> float:
    return float(np.clip(image_height / 512.0, 0.4, 1.0))


def draw_lines(
    image_bgr: np.ndarray,
    lines: Sequence[str],
    origin: tuple[int, int] = (8, 18),
    *,
    scale: float | None = None,
    color: tuple[int, int, int] = _WHITE_BGR,
) -> np.ndarray:
    """Draw text lines top to bottom, white with a dark outline so they read on any background.

    Args:
        image_bgr: ``(H, W, 3)`` uint8 BGR; drawn on in place when C-contiguous and writable.
        lines: the text, one entry per line (ASCII; OpenCV's Hershey font has no other glyphs).
        origin: ``(x, y)`` pixel of the first line's baseline start.
        scale: font scale (default: from the image height, 0.4 to 1.0).
        color: BGR text colour.

    Returns:
        The drawn image (``image_bgr`` itself, or a copy when it could not be drawn on in place).
    """
    cv2 = import_cv2()
    image = _drawable(image_bgr)
    scale = _font_scale(image.shape[0]) if scale is None else scale
    thickness = 1 if scale < 0.8 else 2
    (_, text_height), baseline = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    step = text_height + baseline + max(2, round(4 * scale))
    x, y = origin
    for line in lines:
        cv2.putText(image, line, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, _DARK_BGR, thickness + 2, cv2.LINE_AA)
        cv2.putText(image, line, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)
        y += step
    return image


def draw_banner(image_bgr: np.ndarray, text: str = NO_FACE_TEXT) -> np.ndarray:
    """A red bar with white text across the bottom of the image (e.g. "no face").

    Args:
        image_bgr: ``(H, W, 3)`` uint8 BGR; drawn on in place when C-contiguous and writable.
        text: the banner text.

    Returns:
        The drawn image.
    """
    cv2 = import_cv2()
    image = _drawable(image_bgr)
    height, width = image.shape[:2]
    scale = _font_scale(height)
    thickness = 1 if scale < 0.8 else 2
    (text_width, text_height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    bar = text_height + baseline + 12
    top = max(0, height - bar)
    cv2.rectangle(image, (0, top), (width - 1, height - 1), _RED_BGR, -1)
    x = max(4, (width - text_width) // 2)
    y = min(height - 1, top + 6 + text_height)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, _WHITE_BGR, thickness, cv2.LINE_AA)
    return image


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    """Resize to ``height`` rows keeping the aspect ratio."""
    if image.shape[0] == height:
        return np.ascontiguousarray(image)
    cv2 = import_cv2()
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    interpolation = cv2.INTER_AREA if height < image.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def compose_preview(view: View) -> np.ndarray:
    """The preview window's image: driver crop | avatar, side by side, with the overlay drawn.

    Left panel: ``view.crop`` (with ``view.keypoints`` drawn when present), or the camera frame when there is no
    crop. Right panel: ``view.output``, or the camera frame when ``view.passthrough``. Both panels are
    ``S`` rows high (``S`` = the output's height); a non-square panel keeps its aspect ratio. ``view.lines`` are
    drawn at the top left, and a red "NO FACE - holding last crop" banner across the bottom when
    ``view.face_found`` is False. The view's arrays are not modified.

    Returns:
        ``(S, W_left + W_right, 3)`` uint8 BGR.
    """
    size = int(view.output.shape[0])
    if view.crop is not None:
        left = _fit_height(view.crop, size).copy()
        if view.keypoints is not None and len(view.keypoints):
            draw_keypoints(left, view.keypoints)
    else:
        left = _fit_height(view.camera, size).copy()
    right = _fit_height(view.camera if view.passthrough else view.output, size)
    canvas = np.concatenate([left, right], axis=1)
    if not view.face_found:
        draw_banner(canvas)
    if view.lines:
        draw_lines(canvas, view.lines)
    return canvas
