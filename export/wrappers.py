"""Export-only modules: each turns one :class:`~export.specs.NetworkSpec` into a plain tensor function.

Inputs and outputs are positional here only because the exporter needs it; their order is the spec's, and
the exporter names them from the spec.
"""

from __future__ import annotations

import torch
from torch import nn

import fomm

__all__ = ["AnimateGraph", "KeypointsGraph", "SourceGraph", "graph_modules"]


class KeypointsGraph(nn.Module):
    """``image -> (kp_value, kp_jacobian)``."""

    def __init__(self, model: fomm.Fomm) -> None:
        super().__init__()
        self.kp_detector = model.kp_detector

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kp = self.kp_detector(image)
        return kp.value, kp.jacobian


class SourceGraph(nn.Module):
    """``source -> (features, source_small, source_kp_value, source_kp_jacobian)``: what ``set_source`` caches."""

    def __init__(self, model: fomm.Fomm) -> None:
        super().__init__()
        self.kp_detector = model.kp_detector
        self.generator = model.generator

    def forward(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        encoding = self.generator.encode_source(source)
        kp = self.kp_detector(source)
        return encoding.features, encoding.source_small, kp.value, kp.jacobian


class AnimateGraph(nn.Module):
    """Cached source + source keypoints + driving keypoints -> ``frame``: dense motion, warps, decoder."""

    def __init__(self, model: fomm.Fomm) -> None:
        super().__init__()
        self.generator = model.generator

    def forward(
        self,
        features: torch.Tensor,
        source_small: torch.Tensor,
        source_kp_value: torch.Tensor,
        source_kp_jacobian: torch.Tensor,
        driving_kp_value: torch.Tensor,
        driving_kp_jacobian: torch.Tensor,
    ) -> torch.Tensor:
        encoding = fomm.SourceEncoding(features, source_small)
        kp_source = fomm.Keypoints(source_kp_value, source_kp_jacobian)
        kp_driving = fomm.Keypoints(driving_kp_value, driving_kp_jacobian)
        return self.generator.animate(encoding, kp_source, kp_driving)


def graph_modules(model: fomm.Fomm) -> dict[str, nn.Module]:
    """The export module of each graph, keyed by graph name."""
    modules: dict[str, nn.Module] = {
        "keypoints": KeypointsGraph(model),
        "source": SourceGraph(model),
        "animate": AnimateGraph(model),
    }
    return {name: module.eval() for name, module in modules.items()}
