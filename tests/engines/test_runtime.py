"""Engine runtime and ``--backend trt``: clear errors here; parity, CUDA graphs and the live backend on a GPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engines.build import EngineConfig
from engines.cache import EngineCache
from engines.engine import Engine, check_gpu_supported
from engines.errors import EngineError

pytest_plugins = ["engine_fixtures"]

ROOT = Path(__file__).resolve().parents[2]
NO_TENSORRT = """
import importlib.abc, sys

class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorrt", "tensorrt_rtx", "tensorrt_libs", "tensorrt_rtx_libs"):
            raise ImportError(f"No module named {name!r} (hidden by the test)")
        return None
sys.meta_path.insert(0, _Block())
"""


def _run_live(tmp_path: Path, *args: str, hide_tensorrt: bool = False) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    if hide_tensorrt:
        (site / "sitecustomize.py").write_text(NO_TENSORRT)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": f"{site}:{ROOT}",
        "FOMM_LIVE_SETTINGS": str(tmp_path / "settings.json"),
    }
    cmd = [sys.executable, str(ROOT / "run_live.py"), "--no-remember", "--max-frames", "1", *args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)


def _one_error_line(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(errors) == 1 and errors[0].startswith("run_live: error: ") and needle in errors[0], proc.stderr


def test_backend_trt_without_tensorrt(tmp_path: Path) -> None:
    proc = _run_live(tmp_path, "--backend", "trt", "--onnx-dir", str(tmp_path), hide_tensorrt=True)
    _one_error_line(proc, "--backend trt: TensorRT is not installed")
    assert "pip install" in proc.stderr


def test_backend_trt_without_gpu(tmp_path: Path) -> None:
    trt = pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert trt.__version__
    proc = _run_live(tmp_path, "--backend", "trt", "--onnx-dir", str(tmp_path))
    _one_error_line(proc, "needs a CUDA GPU and none is visible to torch")


def test_engine_needs_a_gpu(trt, tiny_graph, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    path, spec, _ = tiny_graph
    engine = EngineCache(tmp_path, trt).get_or_build(path, spec)
    with pytest.raises(EngineError, match="running a TensorRT engine needs a CUDA GPU") as err:
        Engine(engine, spec, trt=trt)
    assert "\n" not in str(err.value)


def test_gpu_support_check(trt) -> None:
    if trt.is_rtx:
        with pytest.raises(
            EngineError, match=r"NVIDIA H200 \(compute capability 9.0\) is not supported by TensorRT-RTX"
        ) as err:
            check_gpu_supported(trt, "NVIDIA H200", (9, 0))  # TensorRT-RTX 1.7 refused it on an H200 (measured)
        assert "pip install tensorrt" in str(err.value) and "--backend torch-fast" in str(err.value)
        check_gpu_supported(trt, "NVIDIA GeForce RTX 4090", (8, 9))
        check_gpu_supported(trt, "a later Blackwell", (12, 3))  # its runtime: "... 12.1 >12.0"
        with pytest.raises(EngineError):
            check_gpu_supported(trt, "NVIDIA A40", (8, 7))
    else:
        check_gpu_supported(trt, "NVIDIA H200", (9, 0))  # standard TensorRT runs on data-centre GPUs


def test_turing_gets_an_engine_built_for_it(trt) -> None:
    from engines.engine import rtx_targets

    # TensorRT-RTX's portable default (8.0-12.x) leaves Turing out; elsewhere the default is kept
    assert rtx_targets(trt, (7, 5)) == (("SM75",) if trt.is_rtx else ())
    assert rtx_targets(trt, (8, 6)) == rtx_targets(trt, (12, 0)) == ()
    if trt.is_rtx:
        assert EngineConfig(compute_capabilities=rtx_targets(trt, (7, 5))).compute_capabilities == ("SM75",)


# --- on a GPU with TensorRT ----------------------------------------------------------------------------------

TOLERANCES = {"fp32": (1e-4, 1e-5), "fp16": (2e-2, 1e-3)}  # (max, mean) absolute difference to PyTorch


def _torch_outputs(net, graph: str, inputs):
    from tests.engines.graphs import AnimateGraph, KeypointsGraph

    module = KeypointsGraph(net) if graph == "keypoints" else AnimateGraph(net)
    with torch.no_grad():
        out = module.cuda()(*[t.cuda() for t in inputs])
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.gpu
@pytest.mark.trt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("graph", ["keypoints", "animate"])
def test_engine_matches_pytorch(trt, fomm_graphs, tmp_path: Path, graph: str, precision: str) -> None:
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    net, exported = fomm_graphs["demo"]
    path, spec, inputs = exported[graph]
    engine = Engine(EngineCache(tmp_path, trt).get_or_build(path, spec, EngineConfig(precision)), spec, trt=trt)
    out = engine({t.name: x.cuda() for t, x in zip(spec.inputs, inputs, strict=True)})
    ref = _torch_outputs(net, graph, inputs)
    max_tol, mean_tol = TOLERANCES[precision]
    for tensor, expected in zip(spec.outputs, ref, strict=True):
        diff = (out[tensor.name].float() - expected.float()).abs()
        assert diff.max() < max_tol and diff.mean() < mean_tol, (tensor.name, diff.max().item(), diff.mean().item())
    assert "Layers" in engine.inspect()
    net.cpu()


@pytest.mark.gpu
@pytest.mark.trt
def test_cuda_graph_replay(trt, fomm_graphs, tmp_path: Path) -> None:
    _net, exported = fomm_graphs["tiny"]
    path, spec, inputs = exported["animate"]
    engine = Engine(EngineCache(tmp_path, trt).get_or_build(path, spec), spec, trt=trt)
    feed = {t.name: x.cuda() for t, x in zip(spec.inputs, inputs, strict=True)}
    plain = engine(feed)["frame"].clone()
    engine.capture()
    other = {k: v.flip(-1) if k == "features" else v for k, v in feed.items()}
    replayed_other = engine(other)["frame"].clone()
    replayed = engine(feed)["frame"].clone()
    assert torch.equal(replayed, plain)  # replay reads the new inputs
    assert not torch.equal(replayed_other, plain)


@pytest.mark.gpu
@pytest.mark.trt
def test_trt_backend_matches_torch_backend(trt, fomm_graphs) -> None:
    from engines.backend import TrtBackend
    from live.backends import TorchBackend

    net, exported = fomm_graphs["demo"]
    onnx_dir = exported["animate"][0].parent
    source, driving = torch.rand(1, 3, 256, 256, device="cuda"), torch.rand(1, 3, 256, 256, device="cuda")
    trt_backend = TrtBackend(net, onnx_dir, "cuda", cuda_graph=True)
    torch_backend = TorchBackend(net, "cuda", channels_last=False)
    for backend in (trt_backend, torch_backend):
        backend.set_source(source)
    for _ in range(3):  # first frame runs plainly and captures; the next ones replay
        a = trt_backend.generate(trt_backend.keypoints(driving))
    b = torch_backend.generate(torch_backend.keypoints(driving))
    assert (a - b).abs().max() < 1e-3


@pytest.mark.parametrize("case", ["no tensorrt", "no onnx dir", "no gpu"])
def test_fomm_animate_backend_trt_errors(
    case: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    if case != "no tensorrt":
        request.getfixturevalue("trt")  # these cases need TensorRT installed: they get past the "missing" check
    import engines.trt as trt_module
    from fomm.cli import main

    args = ["animate", "--backend", "trt", "--max-frames", "1", "--output", str(tmp_path / "o.mp4"), "--quiet"]
    if case != "no onnx dir":
        args += ["--onnx-dir", str(tmp_path)]
    if case == "no tensorrt":

        def missing(prefer=None):
            raise EngineError("TensorRT is not installed; install TensorRT: pip install -e .[trt]")

        monkeypatch.setattr(trt_module, "load_tensorrt", missing)
        needle = "fomm: error: --backend trt: TensorRT is not installed"
    if case != "no tensorrt" and torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    monkeypatch.setenv("FOMM_CACHE_DIR", str(tmp_path / "cache"))
    if case != "no tensorrt":  # without --onnx-dir the export cache would be used: the missing GPU is said first
        needle = "fomm: error: --backend trt: running a TensorRT engine needs a CUDA GPU"
    assert main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and err[0].startswith(needle), err
    assert not (tmp_path / "o.mp4").exists()
    assert not (tmp_path / "cache").exists()


def test_an_engine_that_does_not_deserialise_says_why(trt, tmp_path: Path) -> None:
    """TensorRT's own first error, without its wrapping and source location, in one line (no GPU needed)."""
    from engines.engine import deserialise

    path = tmp_path / "garbage.engine"
    path.write_bytes(b"not an engine" * 100)
    with pytest.raises(EngineError) as err:
        deserialise(trt, path.read_bytes(), path)
    message = str(err.value)
    assert message.startswith(f"{trt.label} could not deserialise {str(path)!r}: ") and "\n" not in message
    assert "serialization" in message.lower() and "Error Code" not in message and ".cpp" not in message, message
    assert message.endswith("; delete it and let it rebuild")
