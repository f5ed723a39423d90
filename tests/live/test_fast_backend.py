"""The GPU fast path's logic on the CPU (graph capture and replay with a stand-in graph system, recapture
rules, half-precision weights, Triton warps under the interpreter), and on CUDA (``gpu``: real graphs)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
from torch import nn

import fomm
from fomm.kernels import TritonWarp, triton_available
from live.backends import BackendError, TorchBackend
from live.fast_backend import FastTorchBackend, GraphRunner, half_model


def _flatten(outputs: Any) -> list[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for item in outputs for t in _flatten(item)]


class FakeGraph:
    def __init__(self, fn: Callable[..., Any], inputs: Sequence[torch.Tensor], outputs: Any, reads: list[torch.Tensor]):
        self.fn, self.inputs, self.outputs = fn, inputs, outputs
        self.pointers = [t.data_ptr() for t in reads]
        self.reads_now: Callable[[], list[torch.Tensor]] | None = None

    def replay(self) -> None:
        if self.reads_now is not None:  # a real graph reads the memory it was captured with
            assert [t.data_ptr() for t in self.reads_now()] == self.pointers, "stale graph replayed"
        for target, value in zip(_flatten(self.outputs), _flatten(self.fn(*self.inputs)), strict=True):
            target.copy_(value)


class FakeGraphs:
    """CPU stand-in for CUDA graphs with their contract: capture records without computing (outputs hold
    garbage until a replay), replay recomputes the outputs in place from the static inputs, and a graph
    must not outlive the tensors it reads (``reads``: what the backend's graph reads besides its inputs)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.reads: Callable[[], list[torch.Tensor]] = list
        self.warmups = 0
        self.graphs: list[FakeGraph] = []

    def warmup(self, fn: Callable[..., Any], inputs: Sequence[torch.Tensor], iterations: int) -> None:
        self.warmups += iterations
        fn(*inputs)  # once is enough to exercise it (a CUDA warm-up needs several)

    def capture(self, fn: Callable[..., Any], inputs: Sequence[torch.Tensor]) -> tuple[Any, Any]:
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        outputs = fn(*inputs)
        for t in _flatten(outputs):
            t.fill_(float("nan"))
        graph = FakeGraph(fn, inputs, outputs, self.reads())
        graph.reads_now = self.reads
        self.graphs.append(graph)
        return graph, outputs


def backend_reads(backend: FastTorchBackend) -> Callable[[], list[torch.Tensor]]:
    def reads() -> list[torch.Tensor]:
        if backend._kp_source is None or backend._encoding is None:
            return []
        return [*backend._kp_source, *backend._encoding]

    return reads


@pytest.fixture
def model(tiny: fomm.FommConfig) -> fomm.Fomm:
    return fomm.build_fomm(tiny).eval()


def make_pair(model: fomm.Fomm, graphs: FakeGraphs, **kwargs: Any) -> tuple[FastTorchBackend, TorchBackend]:
    reference = TorchBackend(fomm.build_fomm(model.config), "cpu")
    reference.model.load_state_dict(model.state_dict())
    fast = FastTorchBackend(model, "cpu", kwargs.pop("dtype", "fp32"), graphs=graphs, **kwargs)
    graphs.reads = backend_reads(fast)
    return fast, reference


def images(n: int, size: int = 64, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 3, size, size, generator=g) for _ in range(n)]


def frames_and_warnings(
    fast: FastTorchBackend, reference: TorchBackend, caplog: pytest.LogCaptureFixture, *, frames: int, seed: int
) -> list[str]:
    """Run ``frames`` frames of one avatar through both backends, asserting equal keypoints and frames; the
    warnings logged on the way."""
    source, frame = images(2, seed=seed)
    fast.set_source(source)
    reference.set_source(source)
    with caplog.at_level(logging.WARNING, logger="live.fast_backend"):
        for _ in range(frames):
            kp = fast.keypoints(frame)
            torch.testing.assert_close(kp, reference.keypoints(frame), atol=1e-6, rtol=0)
            torch.testing.assert_close(fast.generate(kp), reference.generate(kp), atol=1e-6, rtol=0)
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_replayed_steps_equal_eager_steps_and_capture_once(model):
    graphs = FakeGraphs()
    fast, reference = make_pair(model, graphs, triton=False)
    source, *driving = images(5)
    torch.testing.assert_close(fast.set_source(source), reference.set_source(source))
    results = []
    for frame in driving:
        kp = fast.keypoints(frame)
        torch.testing.assert_close(kp, reference.keypoints(frame), atol=1e-6, rtol=0)
        out = fast.generate(kp)
        torch.testing.assert_close(out, reference.generate(kp), atol=1e-6, rtol=0)
        results.append(out)
    assert fast.graph_stats == {"keypoints_captures": 1, "keypoints_replays": 3, "generate_captures": 1,
                                "generate_replays": 3}  # fmt: skip
    # results are fresh tensors: later replays do not overwrite them
    assert not torch.equal(results[0], results[1])
    torch.testing.assert_close(results[0], reference.generate(reference.keypoints(driving[0])), atol=1e-6, rtol=0)


