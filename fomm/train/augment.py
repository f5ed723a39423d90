"""Webcam-like degradations and synthetic occluders for the keypoint detector's copy of the driving frame, and
a face-shape change of a whole pair.

FOMM reconstructs the driving frame from the source, so the loss target (the driving frame) and the source stay
clean; only what the keypoint detector sees of the driving frame is degraded, so that keypoints from a noisy,
blurred, badly exposed, compressed or partly hidden webcam frame still drive the clean motion.

The degradations take and return one float32 RGB frame ``(3, H, W)`` in ``[0, 1]``; :func:`reshape_pair` takes
the (source, driving) pair ``(2, 3, H, W)`` and warps both frames alike, so the pair shows a differently shaped
face making the same motion (a few people become many face shapes for the keypoint detector and generator).
Every random choice is drawn from ``generator`` (``None``: torch's default generator, which the trainer seeds
for every item).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["degrade_webcam", "paste_occluder", "reshape_pair", "tilt_frame"]

#: Probability of each degradation once a frame is picked for webcam degradation (``--webcam-aug P``).
BLUR_P = 0.5
NOISE_P = 0.5
EXPOSURE_P = 0.5
JPEG_P = 0.5
RESCALE_P = 0.3
#: Strength ranges.
BLUR_SIGMA = (0.5, 2.0)
NOISE_STD = (0.01, 0.06)
GAMMA = (0.6, 1.6)
GAIN = (0.7, 1.3)
JPEG_QUALITY = (30, 90)
RESCALE_FACTOR = (0.25, 0.6)
#: Face-shape change of a pair (``--shape-aug P``): horizontal and vertical scale factors of the content (drawn
#: independently), shear, and the weight spread of a 3x3 thin-plate spline (local proportions).
SHAPE_SCALE = (0.85, 1.15)
SHAPE_SHEAR = 0.08
SHAPE_TPS_SIGMA = 0.01
#: Head tilt of a driving frame (``--tilt-aug P``): the largest turn, in degrees, either way.
TILT_DEGREES = 25.0


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _chance(p: float, generator: torch.Generator | None) -> bool:
    return float(torch.rand((), generator=generator)) < p


def _gaussian_blur(frame: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=frame.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    out = frame.unsqueeze(1)  # (3, 1, H, W): channels as batch
    out = F.conv2d(F.pad(out, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    out = F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return out.squeeze(1)


def _jpeg(frame: torch.Tensor, quality: int) -> torch.Tensor:
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - opencv is a dependency of the data pipeline
        raise ImportError("JPEG degradation needs OpenCV: pip install opencv-python") from exc
    import numpy as np

    rgb = (frame.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - imencode of a valid uint8 image does not fail
        return frame
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(decoded)).permute(2, 0, 1).float().div_(255.0)


def _rescale(frame: torch.Tensor, factor: float) -> torch.Tensor:
    height, width = frame.shape[-2:]
    small = (max(2, round(height * factor)), max(2, round(width * factor)))
    out = F.interpolate(frame.unsqueeze(0), size=small, mode="area")
    return F.interpolate(out, size=(height, width), mode="bilinear", align_corners=False).squeeze(0)


def degrade_webcam(frame: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """A webcam-like copy of ``frame``: each of exposure/gamma, downscale-upscale, Gaussian blur, Gaussian noise
    and JPEG compression (quality 30-90) applied with its own probability and a random strength.

    Args:
        frame: ``(3, H, W)`` float RGB in ``[0, 1]``.

    Returns:
        A new ``(3, H, W)`` float32 tensor in ``[0, 1]``; ``frame`` is not changed.
    """
    out = frame.float().clone()
    if _chance(EXPOSURE_P, generator):
        gamma, gain = _uniform(*GAMMA, generator), _uniform(*GAIN, generator)
        out = (out.clamp(0.0, 1.0) ** gamma * gain).clamp(0.0, 1.0)
    if _chance(RESCALE_P, generator):
        out = _rescale(out, _uniform(*RESCALE_FACTOR, generator))
    if _chance(BLUR_P, generator):
        out = _gaussian_blur(out, _uniform(*BLUR_SIGMA, generator))
    if _chance(NOISE_P, generator):
        std = _uniform(*NOISE_STD, generator)
        out = out + std * torch.randn(out.shape, generator=generator)
    out = out.clamp(0.0, 1.0)
    if _chance(JPEG_P, generator):
        low, high = JPEG_QUALITY
        out = _jpeg(out, int(torch.randint(low, high + 1, (), generator=generator)))
    return out.contiguous()


def _blob_mask(height: int, width: int, generator: torch.Generator | None) -> torch.Tensor:
    """A soft-edged ``(H, W)`` mask in ``[0, 1]``: one filled ellipse, or a hand-like blob (a palm ellipse with
    three to five finger ellipses fanning out of it), at a random place, size and angle."""
    ys = torch.linspace(-1.0, 1.0, height).view(-1, 1)
    xs = torch.linspace(-1.0, 1.0, width).view(1, -1)

    def ellipse(cx: float, cy: float, rx: float, ry: float, angle: float) -> torch.Tensor:
        cos, sin = math.cos(angle), math.sin(angle)
        u = ((xs - cx) * cos + (ys - cy) * sin) / rx
        v = (-(xs - cx) * sin + (ys - cy) * cos) / ry
        edge = 2.0 / min(height, width) / min(rx, ry)  # about one pixel of soft edge
        return ((1.0 - (u * u + v * v)) / edge).clamp(0.0, 1.0)

    cx, cy = _uniform(-0.8, 0.8, generator), _uniform(-0.8, 0.8, generator)
    angle = _uniform(0.0, math.pi, generator)
    rx, ry = _uniform(0.15, 0.45, generator), _uniform(0.15, 0.45, generator)
    mask = ellipse(cx, cy, rx, ry, angle)
    if _chance(0.5, generator):  # hand-like: fingers out of the palm's far side
        fingers = int(torch.randint(3, 6, (), generator=generator))
        for k in range(fingers):
            spread = angle + (k - (fingers - 1) / 2) * _uniform(0.2, 0.35, generator)
            length = ry * _uniform(0.7, 1.1, generator)
            fx = cx + math.sin(spread) * (ry + length * 0.8)
            fy = cy - math.cos(spread) * (ry + length * 0.8)
            finger = ellipse(fx, fy, max(0.04, rx * 0.25), length, spread)
            mask = torch.maximum(mask, finger)
    return mask


def paste_occluder(
    frame: torch.Tensor, *, texture: torch.Tensor | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``frame`` with a random filled ellipse or hand-like blob pasted over part of it.

    Args:
        frame: ``(3, H, W)`` float RGB in ``[0, 1]``.
        texture: ``(3, H, W)`` float RGB in ``[0, 1]`` (e.g. another video's frame): with probability 1/2 the
            occluder is filled with it (shifted at random), otherwise with a random flat colour. ``None``:
            always a flat colour.

    Returns:
        A new ``(3, H, W)`` float32 tensor in ``[0, 1]``; ``frame`` is not changed.
    """
    frame = frame.float()
    height, width = frame.shape[-2:]
    mask = _blob_mask(height, width, generator)
    if texture is not None and _chance(0.5, generator):
        dy = int(torch.randint(height, (), generator=generator))
        dx = int(torch.randint(width, (), generator=generator))
        fill = texture.float().roll((dy, dx), dims=(-2, -1))
    else:
        fill = torch.rand(3, 1, 1, generator=generator).expand_as(frame)
    return (frame * (1.0 - mask) + fill * mask).clamp(0.0, 1.0).contiguous()


