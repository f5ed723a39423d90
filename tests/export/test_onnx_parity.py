"""ONNX Runtime vs PyTorch, graph by graph: the official fixtures, a vox-256-sized model, fused vs standard."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fomm
from export.exporter import ExportOptions, export_model, load_manifest
from export.runtime import open_export
from export.wrappers import graph_modules

pytest.importorskip("onnx", reason="the export tests need onnx: pip install 'fomm-live[export]'")
pytest.importorskip("onnxruntime", reason="the export tests need onnxruntime: pip install 'fomm-live[export]'")

CASES = [
    ("tiny-jac-ac-false", "tiny-jac.yaml", False),
    ("tiny-jac-ac-true", "tiny-jac.yaml", True),
    ("tiny-single-jac-ac-false", "tiny-single-jac.yaml", False),
]
FP32_ATOL = 1e-4  # ONNX Runtime vs PyTorch (the bound)
FUSED_ATOL = 1e-5  # fused graph vs standard graph


def torch_outputs(model: fomm.Fomm, graph: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    module = graph_modules(model)[graph]
    with torch.no_grad():
        out = module(*(torch.from_numpy(v) for v in feeds.values()))
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def assert_graph_matches(ox, model, graph: str, feeds: dict[str, np.ndarray], atol: float) -> dict[str, np.ndarray]:
    got = ox[graph].run(feeds)
    spec = ox.manifest.graphs[graph]
    for name, expected in zip(spec.output_names, torch_outputs(model, graph, feeds), strict=True):
        np.testing.assert_allclose(got[name], expected, atol=atol, rtol=0, err_msg=f"{graph}/{name}")
    return got


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def official_export(request, official, tmp_path_factory):
    folder, yaml_name, align_corners = request.param
    config = fomm.load_yaml_config(official / yaml_name).with_image_size(128)  # the fixtures' frames
    model = fomm.load_checkpoint(official / folder / "checkpoint.pth.tar", config, align_corners=align_corners).model
    out = tmp_path_factory.mktemp("onnx") / folder
    export_model(model, out, ExportOptions(dynamic_batch=True))
    ref = dict(np.load(official / folder / "reference.npz"))
    return model, open_export(out), ref


def test_official_fixtures_every_graph(official_export):
    model, ox, ref = official_export
    source = ref["source"].transpose(2, 0, 1)[None]
    driving = ref["driving"].transpose(0, 3, 1, 2)
    kp = assert_graph_matches(ox, model, "keypoints", {"image": driving}, FP32_ATOL)  # batch 3 (dynamic)
    np.testing.assert_allclose(kp["kp_value"], ref["kp_driving_value"], atol=FP32_ATOL, rtol=0)
    cached = assert_graph_matches(ox, model, "source", {"source": source}, FP32_ATOL)
    np.testing.assert_allclose(cached["source_kp_value"][0], ref["kp_source_value"], atol=FP32_ATOL, rtol=0)
    n = driving.shape[0]
    feeds = {name: np.repeat(value, n, axis=0) for name, value in cached.items()}
    feeds["driving_kp_value"] = ref["kp_norm_value"]
    feeds["driving_kp_jacobian"] = ref["kp_norm_jacobian"]
    frame = assert_graph_matches(ox, model, "animate", feeds, FP32_ATOL)["frame"]
    # and the original implementation's own animation (relative motion, adapt scale)
    np.testing.assert_allclose(frame.transpose(0, 2, 3, 1), ref["prediction_relative_adapt"], atol=FP32_ATOL, rtol=0)


def test_vox_256_sized_random_model(tmp_path):
    """The released network's size, random weights: each graph within 1e-4 of PyTorch."""
    model = fomm.build_fomm(fomm.preset("vox-256"))
    export_model(model, tmp_path / "vox", ExportOptions())
    ox = open_export(tmp_path / "vox", threads=2)
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 256, 256, generator=gen).numpy()
    assert_graph_matches(ox, model, "keypoints", {"image": image}, FP32_ATOL)
    cached = assert_graph_matches(ox, model, "source", {"source": image}, FP32_ATOL)
    spec = ox.manifest.graphs["animate"]
    driving = {k: v.numpy() for k, v in spec.sample_inputs(1, generator=gen).items() if k.startswith("driving")}
    assert_graph_matches(ox, model, "animate", {**cached, **driving}, FP32_ATOL)


@pytest.mark.parametrize("align_corners", [True, False])
def test_fused_graph_matches_standard(tmp_path, make_tiny, align_corners):
    import onnx

    from export import warp_op

    model = fomm.build_fomm(make_tiny(num_kp=5).with_align_corners(align_corners))
    export_model(model, tmp_path / "standard", ExportOptions(warp="standard"))
    export_model(model, tmp_path / "fused", ExportOptions(warp="fused"))
    nodes = onnx.load(str(tmp_path / "fused" / "animate.onnx")).graph.node
    custom = [(n.domain, n.op_type, {a.name: a.i for a in n.attribute}) for n in nodes if n.domain]
    attrs = {"align_corners": int(align_corners), "padding_mode": 0}
    assert custom == [(warp_op.DOMAIN, warp_op.WARP_MULTI, attrs), (warp_op.DOMAIN, warp_op.WARP_OCCLUDED, attrs)]
    assert not any(n.op_type == "GridSample" for n in nodes)
    standard_nodes = onnx.load(str(tmp_path / "standard" / "animate.onnx")).graph.node
    assert sum(n.op_type == "GridSample" for n in standard_nodes) == 2 and not any(n.domain for n in standard_nodes)

    standard, fused = open_export(tmp_path / "standard"), open_export(tmp_path / "fused")
    feeds = {k: v.numpy() for k, v in standard.manifest.graphs["animate"].sample_inputs(1).items()}
    feeds["features"] = fused["source"].run({"source": np.random.default_rng(0).random((1, 3, 64, 64), np.float32)})[
        "features"
    ]
    a = standard["animate"].run(feeds)["frame"]
    b = fused["animate"].run(feeds)["frame"]
    np.testing.assert_allclose(b, a, atol=FUSED_ATOL, rtol=0)
    np.testing.assert_allclose(b, torch_outputs(model, "animate", feeds)[0], atol=FP32_ATOL, rtol=0)
    assert load_manifest(tmp_path / "fused").custom_domains == {warp_op.DOMAIN: warp_op.OP_VERSION}


def test_fp16_and_dynamic_batch_export(tmp_path, make_tiny):
    import onnx

    model = fomm.build_fomm(make_tiny())
    manifest = export_model(model, tmp_path / "fp16", ExportOptions(precision="fp16", dynamic_batch=True))
    for name, spec in manifest.graphs.items():
        proto = onnx.load(str(tmp_path / "fp16" / spec.filename))
        assert proto.opset_import[0].version >= 17
        elem = onnx.TensorProto.FLOAT16
        assert all(i.type.tensor_type.elem_type == elem for i in proto.graph.input), name
        assert all(o.type.tensor_type.elem_type == elem for o in proto.graph.output), name
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
