"""Engine-test fixtures: ONNX graphs exported once per session, the TensorRT flavour.

A plugin (``pytest_plugins = ["engine_fixtures"]`` in the test modules): a ``conftest.py`` here would shadow
the ``from conftest import ...`` of the other test folders.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import fomm
from fomm.media.assets import DEMO_MODEL
from tests.conftest import tiny_config
from tests.engines.graphs import export_fomm, export_tiny


@pytest.fixture(scope="session")
def trt():
    """The installed TensorRT flavour (the ``[trt]`` extra installs TensorRT-RTX, which builds without a GPU)."""
    from engines.errors import EngineError
    from engines.trt import load_tensorrt

    try:
        info = load_tensorrt()
    except EngineError as exc:
        pytest.skip(str(exc))
    if not info.is_rtx and not torch.cuda.is_available():
        pytest.skip(f"{info.label} builds engines only on a GPU")
    return info


@pytest.fixture(scope="session")
def tiny_graph(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("onnx")
    return export_tiny(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


def _model(name: str) -> fomm.Fomm:
    torch.manual_seed(0)
    if name == "demo":
        return fomm.load_checkpoint(DEMO_MODEL).model.eval()
    if name == "tiny":
        return fomm.build_fomm(tiny_config()).eval()
    return fomm.build_fomm(fomm.preset(name)).eval()


@pytest.fixture(scope="session")
def fomm_graphs(tmp_path_factory: pytest.TempPathFactory):
    """``{model: (fomm.Fomm, {graph: (onnx path, spec, sample inputs)})}`` for the tiny fixture and demo models."""
    pytest.importorskip("onnx")
    graphs = {}
    for name in ("tiny", "demo"):
        folder: Path = tmp_path_factory.mktemp(f"onnx-{name}")
        model = _model(name)
        graphs[name] = (model, export_fomm(model, folder))
    return graphs
