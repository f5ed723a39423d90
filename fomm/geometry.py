"""Pure geometry helpers shared by every network.

Coordinate convention everywhere: points are ``(x, y)`` in ``[-1, 1]``; ``x`` grows to the right and ``y``
downwards; ``-1`` and ``1`` are the centres of the first and last pixel (the original FOMM grid).
Jacobians are ``(..., 2, 2)`` row-major: ``J @ [dx, dy]``.

:func:`warp` is the only place in the package that calls ``grid_sample``. The two per-frame warps of the
model go through the fused operations :func:`warp_multi` (one source, K+1 grids) and :func:`warp_occluded`
(warp, then multiply by an occlusion map); their bodies here are the PyTorch reference, which export and
accelerated kernels replace with one named operation each.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Protocol

import torch
import torch.nn.functional as F

__all__ = [
    "DET_EPS",
    "WarpImpl",
    "active_warp_impl",
    "convex_hull_area",
    "determinant_2x2",
    "inverse_2x2",
    "kp2gaussian",
    "make_coordinate_grid",
    "resize",
    "use_warp_impl",
    "warp",
    "warp_multi",
    "warp_occluded",
]


def make_coordinate_grid(
    height: int, width: int, *, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> torch.Tensor:
    """A ``(height, width, 2)`` grid of ``(x, y)`` pixel-centre coordinates in ``[-1, 1]``.

    A side of one pixel has the single coordinate 0 (the centre), not ``0 / 0``. Computed in float32 and cast
    to ``dtype`` (ONNX's Range has no float16, which an fp16 export needs; and it is more exact).
    """
    x = _axis(width, device)
    y = _axis(height, device)
    yy = y.view(-1, 1).expand(height, width)
    xx = x.view(1, -1).expand(height, width)
    return torch.stack([xx, yy], dim=2).to(dtype)


def _axis(n: int, device: torch.device | None) -> torch.Tensor:
    if n == 1:
        return torch.zeros(1, dtype=torch.float32, device=device)
    return 2 * (torch.arange(n, dtype=torch.float32, device=device) / (n - 1)) - 1


def kp2gaussian(value: torch.Tensor, height: int, width: int, variance: float) -> torch.Tensor:
    """Unnormalised Gaussians centred on keypoints.

    Args:
        value: ``(..., K, 2)`` keypoints, ``(x, y)`` in ``[-1, 1]``.
        height, width: size of the output maps.
        variance: Gaussian variance in ``[-1, 1]`` units (0.01 in every released model).

    Returns:
        ``(..., K, height, width)`` maps with peak 1 at each keypoint.
    """
    grid = make_coordinate_grid(height, width, dtype=value.dtype, device=value.device)
    diff = grid - value[..., None, None, :]
    return torch.exp(-0.5 * (diff**2).sum(-1) / variance)


#: Smallest ``|det|`` :func:`inverse_2x2` divides by; a jacobian below it is treated as singular.
DET_EPS = 1e-6


def determinant_2x2(matrix: torch.Tensor) -> torch.Tensor:
    """Determinants ``(...)`` of ``(..., 2, 2)`` matrices."""
    return matrix[..., 0, 0] * matrix[..., 1, 1] - matrix[..., 0, 1] * matrix[..., 1, 0]


def inverse_2x2(matrix: torch.Tensor, eps: float = DET_EPS) -> torch.Tensor:
    """Closed-form inverse of ``(..., 2, 2)`` matrices (adjugate over determinant).

    Exportable to ONNX (``torch.inverse`` is not) and exact for FOMM's near-identity jacobians. A (near-)singular
    matrix has its determinant clamped to ``eps`` in magnitude, keeping its sign (0 counts as positive), so the
    result stays finite (large, not infinite); matrices with ``|det| >= eps`` are inverted exactly as before.
    """
    a = matrix[..., 0, 0]
    b = matrix[..., 0, 1]
    c = matrix[..., 1, 0]
    d = matrix[..., 1, 1]
    det = a * d - b * c
    sign = torch.where(det < 0, -torch.ones_like(det), torch.ones_like(det))
    det = torch.where(det.abs() < eps, sign * eps, det)
    adjugate = torch.stack([torch.stack([d, -b], dim=-1), torch.stack([-c, a], dim=-1)], dim=-2)
    return adjugate / det[..., None, None]


def warp(
    image: torch.Tensor,
    grid: torch.Tensor,
    *,
    align_corners: bool,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Sample ``image`` at ``grid``: the one grid-sample call site of the package.

    Args:
        image: ``(B, C, H, W)``.
        grid: ``(B, h, w, 2)`` sampling positions, ``(x, y)`` in ``[-1, 1]``.
        align_corners: ``True``: -1/1 are the centres of the corner pixels (torch 1.0 behaviour, which the
            released checkpoints were trained with); ``False``: -1/1 are the outer pixel edges.

    Returns:
        ``(B, C, h, w)``.
    """
    return F.grid_sample(image, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)


class WarpImpl(Protocol):
    """Another implementation of the fused warps (a Triton kernel, an ONNX custom node for export, ...).

    Both methods take and return what :func:`warp_multi` and :func:`warp_occluded` do, with the same meaning.
    ``supports`` says whether this implementation handles these tensors (device, dtype); when it does not, the
    PyTorch reference runs.
    """

    name: str

    def supports(self, image: torch.Tensor) -> bool: ...

    def warp_multi(self, image: torch.Tensor, grids: torch.Tensor, *, align_corners: bool) -> torch.Tensor: ...

    def warp_occluded(
        self, image: torch.Tensor, grid: torch.Tensor, occlusion: torch.Tensor, *, align_corners: bool
    ) -> torch.Tensor: ...


_active_impl: WarpImpl | None = None


def active_warp_impl() -> WarpImpl | None:
    """The implementation :func:`warp_multi` / :func:`warp_occluded` use now (``None``: the reference)."""
    return _active_impl


@contextlib.contextmanager
def use_warp_impl(impl: WarpImpl | None) -> Iterator[None]:
    """Within the block, the fused warps run ``impl`` (``None``: the PyTorch reference). Not thread-local:
    set it around a whole forward pass (export, a backend's step), not per thread."""
    global _active_impl
    previous, _active_impl = _active_impl, impl
    try:
        yield
    finally:
        _active_impl = previous


def warp_multi(image: torch.Tensor, grids: torch.Tensor, *, align_corners: bool) -> torch.Tensor:
    """Sample one image at several grids (the K+1 sparse warps of dense motion), bilinear, zero padding.

    Args:
        image: ``(B, C, H, W)``.
        grids: ``(B, N, h, w, 2)`` sampling positions, ``(x, y)`` in ``[-1, 1]``.
        align_corners: as in :func:`warp`.

    Returns:
        ``(B, N, C, h, w)``: ``out[:, n] = warp(image, grids[:, n])``.
    """
    impl = _active_impl
    if impl is not None and impl.supports(image):
        return impl.warp_multi(image, grids, align_corners=align_corners)
    b, c, height, width = image.shape
    n, h, w = grids.shape[1:4]
    repeated = image.unsqueeze(1).expand(b, n, c, height, width).reshape(b * n, c, height, width)
    out = warp(repeated, grids.reshape(b * n, h, w, 2), align_corners=align_corners)
    return out.view(b, n, c, h, w)


def warp_occluded(
    image: torch.Tensor, grid: torch.Tensor, occlusion: torch.Tensor, *, align_corners: bool
) -> torch.Tensor:
    """Warp, then multiply by an occlusion map (the generator's feature warp), bilinear, zero padding.

    Args:
        image: ``(B, C, H, W)`` encoder features.
        grid: ``(B, h, w, 2)`` sampling positions, ``(x, y)`` in ``[-1, 1]``.
        occlusion: ``(B, 1, h, w)`` in ``[0, 1]``.
        align_corners: as in :func:`warp`.

    Returns:
        ``(B, C, h, w)`` = ``warp(image, grid) * occlusion``.
    """
    impl = _active_impl
    if impl is not None and impl.supports(image):
        return impl.warp_occluded(image, grid, occlusion, align_corners=align_corners)
    return warp(image, grid, align_corners=align_corners) * occlusion


def resize(image: torch.Tensor, size: tuple[int, int], *, mode: str = "bilinear") -> torch.Tensor:
    """Resize ``(B, C, H, W)`` to ``size`` = ``(h, w)`` with ``align_corners=False`` (the original's call)."""
    if mode == "nearest":
        return F.interpolate(image, size=size, mode="nearest")
    return F.interpolate(image, size=size, mode=mode, align_corners=False)


def convex_hull_area(points: torch.Tensor) -> float:
    """Area of the convex hull of ``(N, 2)`` points (monotone chain; 0 for degenerate sets, NaN when a point is
    not finite).

    Runs on the CPU in Python: it is called once per calibration, never per frame.
    """
    values = points.detach().cpu().tolist()
    if not all(math.isfinite(v) for point in values for v in point):
        return float("nan")
    pts = sorted({(float(x), float(y)) for x, y in values})
    if len(pts) < 3:
        return 0.0

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    area2 = sum(hull[i][0] * hull[i - 1][1] - hull[i - 1][0] * hull[i][1] for i in range(len(hull)))
    return abs(area2) / 2.0
