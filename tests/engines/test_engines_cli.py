"""``python -m engines build|inspect``: builds into the cache, inspects without a GPU, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.__main__ import main

pytest_plugins = ["engine_fixtures"]


def test_build_then_inspect(trt, tiny_graph, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _spec, _ = tiny_graph
    assert main(["build", str(path), "--precision", "fp16", "--cache", str(tmp_path)]) == 0
    engine = Path(capsys.readouterr().out.strip())
    assert engine.parent == tmp_path and engine.name.startswith("tiny-fp16-")
    assert main(["inspect", str(engine)]) == 0
    out = capsys.readouterr().out
    assert "input: image (1, 3, 16, 16) float32" in out and "output: occlusion (1, 1, 8, 8) float32" in out
    assert "GRID_SAMPLE x1" in out and f"flavour={trt.flavour}" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["build", "{tmp}/missing.onnx"], "missing.onnx' does not exist; export the model first"),
        (["build", "{tmp}/x.onnx", "--batch", "1,2"], "'1,2' is not MIN,OPT,MAX"),
        (["build", "{tmp}/x.onnx", "--target", "SM90"], "compute capability 'SM90' is not one of"),
        (["inspect", "{tmp}/foreign.engine"], "cannot be inspected: no key file foreign.json (not built by this tool)"),
        (["inspect", "{tmp}"], "is a folder"),
        (["build", "{tmp}"], "is a folder; expected one exported graph file, e.g. "),
        (["build", "{tmp}/x.onnx", "--cache", "{tmp}/x.onnx"], "x.onnx' is a file; expected a folder"),
    ],
    ids=["missing onnx", "bad batch", "bad target", "foreign engine", "folder", "onnx folder", "cache is a file"],
)
def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args, needle: str) -> None:
    (tmp_path / "foreign.engine").write_bytes(b"\x00" * 64)
    (tmp_path / "x.onnx").write_bytes(b"")
    assert main([a.replace("{tmp}", str(tmp_path)) for a in args]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and err[0].startswith("engines: error: ") and needle in err[0], err


def test_build_checks_the_cache_folder_before_building(
    trt, tiny_graph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import engines.cache as cache_module

    def no_build(*args, **kwargs):
        raise AssertionError("built an engine that the cache folder could not take")

    monkeypatch.setattr(cache_module, "build_engine", no_build)
    path, _spec, _ = tiny_graph
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert main(["build", str(path), "--cache", str(blocked / "engines")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"engines: error: engine cache folder '{blocked / 'engines'}': '{blocked}' is a file, not a folder"]
    assert main(["build", str(path), "--name", "../escaped", "--cache", str(tmp_path / "cache")]) == 2
    assert "graph name '../escaped' is not a plain name" in capsys.readouterr().err
    assert not (tmp_path / "escaped-fp32").exists() and not list(tmp_path.glob("escaped*"))


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        ("truncate", "corrupt: the file's SHA-256 differs from the one recorded at build time"),
        ("garbage key file", "unreadable key file"),
        ("empty key file", "unreadable key file"),
    ],
)
def test_inspect_checks_the_engine_against_its_key_file(
    trt, tiny_graph, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, needle: str
) -> None:
    path, _spec, _ = tiny_graph
    assert main(["build", str(path), "--cache", str(tmp_path)]) == 0
    engine = Path(capsys.readouterr().out.strip())
    if damage == "truncate":
        engine.write_bytes(engine.read_bytes()[:100])
    else:
        engine.with_suffix(".json").write_text("{not json" if damage == "garbage key file" else "{}")
    assert main(["inspect", str(engine)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"engines: error: engine '{engine}' cannot be inspected: ")
    assert needle in err[0], err
