"""Real TensorRT engines built here (TensorRT-RTX builds ahead of time without a GPU) from exported graphs."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import pytest
import torch

import fomm
from engines.build import EngineConfig, build_engine
from engines.errors import EngineError
from engines.spec import GraphSpec, TensorSpec
from tests.engines.graphs import TinyWarpNet, export_fomm

pytest_plugins = ["engine_fixtures"]

onnx = pytest.importorskip("onnx")


def _assert_matches_spec(built, spec: GraphSpec) -> None:
    assert [(t.name, t.shape, t.dtype) for t in built.network.inputs] == [
        (t.name, t.shape, t.dtype) for t in spec.inputs
    ]
    assert sorted((t.name, t.shape, t.dtype) for t in built.network.outputs) == sorted(
        (t.name, t.shape, t.dtype) for t in spec.outputs
    )


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("model", ["tiny", "demo"])
def test_fomm_graphs_build(trt, fomm_graphs, tmp_path: Path, model: str, precision: str) -> None:
    _net, exported = fomm_graphs[model]
    for graph, (path, spec, _inputs) in exported.items():
        built = build_engine(path, spec, EngineConfig(precision=precision), trt=trt)
        _assert_matches_spec(built, spec)  # I/O names, shapes and dtypes as exported (FP32 I/O in FP16 too)
        layers = built.network.layer_types()
        assert layers["CONVOLUTION"] > 5
        conv_dtypes = {x.output_dtypes[0] for x in built.network.layers if x.type == "CONVOLUTION"}
        assert conv_dtypes == {"float16" if precision == "fp16" else "float32"}
        if graph == "animate":
            assert layers["GRID_SAMPLE"] == 2  # native GridSample: the `standard` graph, no plugin
        for layer in built.network.layers:  # warps and softmax heads stay FP32 in FP16 engines
            if layer.type in ("GRID_SAMPLE", "SOFTMAX"):
                assert layer.output_dtypes == ("float32",), layer
        # serialised: the bytes round-trip through a file unchanged
        engine = tmp_path / f"{model}-{graph}-{precision}.engine"
        engine.write_bytes(built.blob)
        assert engine.read_bytes() == built.blob and len(built.blob) > 10_000


def test_vox_256_animate_builds_fp16(trt, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The released size: export + FP16 build of the per-frame graph (timed; about 20 s export, 2 s build here)."""
    net = fomm.build_fomm(fomm.preset("vox-256")).eval()
    path, spec, _ = export_fomm(net, tmp_path, graphs=("animate",))["animate"]
    start = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="engines"):
        built = build_engine(path, spec, EngineConfig(precision="fp16"), trt=trt)
    _assert_matches_spec(built, spec)
    assert built.network.layer_types()["GRID_SAMPLE"] == 2
    assert built.seconds <= time.perf_counter() - start
    assert any("engine build:" in r.message for r in caplog.records)  # progress is shown


def _one_node_graph(tmp_path: Path, domain: str, op: str) -> Path:
    from onnx import TensorProto, helper

    node = helper.make_node(op, ["image", "grid", "occlusion"], ["out"], name="warp0", domain=domain, align_corners=1)
    graph = helper.make_graph(
        [node],
        "fused",
        [
            helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 4, 8, 8]),
            helper.make_tensor_value_info("grid", TensorProto.FLOAT, [1, 8, 8, 2]),
            helper.make_tensor_value_info("occlusion", TensorProto.FLOAT, [1, 1, 8, 8]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 8, 8])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(domain, 1)]
    path = tmp_path / f"{op}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return path


def test_parser_errors_name_the_node(trt, tmp_path: Path) -> None:
    """A node TensorRT does not know: the error names the node and its op, on one line."""
    path = _one_node_graph(tmp_path, "com.example", "Mystery")
    with pytest.raises(EngineError) as err:
        build_engine(path, GraphSpec.from_onnx(path), trt=trt)
    message = str(err.value)
    assert "node 0 'warp0' (Mystery)" in message and "\n" not in message