def test_new_avatar_of_the_same_size_reuses_the_graph_without_going_stale(model):
    graphs = FakeGraphs()
    fast, reference = make_pair(model, graphs, triton=False)
    first, second, frame = images(3, seed=1)
    fast.set_source(first)
    kp = fast.keypoints(frame)
    fast.generate(kp)
    kp_second = fast.set_source(second)  # copied into the tensors the graph reads
    torch.testing.assert_close(kp_second, reference.set_source(second))
    torch.testing.assert_close(fast.generate(kp), reference.generate(kp), atol=1e-6, rtol=0)
    assert fast.graph_stats["generate_captures"] == 1 and fast.graph_stats["generate_replays"] == 1
    # the returned source keypoints are the caller's: changing them does not touch the graph's copy
    with torch.inference_mode():
        kp_second.value.zero_()
    torch.testing.assert_close(fast.generate(kp), reference.generate(kp), atol=1e-6, rtol=0)


@pytest.mark.slow
def test_compiled_networks_replay_like_eager_ones(model):
    graphs = FakeGraphs()
    fast, reference = make_pair(model, graphs, compile=True)
    assert fast.name == "torch-cpu-fp32+compiled+graph"
    source, *driving = images(3, seed=3)
    torch.testing.assert_close(fast.set_source(source), reference.set_source(source))
    for frame in driving:
        kp = fast.keypoints(frame)
        torch.testing.assert_close(kp, reference.keypoints(frame), atol=1e-5, rtol=0)
        torch.testing.assert_close(fast.generate(kp), reference.generate(kp), atol=1e-5, rtol=0)
    assert fast.graph_stats["generate_captures"] == 1 and fast.graph_stats["generate_replays"] == 1


def test_frames_and_keypoints_of_other_layouts_reuse_the_graphs(model):
    """The live loop's frames (``permute`` + ``unsqueeze`` of an HWC array) and its motion math's keypoints
    (views) have other strides than the first call's; they must not capture (or, compiled, compile) again."""
    graphs = FakeGraphs()
    fast, reference = make_pair(model, graphs, triton=False)
    source, frame = images(2, seed=4)
    fast.set_source(source)
    reference.set_source(source)
    fast.generate(fast.keypoints(frame))
    hwc = frame[0].permute(1, 2, 0).contiguous()
    live_frame = hwc.permute(2, 0, 1).unsqueeze(0)  # what live.processor.to_tensor makes: batch stride 3
    assert live_frame.stride() != frame.stride()
    kp = fast.keypoints(live_frame)
    torch.testing.assert_close(kp, reference.keypoints(frame), atol=1e-6, rtol=0)
    jacobian = kp.jacobian.transpose(-1, -2).contiguous().transpose(-1, -2)  # same values, other strides
    out = fast.generate(fomm.Keypoints(kp.value, jacobian))
    torch.testing.assert_close(out, reference.generate(kp), atol=1e-6, rtol=0)
    assert fast.graph_stats == {"keypoints_captures": 1, "keypoints_replays": 1, "generate_captures": 1,
                                "generate_replays": 1}  # fmt: skip


def test_a_failed_compilation_runs_the_networks_uncompiled(model, monkeypatch, caplog):
    def broken_compile(fn, **kwargs):
        def compiled(*args):
            raise RuntimeError("InductorError: no working C compiler found\n(details)")

        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    fast, reference = make_pair(model, FakeGraphs(), compile=True)
    warnings = frames_and_warnings(fast, reference, caplog, frames=2, seed=7)
    assert len(warnings) == 2, warnings  # once per network, not per frame
    assert (
        "torch.compile of the keypoint detector failed (RuntimeError: InductorError: no working C compiler"
        in (warnings[0])
    )
    assert fast.graph_stats["generate_captures"] == 1  # still in graphs


