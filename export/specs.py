"""One :class:`NetworkSpec` per exported graph: the single source of truth for names, shapes and dtypes.

Export, the ONNX Runtime backend, buffer allocation and TensorRT profiles read tensors **by name**, never
by position. Three graphs per model (``S`` = image size, ``K`` = keypoints, ``B`` = batch, ``"batch"`` when
the export has a dynamic batch, else 1):

``keypoints`` (per driving frame)
    inputs ``image (B, 3, S, S)``, float RGB in ``[0, 1]``;
    outputs ``kp_value (B, K, 2)`` (``(x, y)`` in ``[-1, 1]``), ``kp_jacobian (B, K, 2, 2)`` (row-major;
    the identity when the model has no jacobians).

``source`` (once per avatar: what ``set_source`` caches)
    inputs ``source (B, 3, S, S)``;
    outputs ``features (B, C_f, S/2**d, S/2**d)`` (encoder features), ``source_small (B, 3, h, w)`` (the
    source at the dense-motion scale), ``source_kp_value (B, K, 2)``, ``source_kp_jacobian (B, K, 2, 2)``.

``animate`` (per frame, after motion transfer)
    inputs ``features``, ``source_small``, ``source_kp_value``, ``source_kp_jacobian`` (the ``source`` graph's
    outputs, same names), ``driving_kp_value (B, K, 2)``, ``driving_kp_jacobian (B, K, 2, 2)`` (driving
    keypoints already motion-transferred, see :func:`fomm.transfer_motion`);
    outputs ``frame (B, 3, S, S)`` in ``[0, 1]``. Dense motion, both warps, bottleneck and decoder.

Usage::

    specs = network_specs(fomm.preset("vox-256"), precision="fp16", dynamic_batch=True)
    spec = specs["animate"]
    spec.input("features").shape        # ("batch", 256, 64, 64)
    spec.input("features").resolve(4)   # (4, 256, 64, 64)
    spec.input("features").dtype        # "float16"
    spec.output("frame").torch_dtype    # torch.float16

Precision: ``fp32`` graphs take and return float32 everywhere; ``fp16`` graphs float16 everywhere (the
runtime casts). Specs serialise to the export manifest (:meth:`NetworkSpec.to_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

import fomm

__all__ = [
    "BATCH",
    "GRAPH_NAMES",
    "PRECISIONS",
    "NetworkSpec",
    "TensorSpec",
    "network_specs",
]

BATCH = "batch"
"""Name of the dynamic batch dimension (dimension 0 of every tensor when the export is batch-dynamic)."""

GRAPH_NAMES = ("keypoints", "source", "animate")
"""The exported graphs, in the order they run for the first frame."""

PRECISIONS = {"fp32": "float32", "fp16": "float16"}
"""Export precision -> element type of every input and output."""

_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16}


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output.

    Attributes:
        name: the ONNX value name (read by name, never by position).
        shape: dimensions; :data:`BATCH` (a string) for the dynamic batch dimension.
        dtype: ``"float32"`` or ``"float16"``.
    """

    name: str
    shape: tuple[int | str, ...]
    dtype: str

    def resolve(self, batch: int = 1) -> tuple[int, ...]:
        """The concrete shape for ``batch`` items."""
        return tuple(batch if isinstance(d, str) else d for d in self.shape)

    @property
    def torch_dtype(self) -> torch.dtype:
        return _TORCH_DTYPES[self.dtype]

    @property
    def dynamic_axes(self) -> dict[int, str]:
        """``{axis: name}`` of the symbolic dimensions (the exporter's ``dynamic_axes`` entry)."""
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        return cls(str(data["name"]), tuple(data["shape"]), str(data["dtype"]))


