"""Expression-like motion of a still portrait, for self-supervised training pairs (issue 10).

A still under a random affine warp only ever shows the whole face sliding, turning in the image plane and
scaling. These warps add what a talking head does and an affine map cannot: the head turning sideways (a
cylinder rotation of the face with the nose tip standing out in front of it), the mouth opening (the lower
lip and chin drop, the gap between the lips goes dark red) and the eyes closing (the lids close towards the
eye line). They are smooth backward maps for ``cv2.remap`` built from the 5 YuNet landmarks of the face.

Coordinates are image pixels ``(x, y)``, x to the right, y down. Landmarks are YuNet's 5 points: the two eye
centres, the nose tip, the two mouth corners (the eyes and the mouth corners in either order).

``numpy`` and ``cv2`` are imported when called (``fomm`` itself needs only torch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: Colour of the inside of an open mouth (RGB).
MOUTH_INSIDE = (70, 30, 30)

__all__ = ["Expression", "FaceFrame", "apply_expression", "expression_maps", "random_expressions"]


@dataclass(frozen=True)
class Expression:
    """One frame's expression.

    Attributes:
        yaw: head turn in radians (positive: the face turns towards +x of the image, the nose moves right).
        mouth: mouth opening in ``[0, 1]`` (1: the lower lip drops by :attr:`FaceFrame.mouth_drop` pixels).
        blink: eye closing in ``[0, 1]`` (1: nearly closed).
    """

    yaw: float = 0.0
    mouth: float = 0.0
    blink: float = 0.0


@dataclass(frozen=True)
class FaceFrame:
    """Where the face's parts are, from YuNet's 5 landmarks (pixels)."""

    eyes: tuple[tuple[float, float], tuple[float, float]]
    nose: tuple[float, float]
    mouth_corners: tuple[tuple[float, float], tuple[float, float]]

    @classmethod
    def from_landmarks(cls, points: np.ndarray) -> FaceFrame:
        """From a ``(5, 2)`` array: two eyes, nose tip, two mouth corners (YuNet's order)."""
        import numpy as np

        p = np.asarray(points, dtype=np.float64)
        if p.shape != (5, 2) or not np.isfinite(p).all():
            raise ValueError(f"landmarks must be a finite (5, 2) array, got shape {p.shape}")
        eyes = sorted((tuple(map(float, p[0])), tuple(map(float, p[1]))))
        mouth = sorted((tuple(map(float, p[3])), tuple(map(float, p[4]))))
        return cls(eyes=(eyes[0], eyes[1]), nose=(float(p[2, 0]), float(p[2, 1])), mouth_corners=(mouth[0], mouth[1]))

    @property
    def eye_distance(self) -> float:
        (x0, y0), (x1, y1) = self.eyes
        return max(1.0, math.hypot(x1 - x0, y1 - y0))

    @property
    def mouth_centre(self) -> tuple[float, float]:
        (x0, y0), (x1, y1) = self.mouth_corners
        return (x0 + x1) / 2.0, (y0 + y1) / 2.0

    @property
    def mouth_width(self) -> float:
        (x0, y0), (x1, y1) = self.mouth_corners
        return max(1.0, math.hypot(x1 - x0, y1 - y0))

    @property
    def mouth_drop(self) -> float:
        """How far the lower lip drops at ``mouth = 1`` (pixels): a third of the eye distance."""
        return self.eye_distance / 3.0


def _smoothstep(x: np.ndarray) -> np.ndarray:
    import numpy as np

    t = np.clip(x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def expression_maps(shape: tuple[int, int], face: FaceFrame, expression: Expression) -> tuple[np.ndarray, np.ndarray]:
    """Backward maps for ``cv2.remap``: output pixel ``(x, y)`` takes the input at ``(map_x, map_y)``.

    Args:
        shape: ``(H, W)`` of the image.
        face: the face's landmarks.
        expression: yaw, mouth and blink of the frame (all zero: the identity map, exactly).

    Returns:
        ``map_x, map_y``: ``(H, W)`` float32, and no gap darkening (see :func:`apply_expression`).
    """
    maps, _ = _maps_and_gap(shape, face, expression)
    return maps


def _maps_and_gap(
    shape: tuple[int, int], face: FaceFrame, expression: Expression
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    import cv2
    import numpy as np

    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    src_x, src_y = xs.copy(), ys.copy()
    gap = np.zeros((height, width))
    d = face.eye_distance
    (ex0, ey0), (ex1, ey1) = face.eyes
    eye_x, eye_y = (ex0 + ex1) / 2.0, (ey0 + ey1) / 2.0
    mouth_x, mouth_y = face.mouth_centre

    # Mouth opening: below the lip line the lower lip and chin come down by `drop` (fading out below the
    # chin); between the lips a dark gap shaped like a lens between the mouth corners.
    if expression.mouth > 0.0:
        half = 0.5 * face.mouth_width
        lens = np.clip(1.0 - ((xs - mouth_x) / (1.25 * half)) ** 2, 0.0, None)
        drop = float(expression.mouth) * face.mouth_drop * lens
        chin = mouth_y + 0.75 * d
        fade = 1.0 - _smoothstep((ys - chin) / (0.6 * d))
        below = ys >= mouth_y
        in_gap = below & (ys < mouth_y + drop)
        shifted = np.where(in_gap, mouth_y, ys - drop * fade)
        src_y = np.where(below, shifted, src_y)
        inner = np.clip(1.0 - ((xs - mouth_x) / half) ** 2, 0.0, None)
        gap = np.where(in_gap, np.sqrt(inner), 0.0)
        gap = cv2.GaussianBlur(gap, (0, 0), max(0.5, 0.03 * d))

    # Eyes closing: near each eye, sample further from the eye line, so the lids close over the eye.
    if expression.blink > 0.0:
        for ex, ey in face.eyes:
            weight = np.exp(-(((xs - ex) / (0.32 * d)) ** 2) - ((ys - ey) / (0.22 * d)) ** 2)
            stretch = 1.0 + 2.5 * float(expression.blink) * weight
            src_y = ey + (src_y - ey) * stretch

    # Head turn: the inner face moves sideways against the head's outline (a smooth bump of displacement,
    # largest between the eyes and the mouth, none at the outline), the nose tip further, as it stands out in
    # front of the face. Weighted to the head so the background and shoulders stay.
    if expression.yaw != 0.0:
        shift = math.sin(float(expression.yaw)) * d
        centre_y = (eye_y + mouth_y) / 2.0
        face_bump = np.exp(-(((src_x - eye_x) / (0.75 * d)) ** 2) - ((src_y - centre_y) / (1.1 * d)) ** 2)
        nose_x, nose_y = face.nose
        nose_bump = np.exp(-(((src_x - nose_x) / (0.3 * d)) ** 2) - ((src_y - nose_y) / (0.45 * d)) ** 2)
        src_x = src_x - shift * (0.55 * face_bump + 0.3 * nose_bump)

    return (src_x.astype(np.float32), src_y.astype(np.float32)), gap


def apply_expression(image: np.ndarray, face: FaceFrame, expression: Expression) -> np.ndarray:
    """``image`` ``(H, W, 3)`` uint8 with the expression applied (the mouth's gap filled with :data:`MOUTH_INSIDE`)."""
    import cv2
    import numpy as np

    if expression == Expression():
        return image.copy()
    (map_x, map_y), gap = _maps_and_gap(image.shape[:2], face, expression)
    out = cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if gap.any():
        g = gap[..., None]
        out = np.clip(out.astype(np.float32) * (1.0 - g) + np.float32(MOUTH_INSIDE) * g + 0.5, 0, 255)
        out = out.astype(np.uint8)
    return out


def random_expressions(frames: int, rng: np.random.Generator, *, max_yaw_degrees: float = 18.0) -> list[Expression]:
    """A smooth random expression track: yaw swinging within ``max_yaw_degrees``, the mouth opening and
    closing (closed part of the time), a blink or two of about 0.2 s at 25 fps."""
    import numpy as np

    t = np.linspace(0.0, 1.0, frames)

    def wave(cycles: tuple[float, float]) -> np.ndarray:
        c = rng.uniform(*cycles, size=2)
        p = rng.uniform(0.0, 2 * np.pi, size=2)
        w = rng.uniform(0.3, 1.0, size=2)
        return (w[0] * np.sin(2 * np.pi * c[0] * t + p[0]) + w[1] * np.sin(2 * np.pi * c[1] * t + p[1])) / 2.0

    yaw = math.radians(max_yaw_degrees) * np.clip(1.6 * wave((0.3, 1.2)), -1.0, 1.0)
    mouth = np.clip(1.8 * wave((0.8, 3.0)) + rng.uniform(-0.2, 0.3), 0.0, 1.0)
    blink = np.zeros(frames)
    for _ in range(int(rng.integers(0, 3))):
        centre = rng.uniform(0.0, frames)
        blink = np.maximum(blink, np.clip(1.0 - np.abs(np.arange(frames) - centre) / 2.5, 0.0, 1.0))
    return [Expression(float(y), float(m), float(b)) for y, m, b in zip(yaw, mouth, blink, strict=True)]
