"""Triton implementation of the fused warps (:func:`fomm.geometry.warp_multi`, :func:`~fomm.geometry.warp_occluded`).

Bilinear sampling with ``grid_sample``'s semantics (both ``align_corners``, zero or border padding, positions
far outside the image included). Sampling positions, weights and the occlusion multiply are float32 for any
storage dtype (float32, float16, bfloat16); the output has the image's dtype.

- :class:`TritonWarp` is a :class:`fomm.geometry.WarpImpl`: ``with use_warp_impl(TritonWarp()):`` makes the
  model's two per-frame warps run these kernels on CUDA tensors (and on CPU tensors under
  ``TRITON_INTERPRET=1``, Triton's interpreter, for tests).
- :func:`launch_warp_multi` and :func:`launch_warp_occluded` write into a given output tensor on a given CUDA
  stream: what a TensorRT plugin's ``enqueue`` calls with its tensors and its stream.

``triton`` is imported on first use; without it, :func:`triton_available` is false and launching raises an
:class:`ImportError` that says how to install it.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch

__all__ = [
    "TRITON_INSTALL_HINT",
    "TritonWarp",
    "cuda_tensor",
    "interpreter_enabled",
    "launch_warp_multi",
    "launch_warp_occluded",
    "triton_available",
]

TRITON_INSTALL_HINT = "pip install 'fomm-live[gpu]' (or: pip install triton==3.9.0)"

_PADDING = {"zeros": False, "border": True}
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_kernels: dict[bool, Any] = {}


def interpreter_enabled() -> bool:
    """Whether ``TRITON_INTERPRET=1`` is set (Triton then runs kernels on the CPU, slowly)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def triton_available() -> bool:
    """Whether ``triton`` imports."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _kernel() -> Any:
    interpret = interpreter_enabled()
    if interpret not in _kernels:
        try:
            from ._triton_kernels import make_warp_kernel
        except ImportError as exc:
            raise ImportError(
                f"the Triton warp kernels need triton, which cannot be imported ({exc}); {TRITON_INSTALL_HINT}"
            ) from exc
        _kernels[interpret] = make_warp_kernel()
    return _kernels[interpret]


def _stream_context(stream: Any, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Make ``stream`` (``None``, a ``torch.cuda.Stream`` or a raw ``cudaStream_t`` as an int) current."""
    if stream is None:
        return contextlib.nullcontext()
    if device.type != "cuda":
        raise ValueError(f"stream: only CUDA tensors run on a stream; these are on {device}")
    if isinstance(stream, int):
        stream = torch.cuda.ExternalStream(stream, device=device)
    return torch.cuda.stream(stream)


def _check(name: str, tensor: torch.Tensor, ndim: int, image: torch.Tensor) -> None:
    if tensor.dim() != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(tensor.shape)}")
    if tensor.device != image.device:
        raise ValueError(f"{name}: expected a tensor on {image.device} (the image's device), got {tensor.device}")
    if tensor.dtype not in _DTYPES:
        raise ValueError(f"{name}: expected float32, float16 or bfloat16, got {tensor.dtype}")


def _block_sizes(channels: int) -> tuple[int, int]:
    block_c = min(1 << max(channels - 1, 0).bit_length(), 32)
    return 2048 // block_c if block_c > 4 else 256, block_c