@dataclass(frozen=True)
class NetworkSpec:
    """One exported graph: its name, file name and named inputs and outputs.

    Attributes:
        name: one of :data:`GRAPH_NAMES`.
        inputs, outputs: in the graph's order (use :meth:`input` / :meth:`output` to read them by name).
    """

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def filename(self) -> str:
        """File name of the graph in an export folder."""
        return f"{self.name}.onnx"

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def input(self, name: str) -> TensorSpec:
        return _find(self.inputs, name, f"input of graph {self.name!r}")

    def output(self, name: str) -> TensorSpec:
        return _find(self.outputs, name, f"output of graph {self.name!r}")

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """The exporter's ``dynamic_axes`` argument (empty for a fixed batch)."""
        return {t.name: t.dynamic_axes for t in (*self.inputs, *self.outputs) if t.dynamic_axes}

    def sample_inputs(self, batch: int = 1, *, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Plausible inputs by name (export tracing, parity tests): images/features uniform in ``[0, 1]``,
        keypoints in ``[-0.8, 0.8]``, jacobians near the identity."""
        out: dict[str, torch.Tensor] = {}
        for t in self.inputs:
            shape = t.resolve(batch)
            x = torch.rand(shape, generator=generator)
            if t.name.endswith("kp_value"):
                x = (x - 0.5) * 1.6
            elif t.name.endswith("kp_jacobian"):
                x = torch.eye(2).expand(shape) + (x - 0.5) * 0.2
            out[t.name] = x.to(t.torch_dtype)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.filename,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        return cls(
            str(data["name"]),
            tuple(TensorSpec.from_dict(t) for t in data["inputs"]),
            tuple(TensorSpec.from_dict(t) for t in data["outputs"]),
        )


def _find(tensors: tuple[TensorSpec, ...], name: str, what: str) -> TensorSpec:
    for t in tensors:
        if t.name == name:
            return t
    raise KeyError(f"{name!r} is not an {what}; expected one of: {', '.join(t.name for t in tensors)}")


def network_specs(
    config: fomm.FommConfig, *, precision: str = "fp32", dynamic_batch: bool = False
) -> dict[str, NetworkSpec]:
    """The three :class:`NetworkSpec` of a model, keyed by graph name (:data:`GRAPH_NAMES` order).

    Shapes come from the model's structure (built on the meta device: no memory, no weights).

    Args:
        config: the model (any preset, YAML config or a checkpoint's stored config).
        precision: ``"fp32"`` or ``"fp16"`` (dtype of every input and output).
        dynamic_batch: dimension 0 of every tensor is :data:`BATCH` instead of 1.

    Raises:
        ValueError: unknown precision, or a generator without a dense motion network (nothing to animate).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if config.generator.dense_motion is None:
        raise ValueError(f"model {config.name!r} has no dense motion network: it cannot be animated or exported")
    dtype = PRECISIONS[precision]
    size = config.image_size
    meta = fomm.build_fomm(config, device="meta")
    image = torch.empty(1, config.keypoint_detector.num_channels, size, size, device="meta")
    with torch.no_grad():
        encoding = meta.generator.encode_source(image)
        kp = meta.kp_detector(image)

    def t(name: str, shape: torch.Size | tuple[int, ...]) -> TensorSpec:
        dims: tuple[int | str, ...] = (BATCH if dynamic_batch else 1, *tuple(int(d) for d in shape[1:]))
        return TensorSpec(name, dims, dtype)

    image_spec = t("image", image.shape)
    kp_value, kp_jacobian = kp.value.shape, kp.jacobian.shape
    source_outputs = (
        t("features", encoding.features.shape),
        t("source_small", encoding.source_small.shape),
        t("source_kp_value", kp_value),
        t("source_kp_jacobian", kp_jacobian),
    )
    return {
        "keypoints": NetworkSpec("keypoints", (image_spec,), (t("kp_value", kp_value), t("kp_jacobian", kp_jacobian))),
        "source": NetworkSpec("source", (t("source", image.shape),), source_outputs),
        "animate": NetworkSpec(
            "animate",
            (*source_outputs, t("driving_kp_value", kp_value), t("driving_kp_jacobian", kp_jacobian)),
            (t("frame", image.shape),),
        ),
    }
