"""GraphSpec: the seam to export's per-graph specs and to ONNX files."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from engines.errors import EngineError
from engines.spec import GraphSpec, TensorSpec


def test_from_an_export_style_spec() -> None:
    """``export.specs.NetworkSpec``-like objects: symbolic batch dimensions become -1, names kept."""
    tensor = SimpleNamespace
    spec = SimpleNamespace(
        name="keypoints",
        inputs=(tensor(name="image", shape=("batch", 3, 256, 256), dtype="float32"),),
        outputs=(
            tensor(name="kp_value", shape=("batch", 10, 2), dtype="float32"),
            tensor(name="kp_jacobian", shape=("batch", 10, 2, 2), dtype="float16"),
        ),
    )
    graph = GraphSpec.from_spec(spec)
    assert graph.dynamic_batch and graph.input("image").with_batch(4) == (4, 3, 256, 256)
    assert graph.output("kp_jacobian").torch_dtype == torch.float16
    with pytest.raises(EngineError, match="no output of graph 'keypoints' named 'frame'; it has kp_value, kp_jacobian"):
        graph.output("frame")


def test_invalid_specs_are_refused() -> None:
    with pytest.raises(EngineError, match=r"shape \(1, -1, 4\) must be positive \(-1 only on axis 0\)"):
        TensorSpec("x", (1, -1, 4))
    with pytest.raises(EngineError, match="dtype 'complex64' is not one of"):
        TensorSpec("x", (1,), "complex64")
    with pytest.raises(EngineError, match="tensor names must be unique"):
        GraphSpec("g", (TensorSpec("x", (1,)),), (TensorSpec("x", (1,)),))