def _launch(
    image: torch.Tensor,
    grids: torch.Tensor,
    occlusion: torch.Tensor | None,
    out: torch.Tensor,
    *,
    num_grids: int,
    grid_strides: tuple[int, int, int, int, int],
    out_strides: tuple[int, int, int, int, int],
    align_corners: bool,
    padding_mode: str,
    stream: Any,
) -> torch.Tensor:
    if padding_mode not in _PADDING:
        raise ValueError(f"padding_mode {padding_mode!r}: the Triton warp supports 'zeros' and 'border'")
    b, c, height, width = image.shape
    out_h, out_w = grids.shape[-3], grids.shape[-2]
    for t in (image, grids, out) + ((occlusion,) if occlusion is not None else ()):
        if t.numel() >= 2**31:
            raise ValueError(f"tensor of shape {tuple(t.shape)} is too large for 32-bit indexing")
    if b == 0 or c == 0 or out_h == 0 or out_w == 0 or num_grids == 0:
        return out
    kernel = _kernel()
    block_p, block_c = _block_sizes(c)
    launch_grid = (triton_cdiv(out_h * out_w, block_p), b * num_grids, triton_cdiv(c, block_c))
    occ = occlusion if occlusion is not None else out  # unused pointer when there is no occlusion
    occ_strides = (
        (occlusion.stride(0), occlusion.stride(2), occlusion.stride(3)) if occlusion is not None else (0, 0, 0)
    )
    with _stream_context(stream, image.device):
        kernel[launch_grid](
            image, grids, occ, out,
            c, height, width, out_h, out_w, num_grids,
            *image.stride(), *grid_strides, *occ_strides, *out_strides,
            ALIGN_CORNERS=bool(align_corners),
            BORDER=_PADDING[padding_mode],
            HAS_OCCLUSION=occlusion is not None,
            BLOCK_P=block_p,
            BLOCK_C=block_c,
            num_warps=4,
        )  # fmt: skip
    return out


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


def launch_warp_multi(
    image: torch.Tensor,
    grids: torch.Tensor,
    out: torch.Tensor,
    align_corners: bool,
    padding_mode: str = "zeros",
    stream: Any = None,
) -> torch.Tensor:
    """Sample ``image`` ``(B, C, H, W)`` at ``grids`` ``(B, N, h, w, 2)`` into ``out`` ``(B, N, C, h, w)``.

    Any strides; ``stream``: ``None`` (torch's current stream), a ``torch.cuda.Stream`` or a raw
    ``cudaStream_t`` (int). Returns ``out``.
    """
    _check("image", image, 4, image)
    _check("grids", grids, 5, image)
    _check("out", out, 5, image)
    b, c = image.shape[:2]
    n, h, w = grids.shape[1:4]
    if grids.shape[0] != b or grids.shape[4] != 2:
        raise ValueError(f"grids: expected shape ({b}, N, h, w, 2) for image {tuple(image.shape)}, "
                         f"got {tuple(grids.shape)}")  # fmt: skip
    if tuple(out.shape) != (b, n, c, h, w):
        raise ValueError(f"out: expected shape {(b, n, c, h, w)}, got {tuple(out.shape)}")
    return _launch(
        image, grids, None, out,
        num_grids=n,
        grid_strides=tuple(grids.stride()),  # type: ignore[arg-type]
        out_strides=(out.stride(0), out.stride(1), out.stride(2), out.stride(3), out.stride(4)),
        align_corners=align_corners, padding_mode=padding_mode, stream=stream,
    )  # fmt: skip


def launch_warp_occluded(
    image: torch.Tensor,
    grid: torch.Tensor,
    occlusion: torch.Tensor,
    out: torch.Tensor,
    align_corners: bool,
    padding_mode: str = "zeros",
    stream: Any = None,
) -> torch.Tensor:
    """``out`` ``(B, C, h, w)`` = sample ``image`` ``(B, C, H, W)`` at ``grid`` ``(B, h, w, 2)``, times
    ``occlusion`` ``(B, 1, h, w)``, in one pass. Strides and ``stream`` as in :func:`launch_warp_multi`."""
    _check("image", image, 4, image)
    _check("grid", grid, 4, image)
    _check("occlusion", occlusion, 4, image)
    _check("out", out, 4, image)
    b, c = image.shape[:2]
    h, w = grid.shape[1:3]
    if grid.shape[0] != b or grid.shape[3] != 2:
        raise ValueError(f"grid: expected shape ({b}, h, w, 2) for image {tuple(image.shape)}, got {tuple(grid.shape)}")
    if tuple(occlusion.shape) != (b, 1, h, w):
        raise ValueError(f"occlusion: expected shape {(b, 1, h, w)}, got {tuple(occlusion.shape)}")
    if tuple(out.shape) != (b, c, h, w):
        raise ValueError(f"out: expected shape {(b, c, h, w)}, got {tuple(out.shape)}")
    gs = grid.stride()
    return _launch(
        image, grid, occlusion, out,
        num_grids=1,
        grid_strides=(gs[0], 0, gs[1], gs[2], gs[3]),
        out_strides=(out.stride(0), 0, out.stride(1), out.stride(2), out.stride(3)),
        align_corners=align_corners, padding_mode=padding_mode, stream=stream,
    )  # fmt: skip


