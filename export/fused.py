"""The ``fused`` export variant: a :class:`~fomm.geometry.WarpImpl` whose warps export as one custom node each.

Under ``with use_warp_impl(FusedWarpExport()):`` the model computes exactly the PyTorch reference (the
forward of each function is the reference body), while the TorchScript ONNX exporter records one
``fomm.warp::WarpMulti`` / ``fomm.warp::WarpOccluded`` node (names, version and attribute meanings from
:mod:`export.warp_op`) instead of the GridSample sub-graph.
"""

from __future__ import annotations

from typing import Any

import torch

from fomm import geometry

from . import warp_op

__all__ = ["FusedWarpExport"]


def _reference(fn: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
    with geometry.use_warp_impl(None):
        return fn(*args, **kwargs)


def _sizes(value: Any) -> list[int | None] | None:
    sizes = value.type().varyingSizes() if hasattr(value.type(), "varyingSizes") else None
    return list(sizes) if sizes is not None else None


def _typed(out: Any, like: Any, sizes: list[int | None] | None) -> Any:
    if sizes is not None:
        out.setType(like.type().with_sizes(sizes))
    return out


class _WarpMultiFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, image: torch.Tensor, grids: torch.Tensor, align_corners: bool) -> torch.Tensor:
        return _reference(geometry.warp_multi, image, grids, align_corners=align_corners)

    @staticmethod
    def symbolic(g: Any, image: Any, grids: Any, align_corners: bool) -> Any:
        out = g.op(
            f"{warp_op.DOMAIN}::{warp_op.WARP_MULTI}",
            image,
            grids,
            align_corners_i=int(align_corners),
            padding_mode_i=warp_op.PADDING_MODES["zeros"],
        )
        image_sizes, grid_sizes = _sizes(image), _sizes(grids)
        sizes = None
        if image_sizes is not None and grid_sizes is not None:
            sizes = [grid_sizes[0], grid_sizes[1], image_sizes[1], grid_sizes[2], grid_sizes[3]]
        return _typed(out, image, sizes)


class _WarpOccludedFn(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, image: torch.Tensor, grid: torch.Tensor, occlusion: torch.Tensor, align_corners: bool
    ) -> torch.Tensor:
        return _reference(geometry.warp_occluded, image, grid, occlusion, align_corners=align_corners)

    @staticmethod
    def symbolic(g: Any, image: Any, grid: Any, occlusion: Any, align_corners: bool) -> Any:
        out = g.op(
            f"{warp_op.DOMAIN}::{warp_op.WARP_OCCLUDED}",
            image,
            grid,
            occlusion,
            align_corners_i=int(align_corners),
            padding_mode_i=warp_op.PADDING_MODES["zeros"],
        )
        image_sizes, grid_sizes = _sizes(image), _sizes(grid)
        sizes = None
        if image_sizes is not None and grid_sizes is not None:
            sizes = [grid_sizes[0], image_sizes[1], grid_sizes[1], grid_sizes[2]]
        return _typed(out, image, sizes)


class FusedWarpExport:
    """Warp implementation for export: reference numbers, one custom ONNX node per fused warp."""

    name = "onnx-fused-export"

    def supports(self, image: torch.Tensor) -> bool:
        return True

    def warp_multi(self, image: torch.Tensor, grids: torch.Tensor, *, align_corners: bool) -> torch.Tensor:
        return _WarpMultiFn.apply(image, grids, align_corners)

    def warp_occluded(
        self, image: torch.Tensor, grid: torch.Tensor, occlusion: torch.Tensor, *, align_corners: bool
    ) -> torch.Tensor:
        return _WarpOccludedFn.apply(image, grid, occlusion, align_corners)