def test_changed_shapes_recapture(model):
    graphs = FakeGraphs()
    fast, reference = make_pair(model, graphs, triton=False)
    small, large = images(1, 64)[0], images(1, 96)[0]
    fast.set_source(small)
    fast.generate(fast.keypoints(small))
    kp = fast.keypoints(large)  # a new input shape: a new keypoint graph
    torch.testing.assert_close(kp, reference.keypoints(large), atol=1e-6, rtol=0)
    assert fast.graph_stats["keypoints_captures"] == 2
    fast.set_source(large)  # an encoding of another shape: the generate graph must go
    reference.set_source(large)
    torch.testing.assert_close(fast.generate(kp), reference.generate(kp), atol=1e-6, rtol=0)
    assert fast.graph_stats["generate_captures"] == 2
    assert fast.graph_stats["generate_replays"] == 0


def test_failed_capture_runs_eagerly_and_says_why_once(model, caplog):
    fast, reference = make_pair(model, FakeGraphs(fail=True), triton=False)
    failures = [m for m in frames_and_warnings(fast, reference, caplog, frames=3, seed=2) if "capture of" in m]
    assert len(failures) == 2  # one per graph, not one per frame
    assert "operation not permitted when stream is capturing" in failures[0]
    assert fast.graph_stats["keypoints_captures"] == 0


def test_generate_before_set_source_is_an_error(model):
    fast, _ = make_pair(model, FakeGraphs(), triton=False)
    with pytest.raises(BackendError, match="set_source"):
        fast.generate(fomm.Keypoints(torch.zeros(1, 4, 2), torch.eye(2).expand(1, 4, 2, 2)))


def test_cuda_graphs_need_a_cuda_device(model):
    with pytest.raises(BackendError, match="CUDA graphs need a CUDA device"):
        FastTorchBackend(model, "cpu", "fp32", triton=False)
    with pytest.raises(BackendError, match="fp16 needs a CUDA device"):
        FastTorchBackend(model, "cpu", "fp16", cuda_graph=False)


