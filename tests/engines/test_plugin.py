"""Warp plugin logic (no TensorRT needed) and, with a GPU, the plugin and its kernel against the reference."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from engines.errors import EngineError
from engines.plugin import (
    WarpAttributes,
    add_parser_attributes,
    check_shapes,
    num_inputs,
    output_dims,
    output_dtype,
    plugin_classes,
    probe_python_plugin,
    register_warp_plugins,
    supports_format,
)
from export.warp_op import DOMAIN, OP_VERSION, WARP_MULTI, WARP_OCCLUDED

pytest_plugins = ["engine_fixtures"]


def test_shape_rules() -> None:
    assert num_inputs(WARP_MULTI) == 2 and num_inputs(WARP_OCCLUDED) == 3
    assert output_dims(WARP_MULTI, [(2, 3, 64, 64), (2, 11, 32, 32, 2)]) == [2, 11, 3, 32, 32]
    assert output_dims(WARP_OCCLUDED, [(1, 256, 64, 64), (1, 60, 60, 2), (1, 1, 60, 60)]) == [1, 256, 60, 60]
    # works on symbolic dimensions (TensorRT's IDimensionExpr) the same way
    assert output_dims(WARP_MULTI, [("B", "C", "H", "W"), ("B", "N", "h", "w", "2")]) == ["B", "N", "C", "h", "w"]
    with pytest.raises(
        EngineError, match=r"WarpMulti: expected inputs of ranks \[4, 5\] \(image, grids\), got \[4, 4\]"
    ):
        output_dims(WARP_MULTI, [(1, 3, 8, 8), (1, 8, 8, 2)])
    with pytest.raises(EngineError, match="grid shape"):
        check_shapes(WARP_OCCLUDED, [(2, 4, 8, 8), (1, 8, 8, 2), (1, 1, 8, 8)])
    with pytest.raises(EngineError, match=r"occlusion shape \(1, 2, 8, 8\) must be \(1, 1, 8, 8\)"):
        check_shapes(WARP_OCCLUDED, [(1, 4, 8, 8), (1, 8, 8, 2), (1, 2, 8, 8)])
    assert check_shapes(WARP_OCCLUDED, [(1, 4, 16, 16), (1, 8, 8, 2), (1, 1, 8, 8)]) == (1, 4, 8, 8)
    with pytest.raises(ValueError, match="unknown fused warp op 'Warp'"):
        num_inputs("Warp")


def test_types_and_formats() -> None:
    assert output_dtype(WARP_MULTI, ["float16", "float16"]) == "float16"
    with pytest.raises(EngineError, match="image dtype 'int8'"):
        output_dtype(WARP_OCCLUDED, ["int8", "float32", "float32"])
    fp32 = ("float32", "LINEAR")
    fp16 = ("float16", "LINEAR")
    assert supports_format(0, [fp32], 2) and supports_format(0, [fp16], 2)
    assert supports_format(2, [fp16, fp16, fp16], 2)
    assert not supports_format(1, [fp32, fp16], 2)  # mixed precision: no
    assert not supports_format(0, [("float32", "CHW32")], 2)  # vectorised formats: no
    assert not supports_format(0, [("int8", "LINEAR")], 2)


def test_attributes_round_trip_and_parsing() -> None:
    for attributes in (WarpAttributes(True), WarpAttributes(False)):
        fields = attributes.to_fields()
        assert all(v.dtype == np.int32 and v.shape == (1,) for v in fields.values())
        assert WarpAttributes.from_fields(fields) == attributes
    # as TensorRT's ONNX parser passes node attributes: int32 arrays, padding_mode optional
    assert WarpAttributes.from_fields({"align_corners": np.array([1], np.int32)}) == WarpAttributes(True, "zeros")
    with pytest.raises(EngineError, match="attribute 'align_corners' is missing"):
        WarpAttributes.from_fields({"padding_mode": np.array([0])})
    with pytest.raises(EngineError, match="align_corners must be 0 or 1, got 3"):
        WarpAttributes.from_fields({"align_corners": 3})
    with pytest.raises(EngineError, match="implements 'zeros' only"):
        WarpAttributes.from_fields({"align_corners": 1, "padding_mode": 1})


def test_parser_attributes_point_at_the_plugin() -> None:
    pytest.importorskip("onnx")
    from onnx import helper

    warp = helper.make_node(WARP_MULTI, ["a", "b"], ["c"], domain=DOMAIN, align_corners=1)
    other = helper.make_node("Relu", ["c"], ["d"])
    model = helper.make_model(helper.make_graph([warp, other], "g", [], []))
    assert add_parser_attributes(model) == 1
    assert add_parser_attributes(model) == 1  # idempotent
    attrs = {a.name: helper.get_attribute_value(a) for a in model.graph.node[0].attribute}
    assert attrs == {
        "align_corners": 1,
        "plugin_namespace": DOMAIN.encode(),
        "plugin_version": str(OP_VERSION).encode(),
    }
    assert not model.graph.node[1].attribute


def test_flavour_without_plugins_falls_back(trt, caplog: pytest.LogCaptureFixture) -> None:
    if trt.has_plugin_layers:
        pytest.skip(f"{trt.label} has plugin layers")
    with pytest.raises(EngineError, match="has no plugin layers; use the `standard` graph"):
        plugin_classes(trt, WARP_MULTI)
    with caplog.at_level(logging.INFO, logger="engines"):
        assert register_warp_plugins(trt) is False
    assert "the standard graph (native GridSample) is used" in caplog.text


def test_rtx_python_plugin_probe(trt) -> None:
    """Recorded finding (README): TensorRT-RTX 1.7's ONNX parser aborts on a Python IPluginV3 node."""
    if not trt.is_rtx or trt.version != "1.7.1.116":
        pytest.skip("the finding is recorded for TensorRT-RTX 1.7.1.116")
    result = probe_python_plugin("tensorrt_rtx")
    assert not result.works and "SIGABRT" in result.detail


