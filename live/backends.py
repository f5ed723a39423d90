"""Inference backends behind one interface; the loop and the pipeline never see which one runs.

A backend owns the networks and the per-source cache. Motion transfer (relative keypoints, calibration)
stays in the pipeline, in torch, whatever the backend: backends only compute keypoints of an image and
an animated frame from driving keypoints. ``OnnxBackend`` (ONNX Runtime, :mod:`export.backend`) is imported
lazily by :func:`live.app.load_backend`; TensorRT plugs in here later. A backend holding native resources
releases them in ``close()`` (also a context manager).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Protocol, runtime_checkable

import torch

import fomm
from fomm.precision import slow_cpu_bf16

__all__ = ["BackendError", "InferenceBackend", "TorchBackend", "autocast_dtype"]

logger = logging.getLogger(__name__)

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class BackendError(RuntimeError):
    """A backend that cannot run as asked (one line, says why)."""


@runtime_checkable
class InferenceBackend(Protocol):
    """What the pipeline needs from a backend. Images are ``(1, 3, S, S)`` float RGB in ``[0, 1]``."""

    name: str
    image_size: int
    device: torch.device

    def set_source(self, source: torch.Tensor) -> fomm.Keypoints:
        """Cache everything that depends on the avatar; return its keypoints (float32)."""
        ...

    def keypoints(self, image: torch.Tensor) -> fomm.Keypoints:
        """Keypoints (float32) of a driving image."""
        ...

    def generate(self, kp_driving: fomm.Keypoints) -> torch.Tensor:
        """The avatar moved to ``kp_driving`` (already motion-transferred): ``(1, 3, S, S)``."""
        ...

    def close(self) -> None:
        """Release what the backend holds (sessions, engines, buffers); it is not used afterwards."""
        ...


def autocast_dtype(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``fp16``/``bf16`` (``None`` for fp32); fp16 needs CUDA."""
    if name not in _DTYPES:
        raise BackendError(f"dtype {name!r} is not one of {', '.join(_DTYPES)}")
    dtype = _DTYPES[name]
    if dtype == torch.float32:
        return None
    if dtype == torch.float16 and device.type != "cuda":
        raise BackendError("fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    return dtype


class TorchBackend:
    """PyTorch on CPU or CUDA, fp32 or fp16/bf16 autocast.

    Args:
        model: the networks (moved to ``device``).
        device: where to run.
        dtype: ``fp32``, ``fp16`` or ``bf16``.
        channels_last: keep the weights in channels-last memory format (faster convolutions).
    """

    def __init__(
        self, model: fomm.Fomm, device: torch.device | str = "cpu", dtype: str = "fp32", *, channels_last: bool = True
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if channels_last:  # same numbers (within 1e-5), 15-30 % faster convolutions on CPU
            self.model = self.model.to(memory_format=torch.channels_last)
        self.image_size = model.config.image_size
        self._autocast = autocast_dtype(dtype, self.device)
        if self._autocast == torch.bfloat16 and self.device.type == "cpu" and (why := slow_cpu_bf16()):
            logger.warning("--dtype bf16: %s; fp32 runs faster here", why)
        self.name = f"torch-{self.device.type}-{dtype}"
        self._kp_source: fomm.Keypoints | None = None
        self._encoding: fomm.SourceEncoding | None = None

    def _precision(self) -> contextlib.AbstractContextManager[object]:
        if self._autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._autocast)

    @staticmethod
    def _float(kp: fomm.Keypoints) -> fomm.Keypoints:
        return fomm.Keypoints(kp.value.float(), kp.jacobian.float())

    @torch.inference_mode()
    def set_source(self, source: torch.Tensor) -> fomm.Keypoints:
        with self._precision():
            self._kp_source = self._float(self.model.kp_detector(source))
            self._encoding = self.model.generator.encode_source(source)
        return self._kp_source

    @torch.inference_mode()
    def keypoints(self, image: torch.Tensor) -> fomm.Keypoints:
        with self._precision():
            return self._float(self.model.kp_detector(image))

    @torch.inference_mode()
    def generate(self, kp_driving: fomm.Keypoints) -> torch.Tensor:
        if self._encoding is None or self._kp_source is None:
            raise BackendError("set_source() must run before generate()")
        with self._precision():
            return self.model.generator.animate(self._encoding, self._kp_source, kp_driving).float()

    def close(self) -> None:
        """Drop the per-source cache (the model is the caller's)."""
        self._encoding = None
        self._kp_source = None

    def __enter__(self) -> TorchBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
