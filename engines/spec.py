"""What :mod:`engines` needs to know about one exported graph: its I/O names, shapes and dtypes.

This is the seam to the exporter: :meth:`GraphSpec.from_spec` takes any object with ``name``, ``inputs`` and
``outputs`` whose items have ``name``, ``shape`` and ``dtype`` (``export``'s per-graph spec), and
:meth:`GraphSpec.from_onnx` reads the same from an ONNX file. Build, cache keys, buffer allocation and the
tests use only this class.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engines.errors import EngineError

__all__ = ["GraphSpec", "TensorSpec"]

_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "bool": torch.bool,
    "uint8": torch.uint8,
}


def _dtype_name(dtype: Any) -> str:
    """``"float32"`` for ``torch.float32``, ``"float32"``, numpy's ``float32`` or TensorRT's ``DataType.FLOAT``."""
    text = str(dtype).removeprefix("torch.").removeprefix("DataType.").lower()
    text = {"float": "float32", "half": "float16", "int": "int32", "bf16": "bfloat16"}.get(text, text)
    if text not in _DTYPES:
        raise EngineError(f"dtype {dtype!r} is not one of {', '.join(_DTYPES)}")
    return text


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output. ``shape`` has ``-1`` for a dynamic axis (only the batch axis, 0, may be)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", _dtype_name(self.dtype))
        if any(d < -1 or d == 0 for d in self.shape) or -1 in self.shape[1:]:
            raise EngineError(f"tensor {self.name!r}: shape {self.shape} must be positive (-1 only on axis 0)")

    @property
    def torch_dtype(self) -> torch.dtype:
        return _DTYPES[self.dtype]

    def with_batch(self, batch: int) -> tuple[int, ...]:
        """The shape with the batch axis set to ``batch``."""
        return (batch, *self.shape[1:]) if self.shape else ()


@dataclass(frozen=True)
class GraphSpec:
    """Name, inputs and outputs of one exported graph (``keypoints``, ``animate``, ...)."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        if not self.name or self.name in (".", "..") or any(sep in self.name for sep in ("/", "\\", "\0")):
            raise EngineError(f"graph name {self.name!r} is not a plain name (it names the engine file in the cache)")
        names = [t.name for t in (*self.inputs, *self.outputs)]
        if len(set(names)) != len(names):
            raise EngineError(f"graph {self.name!r}: tensor names must be unique, got {names}")

    @property
    def dynamic_batch(self) -> bool:
        return any(t.shape and t.shape[0] == -1 for t in self.inputs)

    def input(self, name: str) -> TensorSpec:
        return _named(self.inputs, name, f"input of graph {self.name!r}")

    def output(self, name: str) -> TensorSpec:
        return _named(self.outputs, name, f"output of graph {self.name!r}")

    @classmethod
    def from_spec(cls, spec: Any) -> GraphSpec:
        """From any spec object with ``name``, ``inputs``, ``outputs`` (items with ``name``/``shape``/``dtype``),
        e.g. ``export.specs.NetworkSpec``; symbolic dimensions (``"batch"``) become ``-1``."""

        def dims(shape: Iterable[Any]) -> tuple[int, ...]:
            return tuple(-1 if isinstance(d, str) else int(d) for d in shape)

        def tensors(items: Iterable[Any]) -> tuple[TensorSpec, ...]:
            return tuple(TensorSpec(t.name, dims(t.shape), getattr(t, "dtype", "float32")) for t in items)

        return cls(str(spec.name), tensors(spec.inputs), tensors(spec.outputs))

    @classmethod
    def from_onnx(cls, path: str | Path, name: str | None = None) -> GraphSpec:
        """Read the graph's I/O from an ONNX file (symbolic dimensions become ``-1``)."""
        from engines.onnx_utils import load_onnx, require_onnx

        onnx = require_onnx()

        model = load_onnx(path)
        initializers = {t.name for t in model.graph.initializer}

        def tensors(values: Sequence[Any]) -> tuple[TensorSpec, ...]:
            out = []
            for value in values:
                if value.name in initializers:
                    continue
                ttype = value.type.tensor_type
                dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in ttype.shape.dim)
                dtype = onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type).name
                out.append(TensorSpec(value.name, dims, dtype))
            return tuple(out)

        return cls(name or Path(path).stem, tensors(model.graph.input), tensors(model.graph.output))


def _named(items: Sequence[TensorSpec], name: str, what: str) -> TensorSpec:
    for item in items:
        if item.name == name:
            return item
    raise EngineError(f"no {what} named {name!r}; it has {', '.join(t.name for t in items)}")
