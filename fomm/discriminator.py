"""Multi-scale patch discriminator (pix2pix-like), used by adversarial training.

Built here so that full released checkpoints load; state-dict names follow the original, including the
spectral-norm names (``weight_orig``, ``weight_u``, ``weight_v``) when ``sn`` is on.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import DiscriminatorConfig
from .geometry import kp2gaussian
from .keypoints import Keypoints

__all__ = ["Discriminator", "DiscriminatorOutput", "MultiScaleDiscriminator", "scale_key"]


def scale_key(scale: float) -> str:
    """Module key of a scale, as in the original (``1`` -> ``"1"``, ``0.5`` -> ``"0-5"``)."""
    text = str(int(scale)) if float(scale).is_integer() else str(scale)
    return text.replace(".", "-")


class DiscriminatorBlock(nn.Module):
    """4x4 conv (optionally spectral-normed) -> instance norm (optional) -> leaky ReLU -> avg pool (optional)."""

    def __init__(self, in_features: int, out_features: int, *, norm: bool, pool: bool, sn: bool) -> None:
        super().__init__()
        conv = nn.Conv2d(in_features, out_features, kernel_size=4)
        self.conv = nn.utils.spectral_norm(conv) if sn else conv
        self.norm = nn.InstanceNorm2d(out_features, affine=True) if norm else None
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        out = F.leaky_relu(out, 0.2)
        if self.pool:
            out = F.avg_pool2d(out, (2, 2))
        return out


class Discriminator(nn.Module):
    """One scale: returns the per-block feature maps and a patch prediction map."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        be, mf, n = config.block_expansion, config.max_features, config.num_blocks
        in_first = config.num_channels + (config.num_kp if config.use_kp else 0)
        self.down_blocks = nn.ModuleList(
            DiscriminatorBlock(
                in_first if i == 0 else min(mf, be * (2**i)),
                min(mf, be * (2 ** (i + 1))),
                norm=i != 0,
                pool=i != n - 1,
                sn=config.sn,
            )
            for i in range(n)
        )
        conv = nn.Conv2d(min(mf, be * (2**n)), 1, kernel_size=1)
        self.conv = nn.utils.spectral_norm(conv) if config.sn else conv

    def forward(self, image: torch.Tensor, kp: Keypoints | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``image`` ``(B, C, H, W)`` in ``[0, 1]``; ``kp`` required when the config uses keypoints."""
        out = image
        if self.config.use_kp:
            if kp is None:
                raise ValueError("this discriminator needs keypoints (use_kp=True)")
            heatmap = kp2gaussian(kp.value, image.shape[2], image.shape[3], self.config.kp_variance)
            out = torch.cat([out, heatmap], dim=1)
        features = []
        for block in self.down_blocks:
            out = block(out)
            features.append(out)
        return features, self.conv(out)


class DiscriminatorOutput(NamedTuple):
    """Per scale (keyed by :func:`scale_key`): feature maps and prediction maps."""

    feature_maps: dict[str, list[torch.Tensor]]
    prediction_maps: dict[str, torch.Tensor]


class MultiScaleDiscriminator(nn.Module):
    """One :class:`Discriminator` per scale of the image pyramid."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        self.discs = nn.ModuleDict({scale_key(s): Discriminator(config) for s in config.scales})

    def forward(self, pyramid: dict[str, torch.Tensor], kp: Keypoints | None = None) -> DiscriminatorOutput:
        """``pyramid`` maps :func:`scale_key` of each scale to the image at that scale."""
        features: dict[str, list[torch.Tensor]] = {}
        predictions: dict[str, torch.Tensor] = {}
        for key, disc in self.discs.items():
            features[key], predictions[key] = disc(pyramid[key], kp)
        return DiscriminatorOutput(features, predictions)
