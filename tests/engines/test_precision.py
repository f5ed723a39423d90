"""The FP16 ONNX pass: FP32 kept where it matters, FP32 I/O, and numbers close to FP32 (ONNX Runtime, CPU)."""

from __future__ import annotations

import numpy as np
import pytest

from engines.precision import KEEP_FP32_OPS, to_mixed_fp16

pytest_plugins = ["engine_fixtures"]

onnx = pytest.importorskip("onnx")
FLOAT, HALF = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16


def _types(model) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.value_info, *graph.output]}
    types.update({t.name: t.data_type for t in graph.initializer})
    return types


def test_fp16_graph_keeps_warp_and_heads_fp32(tiny_graph) -> None:
    path, _spec, _inputs = tiny_graph
    model = to_mixed_fp16(onnx.load(str(path)))
    types = _types(model)
    ops = {node.op_type for node in model.graph.node}
    assert {"GridSample", "Softmax", "Sigmoid", "Conv", "Cast"} <= ops
    for node in model.graph.node:
        float_io = [types[n] for n in (*node.input, *node.output) if n and types.get(n) in (FLOAT, HALF)]
        if node.op_type in KEEP_FP32_OPS:
            # grid and image of GridSample, the softmax / sigmoid inputs and outputs: FP32
            assert all(t == FLOAT for t in float_io), node.name
        elif node.op_type == "Conv":
            assert all(t == HALF for t in float_io), node.name
    assert [types[v.name] for v in model.graph.input] == [FLOAT, FLOAT]
    assert [types[v.name] for v in model.graph.output] == [FLOAT, FLOAT]


@pytest.mark.parametrize("graph", ["keypoints", "animate"])
def test_fp16_graph_matches_fp32_in_onnxruntime(fomm_graphs, graph: str) -> None:
    ort = pytest.importorskip("onnxruntime")
    _model, exported = fomm_graphs["demo"]
    path, _spec, inputs = exported[graph]
    fp16 = to_mixed_fp16(onnx.load(str(path)))
    feeds = {
        i.name: t.numpy()
        for i, t in zip(ort.InferenceSession(str(path)).get_inputs(), inputs, strict=True)  # names in export order
    }
    options = ort.SessionOptions()
    options.log_severity_level = 3
    ref = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, feeds)
    half = ort.InferenceSession(fp16.SerializeToString(), options, providers=["CPUExecutionProvider"])
    got = half.run(None, feeds)
    for a, b in zip(ref, got, strict=True):
        assert b.dtype == np.float32
        diff = np.abs(a - b)
        assert diff.max() < 2e-2 and diff.mean() < 1e-3, (graph, diff.max(), diff.mean())
    # the FP16 graph really computes in FP16: its convolution weights are half precision
    conv_weights = {n.input[1] for n in fp16.graph.node if n.op_type == "Conv"}
    assert {t.data_type for t in fp16.graph.initializer if t.name in conv_weights} == {HALF}
