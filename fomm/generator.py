"""Occlusion-aware generator, split into per-source encoding and per-frame decoding."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .config import GeneratorConfig
from .dense_motion import DenseMotionNetwork, MotionDebug, MotionField
from .geometry import resize, warp, warp_occluded
from .keypoints import Keypoints
from .layers import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d

__all__ = ["GeneratorOutput", "OcclusionAwareGenerator", "SourceEncoding"]


class SourceEncoding(NamedTuple):
    """Everything the generator computes from the source alone (cache it once per avatar).

    Attributes:
        features: ``(B, C_f, H / 2**d, W / 2**d)`` encoder features (d = ``num_down_blocks``).
        source_small: ``(B, C, h, w)`` the source at the dense-motion scale.
    """

    features: torch.Tensor
    source_small: torch.Tensor


class GeneratorOutput(NamedTuple):
    """Full output of one generator pass (debug tensors included).

    Attributes:
        prediction: ``(B, C, H, W)`` in ``[0, 1]``.
        motion: the dense :class:`MotionField`.
        mask: ``(B, K+1, h, w)``; sparse_deformed: ``(B, K+1, C, h, w)``;
        deformed: ``(B, C, H, W)`` the source warped by the dense motion (no occlusion).
    """

    prediction: torch.Tensor
    motion: MotionField
    mask: torch.Tensor
    sparse_deformed: torch.Tensor
    deformed: torch.Tensor


def _fit_grid(deformation: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bilinearly resize a ``(B, h', w', 2)`` sampling grid to ``(B, h, w, 2)`` (no-op when it fits)."""
    if deformation.shape[1:3] == (h, w):
        return deformation
    return resize(deformation.permute(0, 3, 1, 2), (h, w)).permute(0, 2, 3, 1)


class OcclusionAwareGenerator(nn.Module):
    """Encoder (7x7 conv + down blocks) -> warp by the dense motion -> x occlusion -> residual
    bottleneck -> up blocks -> 7x7 conv -> sigmoid.

    State-dict names (``dense_motion_network``, ``first``, ``down_blocks``, ``up_blocks``, ``bottleneck.rN``,
    ``final``) are the original ones.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.dense_motion_network: DenseMotionNetwork | None = None
        if config.dense_motion is not None:
            self.dense_motion_network = DenseMotionNetwork(config.dense_motion)
        be, mf, nd = config.block_expansion, config.max_features, config.num_down_blocks

        def width(level: int) -> int:
            return min(mf, be * (2**level))

        self.first = SameBlock2d(config.num_channels, be, kernel_size=7, padding=3)
        self.down_blocks = nn.ModuleList(DownBlock2d(width(i), width(i + 1)) for i in range(nd))
        self.up_blocks = nn.ModuleList(UpBlock2d(width(nd - i), width(nd - i - 1)) for i in range(nd))
        self.bottleneck = nn.Sequential()
        for i in range(config.num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(width(nd)))
        self.final = nn.Conv2d(be, config.num_channels, kernel_size=(7, 7), padding=(3, 3))

    # --- per source ---------------------------------------------------------------------------------------

    def encode_source(self, source: torch.Tensor) -> SourceEncoding:
        """Per-avatar work.

        Args:
            source: ``(B, C, H, W)`` float RGB in ``[0, 1]``.
        """
        out = self.first(source)
        for block in self.down_blocks:
            out = block(out)
        small = self.dense_motion_network.prepare_source(source) if self.dense_motion_network else source
        return SourceEncoding(out, small)

    # --- per frame ----------------------------------------------------------------------------------------

    def motion(
        self, encoding: SourceEncoding, kp_source: Keypoints, kp_driving: Keypoints
    ) -> tuple[MotionField, MotionDebug]:
        """Dense motion from the cached source encoding and the two keypoint sets."""
        if self.dense_motion_network is None:
            raise RuntimeError("this generator has no dense motion network")
        return self.dense_motion_network.predict(encoding.source_small, kp_source, kp_driving)

    def warp_features(self, features: torch.Tensor, motion: MotionField) -> torch.Tensor:
        """Warp ``(B, C, h, w)`` encoder features by the motion (resized if needed) and apply occlusion."""
        h, w = features.shape[2:]
        occlusion = motion.occlusion
        if occlusion.shape[2:] != (h, w):
            occlusion = resize(occlusion, (h, w))
        grid = _fit_grid(motion.deformation, h, w)
        return warp_occluded(features, grid, occlusion, align_corners=self.config.align_corners)

    def decode(self, features: torch.Tensor, motion: MotionField | None) -> torch.Tensor:
        """Per-frame work after the motion: warp + occlude (if ``motion``), bottleneck, decoder.

        Returns:
            ``(B, C, H, W)`` prediction in ``[0, 1]``.
        """
        out = self.warp_features(features, motion) if motion is not None else features
        out = self.bottleneck(out)
        for block in self.up_blocks:
            out = block(out)
        return torch.sigmoid(self.final(out))

    def animate(self, encoding: SourceEncoding, kp_source: Keypoints, kp_driving: Keypoints) -> torch.Tensor:
        """Cached per-frame path: dense motion + decode. Batch of ``encoding`` must match ``kp_driving``."""
        if self.dense_motion_network is None:
            return self.decode(encoding.features, None)
        motion, _ = self.motion(encoding, kp_source, kp_driving)
        return self.decode(encoding.features, motion)

    # --- uncached, original-style -------------------------------------------------------------------------

    def forward(self, source: torch.Tensor, kp_source: Keypoints, kp_driving: Keypoints) -> torch.Tensor:
        """Uncached path (encodes the source every call): ``(B, C, H, W)`` prediction."""
        return self.animate(self.encode_source(source), kp_source, kp_driving)

    def forward_debug(self, source: torch.Tensor, kp_source: Keypoints, kp_driving: Keypoints) -> GeneratorOutput:
        """Like :meth:`forward`, also returning the motion, masks and deformed images."""
        encoding = self.encode_source(source)
        motion, debug = self.motion(encoding, kp_source, kp_driving)
        prediction = self.decode(encoding.features, motion)
        h, w = source.shape[2:]
        deformed = warp(source, _fit_grid(motion.deformation, h, w), align_corners=self.config.align_corners)
        return GeneratorOutput(prediction, motion, debug.mask, debug.sparse_deformed, deformed)
