"""``fomm export`` and export folders: the manifest, and bad input (one line, exit 2, nothing half-written)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import fomm
from export import exporter
from export.exporter import ExportError, ExportOptions, export_model, load_manifest, max_opset, weights_sha256
from export.runtime import open_export
from fomm.cli import main

pytest.importorskip("onnx", reason="the export tests need onnx: pip install 'fomm-live[export]'")
pytest.importorskip("onnxruntime", reason="the export tests need onnxruntime: pip install 'fomm-live[export]'")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One CLI export of an untrained tiny-256 network (shared, copied by tests that change it)."""
    out = tmp_path_factory.mktemp("cli") / "tiny"
    assert main(["export", "--config", "tiny-256", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture
def copy(exported, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(exported, dst)
    return dst


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fomm: error: "), err
    return err[0]


def test_cli_writes_graphs_and_manifest(exported):
    assert sorted(p.name for p in exported.iterdir()) == [
        "animate.onnx",
        "keypoints.onnx",
        "manifest.json",
        "source.onnx",
    ]
    data = json.loads((exported / "manifest.json").read_text())
    assert data["project_version"] == fomm.__version__ and data["preset"] == "tiny-256"
    assert data["opset"] >= 17 and data["precision"] == "fp32" and data["warp"] == "standard"
    assert data["align_corners"] is True and len(data["weights_sha256"]) == 64
    assert [g["name"] for g in data["graphs"]["animate"]["inputs"]][-2:] == ["driving_kp_value", "driving_kp_jacobian"]
    assert not list(exported.parent.glob(".*partial*"))
    load_manifest(exported)  # checks every file's hash and that it is ONNX


def test_checkpoint_config_mismatch(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["export", "--checkpoint", str(fomm.media.assets.DEMO_MODEL), "--config", "vox-256", "--out", str(out)])
    assert code == 2
    assert "does not fit config 'vox-256'" in error_line(capsys)
    assert not out.exists()


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    assert main(["export", "--config", "tiny-256", "--out", str(blocker / "out")]) == 2
    assert "cannot write the output folder" in error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_folder_with_other_files_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["export", "--config", "tiny-256", "--out", str(tmp_path)]) == 2
    assert "not empty and holds no earlier export" in error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_failed_export_leaves_nothing(tmp_path, make_tiny, monkeypatch):
    calls = []
    real = exporter._export_graph

    def fail_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("simulated failure")
        return real(*args, **kwargs)

    monkeypatch.setattr(exporter, "_export_graph", fail_on_second)
    with pytest.raises(RuntimeError, match="simulated"):
        export_model(fomm.build_fomm(make_tiny()), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_folder_from_another_version(copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["project_version"] = "0.0.1"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match=r"written by fomm-live 0\.0\.1, this is .*; export again"):
        load_manifest(copy)


def test_folder_from_other_weights(copy, make_tiny):
    other = weights_sha256(fomm.build_fomm(make_tiny()))
    with pytest.raises(ExportError, match="exported from other weights"):
        open_export(copy, weights_sha256=other)
    with pytest.raises(ExportError, match=r"exported with .*'warp': 'standard'.* expected .*'warp': 'fused'"):
        load_manifest(copy, options=ExportOptions(warp="fused"))


def test_graph_file_that_is_not_onnx(copy):
    (copy / "animate.onnx").write_text("this is not a model\n")
    with pytest.raises(ExportError, match=r"animate\.onnx' is not an ONNX model"):
        load_manifest(copy)


def test_graph_file_changed_or_missing(copy):
    shutil.copy(copy / "keypoints.onnx", copy / "source.onnx")
    with pytest.raises(ExportError, match=r"source\.onnx' changed since export"):
        load_manifest(copy)
    (copy / "source.onnx").unlink()
    with pytest.raises(ExportError, match=r"source\.onnx' is missing"):
        load_manifest(copy)


def test_no_manifest(tmp_path):
    with pytest.raises(ExportError, match=r"has no manifest\.json"):
        load_manifest(tmp_path)


def test_bad_options():
    with pytest.raises(ExportError, match="opset 13 is too old"):
        ExportOptions(opset=13)
    newest = max_opset()
    assert newest >= 17 and ExportOptions(opset=newest).opset == newest
    too_new = rf"opset {newest + 1} is newer than torch .* can export; expected 17\.\.{newest}"
    with pytest.raises(ExportError, match=too_new):
        ExportOptions(opset=newest + 1)
    with pytest.raises(ExportError, match="warp variant 'magic'"):
        ExportOptions(warp="magic")


def test_weights_hash_ignores_the_file_format(tmp_path):
    loaded = fomm.load_checkpoint(fomm.media.assets.DEMO_MODEL)
    again = fomm.build_fomm(loaded.config)
    again.load_state_dict(loaded.model.state_dict())
    assert weights_sha256(again) == weights_sha256(loaded.model)
    with torch.no_grad():
        next(again.generator.parameters()).add_(1e-3)
    assert weights_sha256(again) != weights_sha256(loaded.model)


def test_size_must_fit_the_model(tmp_path, capsys):
    assert main(["export", "--config", "tiny-256", "--size", "100", "--out", str(tmp_path / "out")]) == 2
    assert "--size 100: model 'tiny-256' needs a multiple of 32" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