@pytest.mark.gpu
def test_launch_matches_reference() -> None:
    """The enqueue path minus TensorRT: device views over raw pointers, the Triton kernel on a raw stream."""
    pytest.importorskip("triton")
    pytest.importorskip("fomm.kernels.triton_warp")
    from engines.plugin import device_tensor, launch
    from fomm.geometry import warp_multi, warp_occluded

    torch.manual_seed(0)
    for dtype, name, atol in ((torch.float32, "float32", 1e-5), (torch.float16, "float16", 2e-3)):
        image = torch.rand(1, 8, 32, 32, device="cuda", dtype=dtype)
        grids = (torch.rand(1, 3, 16, 16, 2, device="cuda") * 2.2 - 1.1).to(dtype)
        occlusion = torch.rand(1, 1, 16, 16, device="cuda", dtype=dtype)
        stream = torch.cuda.current_stream().cuda_stream
        out = torch.empty(1, 3, 8, 16, 16, device="cuda", dtype=dtype)
        view = device_tensor(out.data_ptr(), out.shape, name)
        launch(WARP_MULTI, WarpAttributes(True), [image, grids], view, stream)
        torch.cuda.synchronize()
        ref = warp_multi(image.float(), grids.float(), align_corners=True)
        assert (out.float() - ref).abs().max() < atol
        out2 = torch.empty(1, 8, 16, 16, device="cuda", dtype=dtype)
        launch(WARP_OCCLUDED, WarpAttributes(False), [image, grids[:, 0], occlusion], out2, stream)
        torch.cuda.synchronize()
        ref2 = warp_occluded(image.float(), grids[:, 0].float(), occlusion.float(), align_corners=False)
        assert (out2.float() - ref2).abs().max() < atol


def test_plugin_classes_adapt_the_logic_to_tensorrt(trt) -> None:
    """The IPluginV3 adapter methods, called as TensorRT would, on the installed flavour's Python classes."""
    from types import SimpleNamespace

    m = trt.module
    plugin_class, creator_class = plugin_classes(trt, WARP_MULTI, probe=not trt.has_plugin_layers)
    creator = creator_class()
    assert (creator.name, creator.plugin_namespace, creator.plugin_version) == (WARP_MULTI, DOMAIN, str(OP_VERSION))
    assert [f.name for f in creator.field_names] == ["align_corners", "padding_mode"]
    fields = m.PluginFieldCollection([m.PluginField("align_corners", np.array([0], np.int32), m.PluginFieldType.INT32)])
    plugin = creator.create_plugin("warp", fields, m.TensorRTPhase.BUILD)
    assert isinstance(plugin, plugin_class) and plugin.attributes == WarpAttributes(False)
    serialised = {f.name: f.data for f in plugin.get_fields_to_serialize()}
    assert (
        WarpAttributes.from_fields(serialised) == plugin.attributes and plugin.clone().attributes == plugin.attributes
    )
    assert plugin.get_output_data_types([m.DataType.HALF, m.DataType.HALF]) == [m.DataType.HALF]

    def desc(dtype):
        return SimpleNamespace(desc=SimpleNamespace(type=dtype, format=m.TensorFormat.LINEAR))

    assert plugin.supports_format_combination(2, [desc(m.DataType.FLOAT)] * 3, 2)
    assert not plugin.supports_format_combination(1, [desc(m.DataType.FLOAT), desc(m.DataType.HALF)], 2)
    dims = SimpleNamespace
    plugin.on_shape_change([dims(dims=(1, 3, 8, 8)), dims(dims=(1, 2, 4, 4, 2))], [dims(dims=(1, 2, 3, 4, 4))])
    with pytest.raises(EngineError, match="grid shape"):
        plugin.on_shape_change([dims(dims=(2, 3, 8, 8)), dims(dims=(1, 2, 4, 4, 2))], [])


def test_fused_graph_when_the_plugin_cannot_load(monkeypatch: pytest.MonkeyPatch, caplog, tmp_path) -> None:
    """Standard TensorRT without the plugin's kernels (no Triton): one line saying what to do, nothing built."""
    import sys
    from pathlib import Path
    from types import SimpleNamespace

    pytest.importorskip("onnx")
    from onnx import helper

    from engines.build import _prepare_plugin_nodes
    from engines.trt import TensorRT

    monkeypatch.setitem(sys.modules, "triton", None)  # `import triton` fails, as without Triton
    network_class = type("Net", (), {"add_plugin_v3": None})
    standard = TensorRT(SimpleNamespace(INetworkDefinition=network_class), "tensorrt", "10.13")
    with caplog.at_level(logging.INFO, logger="engines"):
        assert register_warp_plugins(standard) is False
    assert "Triton kernels do not import" in caplog.text
    node = helper.make_node(WARP_MULTI, ["a", "b"], ["c"], domain=DOMAIN, align_corners=1)
    model = helper.make_model(helper.make_graph([node], "g", [], []))
    with pytest.raises(EngineError, match=r"the warp plugin cannot load here .*; build the `standard` export"):
        _prepare_plugin_nodes(model, Path(tmp_path / "fused.onnx"), standard)
