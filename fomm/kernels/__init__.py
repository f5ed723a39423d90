"""Accelerated implementations of the fused warps (optional dependencies imported on first use)."""

from .triton_warp import (
    TRITON_INSTALL_HINT,
    TritonWarp,
    cuda_tensor,
    interpreter_enabled,
    launch_warp_multi,
    launch_warp_occluded,
    triton_available,
)

__all__ = [
    "TRITON_INSTALL_HINT",
    "TritonWarp",
    "cuda_tensor",
    "interpreter_enabled",
    "launch_warp_multi",
    "launch_warp_occluded",
    "triton_available",
]