_TYPESTR = {torch.float32: "<f4", torch.float16: "<f2", torch.bfloat16: "<f2"}


class _CudaArray:
    """A raw device pointer described through ``__cuda_array_interface__`` (what ``torch.as_tensor`` reads)."""

    def __init__(self, pointer: int, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        self.__cuda_array_interface__ = {
            "shape": shape,
            "typestr": _TYPESTR[dtype],  # bfloat16 travels as 16-bit words, viewed back by cuda_tensor
            "data": (pointer, False),
            "version": 3,
            "strides": None,
        }


def cuda_tensor(
    pointer: int, shape: tuple[int, ...] | list[int], dtype: torch.dtype, device: Any = "cuda"
) -> torch.Tensor:
    """A contiguous tensor viewing ``pointer`` (device memory owned by someone else, e.g. a TensorRT plugin's
    inputs and outputs): no copy; valid while that memory is. Pass the result to the ``launch_*`` functions."""
    if dtype not in _TYPESTR:
        raise ValueError(f"dtype: expected float32, float16 or bfloat16, got {dtype}")
    shape = tuple(int(d) for d in shape)
    if dtype == torch.bfloat16:  # no bfloat16 typestr in the interface: view 16-bit words as bfloat16
        return torch.as_tensor(_CudaArray(pointer, shape, torch.float16), device=device).view(torch.bfloat16)
    return torch.as_tensor(_CudaArray(pointer, shape, dtype), device=device)


class TritonWarp:
    """The fused warps as Triton kernels (a :class:`fomm.geometry.WarpImpl`).

    Handles CUDA tensors when triton imports, and CPU tensors when ``TRITON_INTERPRET=1`` is set (tests);
    anything else falls back to the PyTorch reference. Outputs are new tensors in the image's dtype;
    ``warp_occluded``'s keeps a channels-last image's layout (the decoder's convolutions read it).
    """

    name = "triton"

    def __init__(self, padding_mode: str = "zeros") -> None:
        if padding_mode not in _PADDING:
            raise ValueError(f"padding_mode {padding_mode!r}: the Triton warp supports 'zeros' and 'border'")
        self.padding_mode = padding_mode

    def supports(self, image: torch.Tensor) -> bool:
        if image.dtype not in _DTYPES or not triton_available():
            return False
        if image.device.type == "cuda":
            return True
        return image.device.type == "cpu" and interpreter_enabled()

    def warp_multi(self, image: torch.Tensor, grids: torch.Tensor, *, align_corners: bool) -> torch.Tensor:
        b, c = image.shape[:2]
        n, h, w = grids.shape[1:4]
        out = torch.empty((b, n, c, h, w), dtype=image.dtype, device=image.device)
        return launch_warp_multi(image, grids, out, align_corners, self.padding_mode)

    def warp_occluded(
        self, image: torch.Tensor, grid: torch.Tensor, occlusion: torch.Tensor, *, align_corners: bool
    ) -> torch.Tensor:
        b, c = image.shape[:2]
        h, w = grid.shape[1:3]
        channels_last = image.is_contiguous(memory_format=torch.channels_last) and not image.is_contiguous()
        layout = torch.channels_last if channels_last else torch.contiguous_format  # what the next conv reads
        out = torch.empty((b, c, h, w), dtype=image.dtype, device=image.device, memory_format=layout)
        return launch_warp_occluded(image, grid, occlusion, out, align_corners, self.padding_mode)
