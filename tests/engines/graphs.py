"""ONNX graphs for the engine tests: the model's graphs exported by ``export/`` (``standard`` warp, fp32), and
a tiny Conv + GridSample + Softmax + Sigmoid graph exported here with plain ``torch.onnx.export``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import fomm
from engines.spec import GraphSpec, TensorSpec
from fomm.media.assets import DEFAULT_AVATAR
from fomm.media.image import load_image, resize, to_tensor


class TinyWarpNet(nn.Module):
    """Conv -> GridSample -> Softmax over channels, and a sigmoid head: the ops the FP16 pass cares about."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, image: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = F.grid_sample(self.conv(image), grid, align_corners=True)
        return features.softmax(1), torch.sigmoid(self.head(features))


def tiny_spec(size: int = 16) -> GraphSpec:
    return GraphSpec(
        "tiny",
        (TensorSpec("image", (1, 3, size, size)), TensorSpec("grid", (1, size // 2, size // 2, 2))),
        (TensorSpec("mask", (1, 4, size // 2, size // 2)), TensorSpec("occlusion", (1, 1, size // 2, size // 2))),
    )


def _export(module: nn.Module, spec: GraphSpec, inputs: tuple[torch.Tensor, ...], path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            inputs,
            str(path),
            input_names=[t.name for t in spec.inputs],
            output_names=[t.name for t in spec.outputs],
            opset_version=17,
            dynamo=False,
        )
    return path


def export_tiny(path: Path, size: int = 16) -> tuple[Path, GraphSpec, tuple[torch.Tensor, ...]]:
    spec = tiny_spec(size)
    inputs = (torch.rand(1, 3, size, size), torch.rand(1, size // 2, size // 2, 2) * 2 - 1)
    return _export(TinyWarpNet(), spec, inputs, path), spec, inputs


def fomm_inputs(model: fomm.Fomm) -> dict[str, tuple[torch.Tensor, ...]]:
    """Sample inputs of the two per-frame graphs for ``model``: the bundled avatar (a face, as the live tool
    feeds it; uniform noise lies far outside what a trained detector's batch-norm statistics describe, and the
    FP16 error measured on it says little about use), its keypoints and encoding, and the keypoints of the
    avatar mirrored as the driving frame."""
    size = model.config.image_size
    with torch.no_grad():
        image = to_tensor(resize(load_image(DEFAULT_AVATAR), size, size))
        kp = model.kp_detector(image)
        encoding = model.generator.encode_source(image)
        driving = model.kp_detector(image.flip(-1))
    animate = (encoding.features, encoding.source_small, kp.value, kp.jacobian, driving.value, driving.jacobian)
    return {"keypoints": (image,), "animate": animate}


def export_fomm(
    model: fomm.Fomm, folder: Path, graphs: tuple[str, ...] = ("keypoints", "animate")
) -> dict[str, tuple[Path, GraphSpec, tuple[torch.Tensor, ...]]]:
    """Export ``model`` with ``export/`` (the ``standard`` fp32 graphs, as ``fomm export`` writes them) into
    ``folder``: ``{name: (path, spec, sample inputs)}`` for ``graphs``."""
    from export.exporter import export_model
    from export.specs import network_specs

    export_model(model, folder)
    specs = network_specs(model.config)
    inputs = fomm_inputs(model)
    return {name: (folder / f"{name}.onnx", GraphSpec.from_spec(specs[name]), inputs[name]) for name in graphs}