def test_fused_graph_without_plugin_support_says_what_to_do(trt, tmp_path: Path) -> None:
    from export.warp_op import DOMAIN, WARP_OCCLUDED

    if trt.has_plugin_layers:
        pytest.skip(f"{trt.label} has plugin layers")
    path = _one_node_graph(tmp_path, DOMAIN, WARP_OCCLUDED)
    with pytest.raises(EngineError, match=r"has 1 fused warp node\(s\) but .* no plugin layers; build the `standard`"):
        build_engine(path, GraphSpec.from_onnx(path), trt=trt)


def test_io_mismatch_and_bad_files_are_one_line_errors(trt, tiny_graph, tmp_path: Path) -> None:
    path, spec, _ = tiny_graph
    renamed = GraphSpec("tiny", (TensorSpec("frame", (1, 3, 16, 16)), spec.inputs[1]), spec.outputs)
    with pytest.raises(EngineError, match=r"inputs are \['grid', 'image'\], graph spec 'tiny' expects"):
        build_engine(path, renamed, trt=trt)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not an onnx model")
    with pytest.raises(EngineError, match="is not a readable ONNX model"):
        build_engine(garbage, spec, trt=trt)
    with pytest.raises(EngineError, match="does not exist; export the model first"):
        build_engine(tmp_path / "missing.onnx", spec, trt=trt)
    with pytest.raises(EngineError, match="has a static batch"):
        build_engine(path, spec, EngineConfig(batch=(1, 2, 4)), trt=trt)


def test_dynamic_batch_profile(trt, tmp_path: Path) -> None:
    path = tmp_path / "dynamic.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            TinyWarpNet().eval(),
            (torch.rand(2, 3, 16, 16), torch.rand(2, 8, 8, 2)),
            str(path),
            input_names=["image", "grid"],
            output_names=["mask", "occlusion"],
            dynamic_axes={n: {0: "batch"} for n in ("image", "grid", "mask", "occlusion")},
            opset_version=17,
            dynamo=False,
        )
    spec = GraphSpec.from_onnx(path)
    assert spec.dynamic_batch and spec.input("image").shape == (-1, 3, 16, 16)
    with pytest.raises(EngineError, match="give a batch profile"):
        build_engine(path, spec, trt=trt)
    built = build_engine(path, spec, EngineConfig(batch=(1, 2, 4)), trt=trt)
    assert built.network.inputs[0].shape == (-1, 3, 16, 16)


def test_timing_cache_and_targets(trt, tiny_graph, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path, spec, _ = tiny_graph
    cache = tmp_path / "timing.cache"
    with caplog.at_level(logging.INFO, logger="engines"):
        build_engine(path, spec, EngineConfig(timing_cache=cache), trt=trt)
        build_engine(path, spec, EngineConfig(timing_cache=cache), trt=trt)  # reused, not rewritten from scratch
    if trt.has_timing_cache:
        assert cache.stat().st_size > 0
    else:  # TensorRT-RTX: none, and it says so
        assert not cache.exists()
        assert any("timing cache:" in r.message and "skipped" in r.message for r in caplog.records)
    if trt.has_compute_capability_targets:
        for target in ("SM86", "SM75"):  # SM75: what a Turing GPU gets (the portable default leaves it out)
            built = build_engine(path, spec, EngineConfig(compute_capabilities=(target,)), trt=trt)
            assert len(built.blob) > 0


def test_engine_config_validation() -> None:
    with pytest.raises(EngineError, match="precision 'int8' is not one of fp32, fp16"):
        EngineConfig(precision="int8")
    with pytest.raises(EngineError, match="compute capability 'SM90'"):
        EngineConfig(compute_capabilities=("SM90",))
    with pytest.raises(EngineError, match="1 <= min <= opt <= max"):
        EngineConfig(batch=(2, 1, 4))
