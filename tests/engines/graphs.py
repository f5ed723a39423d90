"""ONNX graphs for the engine tests, exported here with plain ``torch.onnx.export`` (``standard`` warp).

Stand-ins for ``export/``'s graphs (same graph and tensor names as ``export.specs``): ``keypoints``
(driving image -> keypoints) and ``animate`` (cached source encoding + both keypoint sets -> frame), the live
loop's per-frame path, plus a tiny Conv + GridSample + Softmax + Sigmoid graph.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import fomm
from engines.spec import GraphSpec, TensorSpec


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


class KeypointsGraph(nn.Module):
    def __init__(self, model: fomm.Fomm) -> None:
        super().__init__()
        self.kp_detector = model.kp_detector

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kp = self.kp_detector(image)
        return kp.value, kp.jacobian


class AnimateGraph(nn.Module):
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
        return self.generator.animate(
            encoding,
            fomm.Keypoints(source_kp_value, source_kp_jacobian),
            fomm.Keypoints(driving_kp_value, driving_kp_jacobian),
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
    """Sample inputs of the two per-frame graphs for ``model`` (random image, its keypoints and encoding)."""
    size = model.config.image_size
    with torch.no_grad():
        image = torch.rand(1, 3, size, size)
        kp = model.kp_detector(image)
        encoding = model.generator.encode_source(image)
        driving = model.kp_detector(torch.rand(1, 3, size, size))
    animate = (encoding.features, encoding.source_small, kp.value, kp.jacobian, driving.value, driving.jacobian)
    return {"keypoints": (image,), "animate": animate}


def fomm_specs(model: fomm.Fomm) -> dict[str, GraphSpec]:
    inputs = fomm_inputs(model)
    with torch.no_grad():
        value, jacobian = KeypointsGraph(model)(*inputs["keypoints"])
        frame = AnimateGraph(model)(*inputs["animate"])
    names = ("features", "source_small", "source_kp_value", "source_kp_jacobian")
    names += ("driving_kp_value", "driving_kp_jacobian")
    return {
        "keypoints": GraphSpec(
            "keypoints",
            (TensorSpec("image", tuple(inputs["keypoints"][0].shape)),),
            (TensorSpec("kp_value", tuple(value.shape)), TensorSpec("kp_jacobian", tuple(jacobian.shape))),
        ),
        "animate": GraphSpec(
            "animate",
            tuple(TensorSpec(n, tuple(t.shape)) for n, t in zip(names, inputs["animate"], strict=True)),
            (TensorSpec("frame", tuple(frame.shape)),),
        ),
    }


def export_fomm(
    model: fomm.Fomm, folder: Path, graphs: tuple[str, ...] = ("keypoints", "animate")
) -> dict[str, tuple[Path, GraphSpec, tuple[torch.Tensor, ...]]]:
    """Export ``graphs`` of ``model`` into ``folder``: ``{name: (path, spec, inputs)}``."""
    specs = fomm_specs(model)
    inputs = fomm_inputs(model)
    modules = {"keypoints": KeypointsGraph(model), "animate": AnimateGraph(model)}
    return {
        name: (_export(modules[name], specs[name], inputs[name], folder / f"{name}.onnx"), specs[name], inputs[name])
        for name in graphs
    }