def test_graph_runner_outputs_and_inputs_are_decoupled():
    calls = []

    def double(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return x * 2

    runner = GraphRunner(double, FakeGraphs(), name="double", warmup=2)
    a, b = torch.ones(3), torch.full((3,), 5.0)
    out_a = runner(a)
    out_b = runner(b)
    assert out_a.tolist() == [2.0] * 3 and out_b.tolist() == [10.0] * 3
    a.fill_(100)  # the caller's input is not the static buffer
    assert runner(torch.ones(3)).tolist() == [2.0] * 3
    assert (runner.captures, runner.replays) == (1, 2)
    runner.invalidate()
    assert not runner.captured and runner(torch.ones(3)).tolist() == [2.0] * 3 and runner.captures == 2


def test_half_model_keeps_norms_in_fp32(model):
    half = half_model(model, torch.bfloat16)
    for module in half.modules():
        params = list(module.parameters(recurse=False))
        if not params:
            continue
        expected = torch.float32 if isinstance(module, nn.BatchNorm2d) else torch.bfloat16
        assert all(p.dtype == expected for p in params), type(module).__name__
    bn = next(m for m in half.modules() if isinstance(m, nn.BatchNorm2d))
    assert bn.running_var.dtype == torch.float32


def test_bf16_weights_run_close_to_fp32(tiny):
    """The half-weight conversion runs end to end (bf16: the CPU's half type) and stays near fp32."""
    model = fomm.build_fomm(tiny).eval()
    fast, reference = make_pair(model, FakeGraphs(), dtype="bf16", triton=False)
    source, frame = images(2, seed=3)
    fast.set_source(source)
    reference.set_source(source)
    kp = reference.keypoints(frame)
    out = fast.generate(kp)
    assert out.dtype == torch.float32
    assert (out - reference.generate(kp)).abs().max() < 0.05
    assert fast.name == "torch-cpu-bf16+torch-warp+graph"


@pytest.mark.skipif(not triton_available(), reason="needs triton (pip install 'fomm-live[gpu]')")
def test_triton_warps_run_inside_the_graphs(model, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    calls: list[str] = []
    monkeypatch.setattr(TritonWarp, "warp_multi", _spy(TritonWarp.warp_multi, calls, "multi"))
    monkeypatch.setattr(TritonWarp, "warp_occluded", _spy(TritonWarp.warp_occluded, calls, "occluded"))
    fast, reference = make_pair(model, FakeGraphs())
    assert fast.name == "torch-cpu-fp32+triton+graph"
    source, frame = images(2, seed=4)
    fast.set_source(source)
    reference.set_source(source)
    kp = reference.keypoints(frame)
    torch.testing.assert_close(fast.generate(kp), reference.generate(kp), atol=1e-5, rtol=0)
    assert "multi" in calls and "occluded" in calls


def _spy(method: Callable[..., Any], calls: list[str], name: str) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return method(*args, **kwargs)

    return wrapped


# --- CUDA ---------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("dtype", "compiled"), [("fp32", False), ("fp16", False), pytest.param("fp16", True, marks=pytest.mark.slow)]
)
def test_cuda_graph_replay_matches_eager(tiny, dtype, compiled, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model = fomm.build_fomm(tiny).eval()
    reference = TorchBackend(fomm.build_fomm(tiny), "cuda")
    reference.model.load_state_dict(model.state_dict())
    fast = FastTorchBackend(model, "cuda", dtype, compile=compiled)
    assert fast.name == f"torch-cuda-{dtype}+{'compiled' if compiled else 'triton'}+graph"
    atol = 1e-5 if dtype == "fp32" else 2e-2
    first, second, *driving = (t.cuda() for t in images(6, seed=5))
    for source in (first, second):  # the second avatar reuses the captured graph
        fast.set_source(source)
        reference.set_source(source)
        for frame in driving:
            kp = reference.keypoints(frame)
            torch.testing.assert_close(fast.keypoints(frame), kp, atol=atol * 10, rtol=0)
            torch.testing.assert_close(fast.generate(kp), reference.generate(kp), atol=atol, rtol=0)
    stats = fast.graph_stats
    assert stats["generate_captures"] == 1 and stats["generate_replays"] == 2 * len(driving) - 1
    assert stats["keypoints_captures"] == 1


def test_torch_fast_backend_is_a_live_choice_that_needs_cuda():
    from live.config import LiveConfig, LiveConfigError

    with pytest.raises(LiveConfigError, match=r"torch-fast .* needs --device cuda"):
        LiveConfig(backend="torch-fast", device="cpu")
    with pytest.raises(LiveConfigError, match="torch-fast runs fp32 or fp16"):
        LiveConfig(backend="torch-fast", device="cuda", dtype="bf16")
    assert LiveConfig(backend="torch-fast", device="cuda", dtype="fp16").backend == "torch-fast"


def test_compile_is_a_torch_fast_option(capsys):
    from live.cli import main
    from live.config import LiveConfig, LiveConfigError

    assert LiveConfig(backend="torch-fast", device="cuda", compile=True).compile
    with pytest.raises(LiveConfigError, match="--compile is for --backend torch-fast; --backend onnx does not"):
        LiveConfig(backend="onnx", compile=True)
    assert main(["--compile", "--no-remember"]) == 2  # refused before any model loads
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--compile is for --backend torch-fast; --backend torch does not use it" in err[0], err


def test_load_backend_passes_compile_to_the_fast_backend(monkeypatch):
    import live.app
    import live.fast_backend
    from live.app import load_backend
    from live.config import LiveConfig

    made = {}

    class Recorder:
        def __init__(self, model, device, dtype, *, compile=False):
            made.update(device=str(device), dtype=dtype, compile=compile)

    monkeypatch.setattr(live.fast_backend, "FastTorchBackend", Recorder)
    monkeypatch.setattr(live.app, "device_problem", lambda device: None)  # no CUDA here: the wiring alone
    for compiled in (False, True):
        config = LiveConfig(
            backend="torch-fast", device="cuda", dtype="fp16", model_config="tiny-256", compile=compiled
        )
        backend, _described, _untrained = load_backend(config)
        assert isinstance(backend, Recorder) and made == {"device": "cuda", "dtype": "fp16", "compile": compiled}
