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
        (["inspect", "{tmp}/foreign.engine"], "has no key file foreign.json: not built by this tool"),
    ],
    ids=["missing onnx", "bad batch", "bad target", "foreign engine"],
)
def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args, needle: str) -> None:
    (tmp_path / "foreign.engine").write_bytes(b"\x00" * 64)
    (tmp_path / "x.onnx").write_bytes(b"")
    assert main([a.replace("{tmp}", str(tmp_path)) for a in args]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and err[0].startswith("engines: error: ") and needle in err[0], err
