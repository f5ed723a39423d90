"""int8 static quantisation of the animate graph (QDQ convolutions only) and the int8 backend option."""

from __future__ import annotations

import logging

import pytest
import torch

import fomm
from export.backend import OnnxBackend
from export.exporter import ExportError, ExportOptions, export_model
from export.quantize import calibration_feeds, int8_filename, quantize_graph
from live.config import LiveConfig

pytest.importorskip("onnx", reason="the export tests need onnx: pip install 'fomm-live[export]'")
pytest.importorskip("onnxruntime", reason="the export tests need onnxruntime: pip install 'fomm-live[export]'")


def test_int8_animate_graph(tmp_path, make_tiny, caplog):
    import onnx

    model = fomm.build_fomm(make_tiny(num_kp=5))
    export_model(model, tmp_path / "onnx", ExportOptions())
    fp32 = OnnxBackend(tmp_path / "onnx")
    gen = torch.Generator().manual_seed(0)
    frames = [torch.rand(1, 3, 64, 64, generator=gen) for _ in range(4)]
    source = torch.rand(1, 3, 64, 64, generator=gen)
    caplog.set_level(logging.INFO)
    path = quantize_graph(tmp_path / "onnx", "animate", calibration_feeds(fp32, source, frames))
    assert "quantised animate to int8" in caplog.text  # our own log line comes through
    assert "pre-processing" not in caplog.text  # ONNX Runtime's advice on the root logger does not
    assert not logging.getLogger().filters  # and the filter is gone afterwards
    assert path.name == int8_filename("animate") and not list((tmp_path / "onnx").glob("*.partial"))
    nodes = onnx.load(str(path)).graph.node
    quantised = {n.input[0] for n in nodes if n.op_type == "QuantizeLinear"}
    assert quantised and sum(n.op_type == "GridSample" for n in nodes) == 2
    grid_inputs = {n.input[1] for n in nodes if n.op_type == "GridSample"}
    assert not any(n.op_type == "DequantizeLinear" and n.output[0] in grid_inputs for n in nodes)  # grids stay float

    int8 = OnnxBackend(tmp_path / "onnx", graph_files={"animate": int8_filename("animate")})
    assert int8.name == "onnx-cpu-fp32-int8"
    kp = fp32.set_source(source)
    int8.set_source(source)
    a, b = fp32.generate(kp), int8.generate(kp)
    assert a.shape == b.shape and 0 < float((a - b).abs().max()) < 0.2  # quantised, and close
    with pytest.raises(ExportError, match="not an ONNX model"):
        (tmp_path / "onnx" / "bad.onnx").write_text("nope")
        OnnxBackend(tmp_path / "onnx", graph_files={"animate": "bad.onnx"})


def test_int8_needs_the_onnx_backend_said_before_any_model_loads():
    from live.config import LiveConfigError

    with pytest.raises(LiveConfigError, match="int8 needs --backend onnx on the CPU"):
        LiveConfig(model_config="tiny-256", dtype="int8")
    with pytest.raises(LiveConfigError, match="int8 needs --backend onnx on the CPU"):
        LiveConfig(backend="onnx", device="cuda", dtype="int8")
