"""Identity of the fused warp operations: the one place that names them.

The ONNX exporter emits these nodes (the ``fused`` export variant), ONNX Runtime runs them through a
registered custom-op implementation, and TensorRT's plugin registers under the same name, version and
namespace. Changing anything here changes every exported graph and engine: bump :data:`OP_VERSION`.

Attributes (integers, on every node):
    ``align_corners``: 1 = -1/1 are the centres of the corner pixels, 0 = the outer pixel edges.
    ``padding_mode``: 0 = zeros (the only mode the model uses), 1 = border, 2 = reflection.

Operations (bilinear sampling; coordinates ``(x, y)`` in ``[-1, 1]``):
    ``WarpMulti(image (B, C, H, W), grids (B, N, h, w, 2)) -> (B, N, C, h, w)``: one source, N grids
        (the K+1 sparse warps of dense motion), see :func:`fomm.geometry.warp_multi`.
    ``WarpOccluded(image (B, C, H, W), grid (B, h, w, 2), occlusion (B, 1, h, w)) -> (B, C, h, w)``:
        warp times occlusion (the generator's feature warp), see :func:`fomm.geometry.warp_occluded`.
"""

from __future__ import annotations

__all__ = [
    "DOMAIN",
    "OP_VERSION",
    "PADDING_MODES",
    "WARP_MULTI",
    "WARP_OCCLUDED",
    "plugin_name",
]

DOMAIN = "fomm.warp"
"""ONNX domain of the custom nodes; also the TensorRT plugin namespace."""

OP_VERSION = 1
"""Opset version of :data:`DOMAIN` in exported graphs; also the TensorRT plugin version (as a string)."""

WARP_MULTI = "WarpMulti"
WARP_OCCLUDED = "WarpOccluded"

PADDING_MODES = {"zeros": 0, "border": 1, "reflection": 2}
"""``padding_mode`` attribute values."""


def plugin_name(op_type: str) -> str:
    """TensorRT plugin name for an op type (the ONNX parser looks plugins up by the node's op type)."""
    if op_type not in (WARP_MULTI, WARP_OCCLUDED):
        raise ValueError(f"unknown fused warp op {op_type!r}; expected {WARP_MULTI!r} or {WARP_OCCLUDED!r}")
    return op_type
