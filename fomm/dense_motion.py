"""Dense motion network: sparse first-order motions -> dense deformation + occlusion map."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import DenseMotionConfig
from .geometry import inverse_2x2, kp2gaussian, make_coordinate_grid, warp_multi
from .keypoints import Keypoints
from .layers import AntiAliasInterpolation2d, Hourglass

__all__ = ["DenseMotionNetwork", "MotionDebug", "MotionField"]


class MotionField(NamedTuple):
    """Backward motion from the driving frame to the source, at the dense-motion resolution.

    Attributes:
        deformation: ``(B, h, w, 2)``: for each output position, where to sample the source, ``(x, y)``
            in ``[-1, 1]``.
        occlusion: ``(B, 1, h, w)`` in ``[0, 1]`` (1 = visible in the source); all ones when the model
            estimates no occlusion.
    """

    deformation: torch.Tensor
    occlusion: torch.Tensor


class MotionDebug(NamedTuple):
    """Intermediate tensors, for visualisation and parity checks (not needed to animate).

    Attributes:
        mask: ``(B, K+1, h, w)`` softmax weights of the background and K local motions.
        sparse_deformed: ``(B, K+1, C, h, w)`` the downsampled source warped by each motion.
    """

    mask: torch.Tensor
    sparse_deformed: torch.Tensor


class DenseMotionNetwork(nn.Module):
    """Predicts a :class:`MotionField` from the (downsampled) source and the two keypoint sets.

    Per-source work (:meth:`prepare_source`: anti-aliased downsampling) is separate from per-frame work
    (:meth:`predict`). State-dict names (``hourglass``, ``mask``, ``occlusion``, ``down``) are the
    original ones.
    """

    def __init__(self, config: DenseMotionConfig) -> None:
        super().__init__()
        self.config = config
        k = config.num_kp
        self.hourglass = Hourglass(
            config.block_expansion,
            in_features=(k + 1) * (config.num_channels + 1),
            max_features=config.max_features,
            num_blocks=config.num_blocks,
        )
        self.mask = nn.Conv2d(self.hourglass.out_filters, k + 1, kernel_size=(7, 7), padding=(3, 3))
        self.occlusion: nn.Conv2d | None = None
        if config.estimate_occlusion_map:
            self.occlusion = nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=(7, 7), padding=(3, 3))
        self.down: AntiAliasInterpolation2d | None = None
        if config.scale_factor != 1:
            self.down = AntiAliasInterpolation2d(config.num_channels, config.scale_factor)

    def prepare_source(self, source: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` source in ``[0, 1]`` -> ``(B, C, h, w)`` at the dense-motion scale."""
        return self.down(source) if self.down is not None else source

    def heatmap_representation(self, h: int, w: int, kp_source: Keypoints, kp_driving: Keypoints) -> torch.Tensor:
        """``(B, K+1, 1, h, w)``: G(p_D) - G(p_S) per keypoint, with a zero background channel first."""
        var = self.config.kp_variance
        heatmap = kp2gaussian(kp_driving.value, h, w, var) - kp2gaussian(kp_source.value, h, w, var)
        zeros = heatmap.new_zeros(heatmap.shape[0], 1, h, w)
        return torch.cat([zeros, heatmap], dim=1).unsqueeze(2)

    def sparse_motions(self, h: int, w: int, kp_source: Keypoints, kp_driving: Keypoints) -> torch.Tensor:
        """``(B, K+1, h, w, 2)``: identity grid, then ``p_S + J_S J_D^-1 (z - p_D)`` per keypoint."""
        b, k = kp_driving.value.shape[:2]
        identity = make_coordinate_grid(h, w, dtype=kp_source.value.dtype, device=kp_source.value.device)
        identity = identity.view(1, 1, h, w, 2)
        offset = identity - kp_driving.value.view(b, k, 1, 1, 2)
        jacobian = torch.matmul(kp_source.jacobian, inverse_2x2(kp_driving.jacobian))  # (B, K, 2, 2)
        # J @ offset per pixel, written out (no (B, K, h, w, 2, 2) repeat).
        jac = jacobian.view(b, k, 1, 1, 2, 2)
        offset = (jac * offset.unsqueeze(-2)).sum(-1)
        driving_to_source = offset + kp_source.value.view(b, k, 1, 1, 2)
        return torch.cat([identity.expand(b, 1, h, w, 2), driving_to_source], dim=1)

    def deformed_sources(self, source_small: torch.Tensor, motions: torch.Tensor) -> torch.Tensor:
        """``(B, K+1, C, h, w)``: the downsampled source warped by each sparse motion."""
        return warp_multi(source_small, motions, align_corners=self.config.align_corners)

    def predict(
        self, source_small: torch.Tensor, kp_source: Keypoints, kp_driving: Keypoints
    ) -> tuple[MotionField, MotionDebug]:
        """Per-frame work.

        Args:
            source_small: ``(B, C, h, w)`` from :meth:`prepare_source`.
            kp_source, kp_driving: ``(B, K, ...)`` keypoints.

        Returns:
            The motion field and the debug tensors.
        """
        b, _, h, w = source_small.shape
        heatmap = self.heatmap_representation(h, w, kp_source, kp_driving)
        motions = self.sparse_motions(h, w, kp_source, kp_driving)
        deformed = self.deformed_sources(source_small, motions)
        features = torch.cat([heatmap, deformed], dim=2).view(b, -1, h, w)
        prediction = self.hourglass(features)

        mask = F.softmax(self.mask(prediction), dim=1)
        deformation = (motions * mask.unsqueeze(-1)).sum(dim=1)
        if self.occlusion is not None:
            occlusion = torch.sigmoid(self.occlusion(prediction))
        else:
            occlusion = deformation.new_ones(b, 1, h, w)
        return MotionField(deformation, occlusion), MotionDebug(mask, deformed)

    def forward(self, source: torch.Tensor, kp_source: Keypoints, kp_driving: Keypoints) -> MotionField:
        """Full-resolution ``(B, C, H, W)`` source -> :class:`MotionField` (uncached path)."""
        return self.predict(self.prepare_source(source), kp_source, kp_driving)[0]
