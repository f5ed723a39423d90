"""The whole model: keypoint detector + generator (+ discriminator for training)."""

from __future__ import annotations

import torch
from torch import nn

from .config import FommConfig
from .discriminator import MultiScaleDiscriminator
from .generator import OcclusionAwareGenerator
from .keypoint_detector import KeypointDetector

__all__ = ["Fomm", "build_fomm"]


class Fomm(nn.Module):
    """Container of the networks of one :class:`FommConfig`.

    State-dict keys are ``kp_detector.*``, ``generator.*`` and (when built) ``discriminator.*``, each
    suffix exactly the original checkpoint's key.
    """

    def __init__(self, config: FommConfig, *, with_discriminator: bool = False) -> None:
        super().__init__()
        self.config = config
        self.kp_detector = KeypointDetector(config.keypoint_detector)
        self.generator = OcclusionAwareGenerator(config.generator)
        self.discriminator: MultiScaleDiscriminator | None = None
        if with_discriminator:
            self.discriminator = MultiScaleDiscriminator(config.discriminator)


def build_fomm(
    config: FommConfig,
    *,
    with_discriminator: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Fomm:
    """Build the networks of ``config`` (random initialisation, eval mode).

    ``device="meta"`` builds shapes only (no memory), which is how checkpoints are matched to presets.
    """
    if device is not None and torch.device(device).type == "meta":
        with torch.device("meta"):
            model = Fomm(config, with_discriminator=with_discriminator)
    else:
        model = Fomm(config, with_discriminator=with_discriminator)
        if device is not None or dtype is not None:
            model = model.to(device=device, dtype=dtype)
    return model.eval()
