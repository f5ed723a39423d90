"""Animator: the PyTorch reference pipeline, split into per-source and per-frame work."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

import torch

from .generator import SourceEncoding
from .keypoints import Calibration, Keypoints, calibrate, transfer_motion
from .model import Fomm

__all__ = ["AnimationOptions", "Animator", "BackendAnimator", "FrameBackend"]


@dataclass(frozen=True)
class AnimationOptions:
    """How driving motion is transferred to the source.

    Attributes:
        relative: move the source keypoints by the driver's displacement since the calibration frame
            (the default for faces); ``False`` uses the driving keypoints as they are (absolute).
        adapt_movement_scale: scale relative motion by the keypoint hulls' size ratio.
        relative_jacobian: relative jacobians (``None``: same as ``relative``).
    """

    relative: bool = True
    adapt_movement_scale: bool = True
    relative_jacobian: bool | None = None


class _MotionTransfer(ABC):
    """Calibration and motion transfer, shared by :class:`Animator` and :class:`BackendAnimator`: subclasses give
    :meth:`keypoints` and set ``kp_source``."""

    options: AnimationOptions
    kp_source: Keypoints | None
    calibration: Calibration | None

    @abstractmethod
    def keypoints(self, images: torch.Tensor) -> Keypoints:
        """Keypoints of ``(B, C, H, W)`` images (each animator's own network or backend)."""

    @torch.no_grad()
    def calibrate(self, initial: torch.Tensor | Keypoints) -> Calibration:
        """Fix the calibration frame D_1 (an image ``(1, C, H, W)`` or its keypoints)."""
        if self.kp_source is None:
            raise RuntimeError("call set_source() before calibrate()")
        kp_initial = initial if isinstance(initial, Keypoints) else self.keypoints(initial)
        self.calibration = calibrate(
            self.kp_source, kp_initial.index(0), adapt_movement_scale=self.options.adapt_movement_scale
        )
        return self.calibration

    def _driving_keypoints(self, kp_driving: Keypoints) -> Keypoints:
        """Driving keypoints -> the keypoints the generator gets (relative: calibrates on the first one if needed)."""
        opts = self.options
        if opts.relative and self.calibration is None:
            self.calibrate(kp_driving.index(0))
        return transfer_motion(
            kp_driving, self.calibration, relative=opts.relative, relative_jacobian=opts.relative_jacobian
        )


class Animator(_MotionTransfer):
    """Animate one source image with driving frames.

    ``set_source`` runs once per avatar (source keypoints, encoder features, downsampled source);
    ``calibrate`` once per calibration frame (its inverse jacobian and hull scale); ``step`` per batch of
    driving frames (driving keypoints, dense motion, warp, decode). ``step_uncached`` is the original
    implementation's per-frame work (the generator re-encodes the source every frame), kept for parity and
    benchmarks.

    All images are ``(B, C, H, W)`` float RGB in ``[0, 1]`` on the model's device.
    """

    def __init__(self, model: Fomm, options: AnimationOptions | None = None) -> None:
        self.model = model.eval()
        self.options = options or AnimationOptions()
        self.source: torch.Tensor | None = None
        self.kp_source: Keypoints | None = None
        self.encoding: SourceEncoding | None = None
        self.calibration: Calibration | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def keypoints(self, images: torch.Tensor) -> Keypoints:
        """Keypoints of ``(B, C, H, W)`` images."""
        return self.model.kp_detector(images)

    @torch.no_grad()
    def set_source(self, source: torch.Tensor) -> Keypoints:
        """Cache everything that depends on the ``(1, C, H, W)`` source; clears the calibration."""
        if source.dim() != 4 or source.shape[0] != 1:
            raise ValueError(f"source must be (1, C, H, W), got {tuple(source.shape)}")
        self.source = source
        self.kp_source = self.model.kp_detector(source)
        self.encoding = self.model.generator.encode_source(source)
        self.calibration = None
        return self.kp_source

    @torch.no_grad()
    def step(self, driving: torch.Tensor) -> torch.Tensor:
        """Animate a batch of ``(N, C, H, W)`` driving frames -> ``(N, C, H, W)`` predictions.

        In relative mode without a calibration, the first frame of the batch becomes the calibration
        frame.
        """
        if self.encoding is None or self.kp_source is None:
            raise RuntimeError("call set_source() before step()")
        n = driving.shape[0]
        kp_norm = self._driving_keypoints(self.model.kp_detector(driving))
        encoding = SourceEncoding(
            self.encoding.features.expand(n, *self.encoding.features.shape[1:]),
            self.encoding.source_small.expand(n, *self.encoding.source_small.shape[1:]),
        )
        return self.model.generator.animate(encoding, self.kp_source.expand(n), kp_norm)

    @torch.no_grad()
    def step_uncached(self, driving: torch.Tensor) -> torch.Tensor:
        """The original ``make_animation`` per-frame work: driving keypoints + the full generator."""
        if self.source is None or self.kp_source is None:
            raise RuntimeError("call set_source() before step_uncached()")
        n = driving.shape[0]
        kp_norm = self._driving_keypoints(self.model.kp_detector(driving))
        source = self.source.expand(n, *self.source.shape[1:])
        return self.model.generator(source, self.kp_source.expand(n), kp_norm)


class FrameBackend(Protocol):
    """What :class:`BackendAnimator` needs of an inference backend (ONNX Runtime, TensorRT, ...).

    ``max_batch`` (optional attribute): the most driving frames one call takes (``1`` for static engines);
    absent or ``None``: any batch.
    """

    def set_source(self, source: torch.Tensor) -> Keypoints: ...

    def keypoints(self, frames: torch.Tensor) -> Keypoints: ...

    def generate(self, kp_driving: Keypoints) -> torch.Tensor: ...


class BackendAnimator(_MotionTransfer):
    """:class:`Animator`'s ``set_source`` / ``calibrate`` / ``step`` on another inference backend: the networks
    run there, motion transfer (calibration, relative keypoints) stays here in torch."""

    def __init__(self, backend: FrameBackend, options: AnimationOptions | None = None) -> None:
        self.backend = backend
        self.options = options or AnimationOptions()
        self.kp_source: Keypoints | None = None
        self.calibration: Calibration | None = None

    def keypoints(self, images: torch.Tensor) -> Keypoints:
        """Keypoints of ``(B, C, H, W)`` images, from the backend."""
        return self.backend.keypoints(images)

    def set_source(self, source: torch.Tensor) -> Keypoints:
        """``(1, C, H, W)`` source in ``[0, 1]`` -> its keypoints (the backend caches what the source fixes)."""
        self.kp_source = self.backend.set_source(source)
        self.calibration = None
        return self.kp_source

    @torch.no_grad()
    def step(self, driving: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` driving frames -> ``(N, C, H, W)`` predictions (relative: calibrates on the first
        frame when not calibrated), in chunks of the backend's ``max_batch``."""
        if self.kp_source is None:
            raise RuntimeError("call set_source() before step()")
        chunk = getattr(self.backend, "max_batch", None) or driving.shape[0]
        return torch.cat(
            [self.backend.generate(self._driving_keypoints(self.keypoints(part))) for part in driving.split(chunk)]
        )
