"""Keypoint detector: image -> K keypoints with local affine jacobians (the first-order motion model)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import KeypointDetectorConfig
from .geometry import make_coordinate_grid
from .keypoints import Keypoints
from .layers import AntiAliasInterpolation2d, Hourglass

__all__ = ["KeypointDetector"]


class KeypointDetector(nn.Module):
    """Hourglass -> 7x7 heatmap head (softmax with temperature) and jacobian head.

    Heatmaps come from an unpadded 7x7 conv (58x58 for a 64x64 feature map) and that grid is mapped onto
    the whole ``[-1, 1]`` range, as in the original. Keypoints are the heatmaps' expectations; jacobians
    are the heatmap-weighted sums of the jacobian maps, read row-major. The jacobian head starts at zero
    weights and bias ``(1, 0, 0, 1)`` (identity).

    State-dict names (``predictor``, ``kp``, ``jacobian``, ``down``) are the original ones.
    """

    def __init__(self, config: KeypointDetectorConfig) -> None:
        super().__init__()
        self.config = config
        self.predictor = Hourglass(
            config.block_expansion,
            in_features=config.num_channels,
            max_features=config.max_features,
            num_blocks=config.num_blocks,
        )
        self.kp = nn.Conv2d(self.predictor.out_filters, config.num_kp, kernel_size=(7, 7), padding=config.pad)
        self.jacobian: nn.Conv2d | None = None
        self.num_jacobian_maps = 0
        if config.estimate_jacobian:
            self.num_jacobian_maps = 1 if config.single_jacobian_map else config.num_kp
            self.jacobian = nn.Conv2d(
                self.predictor.out_filters, 4 * self.num_jacobian_maps, kernel_size=(7, 7), padding=config.pad
            )
            with torch.no_grad():
                self.jacobian.weight.zero_()
                self.jacobian.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * self.num_jacobian_maps))
        self.down: AntiAliasInterpolation2d | None = None
        if config.scale_factor != 1:
            self.down = AntiAliasInterpolation2d(config.num_channels, config.scale_factor)

    def heatmaps(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Softmax heatmaps ``(B, K, h, w)`` (each sums to 1) and the feature map they come from."""
        logits, features = self._logits(image)
        b, k, h, w = logits.shape
        heatmap = F.softmax(logits.view(b, k, h * w), dim=2).view(b, k, h, w)
        return heatmap, features

    def _logits(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The heatmap logits over the temperature ``(B, K, h, w)`` and the feature map."""
        x = self.down(image) if self.down is not None else image
        features = self.predictor(x)
        return self.kp(features) / self.config.temperature, features

    def forward(self, image: torch.Tensor) -> Keypoints:
        """Detect keypoints.

        Args:
            image: ``(B, C, H, W)`` float RGB in ``[0, 1]``.

        Returns:
            :class:`Keypoints` with ``value`` ``(B, K, 2)`` and ``jacobian`` ``(B, K, 2, 2)`` (identity
            when the config estimates no jacobians).
        """
        heatmap, features = self.heatmaps(image)
        return self._keypoints(heatmap, features)

    def forward_with_heatmaps(self, image: torch.Tensor) -> tuple[Keypoints, torch.Tensor]:
        """:meth:`forward` plus the float32 log-heatmaps ``(B, K, h, w)`` (training losses on the heatmaps).

        Log-probabilities rather than probabilities: far from its peak a heatmap underflows to 0, and a loss on
        where the mass should be still needs a gradient there. Pixel centres are
        ``make_coordinate_grid(h, w)``, the keypoints' ``[-1, 1]`` coordinates.
        """
        logits, features = self._logits(image)
        b, k, h, w = logits.shape
        log_heatmap = F.log_softmax(logits.view(b, k, h * w).float(), dim=2).view(b, k, h, w)
        return self._keypoints(log_heatmap.exp().to(logits.dtype), features), log_heatmap

    def _keypoints(self, heatmap: torch.Tensor, features: torch.Tensor) -> Keypoints:
        """Keypoints (the heatmaps' expectations) and jacobians (heatmap-weighted jacobian maps)."""
        b, k, h, w = heatmap.shape
        grid = make_coordinate_grid(h, w, dtype=heatmap.dtype, device=heatmap.device)
        value = (heatmap.unsqueeze(-1) * grid).sum(dim=(2, 3))
        if self.jacobian is None:
            eye = torch.eye(2, dtype=value.dtype, device=value.device)
            return Keypoints(value, eye.expand(b, k, 2, 2))
        jacobian_map = self.jacobian(features).reshape(b, self.num_jacobian_maps, 4, h, w)
        jacobian = (heatmap.unsqueeze(2) * jacobian_map).view(b, k, 4, h * w).sum(dim=-1)
        return Keypoints(value, jacobian.view(b, k, 2, 2))