def reshape_pair(pair: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Both frames of a pair warped by one random face-shape change: the content is scaled by factors drawn from
    :data:`SHAPE_SCALE` horizontally and vertically (independently: wider, narrower, longer faces), sheared by
    up to :data:`SHAPE_SHEAR` and bent by a small 3x3 thin-plate spline, about the frame centre; borders are
    filled by reflection. The motion from source to driving is kept (warped alike), the person's shape is not.

    Args:
        pair: ``(2, 3, H, W)`` float RGB in ``[0, 1]`` (source, driving).

    Returns:
        A new ``(2, 3, H, W)`` float32 tensor in ``[0, 1]``; ``pair`` is not changed.
    """
    from ..geometry import make_coordinate_grid
    from .transforms import RandomTpsTransform

    if pair.ndim != 4 or pair.shape[1] != 3:
        raise ValueError(f"expected a (N, 3, H, W) pair, got {tuple(pair.shape)}")
    scale_x = _uniform(*SHAPE_SCALE, generator)
    scale_y = _uniform(*SHAPE_SCALE, generator)
    shear = _uniform(-SHAPE_SHEAR, SHAPE_SHEAR, generator)
    # T maps output coordinates to input ones: content scaled by s samples the input at z / s
    theta = torch.tensor([[1.0 / scale_x, shear, 0.0], [0.0, 1.0 / scale_y, 0.0]])
    spline = torch.randn(1, 9, generator=generator) * SHAPE_TPS_SIGMA
    n = len(pair)
    transform = RandomTpsTransform(
        theta.expand(n, 2, 3).contiguous(),
        spline.expand(n, 9).contiguous(),
        make_coordinate_grid(3, 3).view(-1, 2),
        align_corners=True,
    )
    return transform.transform_frame(pair.float()).clamp(0.0, 1.0).contiguous()


def tilt_frame(
    frame: torch.Tensor, *, degrees: float | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One frame turned about its centre, as a head tilted in the image plane: by ``degrees`` (counter-clockwise
    on screen for positive values), or by a random angle within ``+-TILT_DEGREES``; borders are filled by
    reflection. Applied to the driving frame of a pair only, it gives the pair a tilt the videos may lack.

    Args:
        frame: ``(3, H, W)`` float RGB in ``[0, 1]``.

    Returns:
        A new ``(3, H, W)`` float32 tensor in ``[0, 1]``; ``frame`` is not changed.
    """
    from ..geometry import make_coordinate_grid
    from .transforms import RandomTpsTransform

    if frame.ndim != 3 or frame.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) frame, got {tuple(frame.shape)}")
    if degrees is None:
        degrees = _uniform(-TILT_DEGREES, TILT_DEGREES, generator)
    a = math.radians(degrees)
    height, width = frame.shape[-2:]
    # T maps output (x, y) coordinates (y down) to input ones; R(a) = [[cos, -sin], [sin, cos]] there turns
    # clockwise on screen, so content turned counter-clockwise by a samples the input at R(a) z; the aspect
    # ratio keeps the turn rigid in pixels
    ratio = width / height
    theta = torch.tensor([[math.cos(a), -math.sin(a) / ratio, 0.0], [math.sin(a) * ratio, math.cos(a), 0.0]])
    transform = RandomTpsTransform(
        theta[None].contiguous(),
        torch.zeros(1, 9),
        make_coordinate_grid(3, 3).view(-1, 2),
        align_corners=True,
    )
    return transform.transform_frame(frame[None].float())[0].clamp(0.0, 1.0).contiguous()
