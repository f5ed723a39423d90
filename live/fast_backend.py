"""The GPU fast path without TensorRT: fp16 weights, the Triton fused warps and CUDA-graph replay.

:class:`FastTorchBackend` is a :class:`~live.backends.TorchBackend` whose per-frame calls (``keypoints`` and
``generate``) run as captured CUDA graphs: each call copies its inputs into static buffers and replays one
graph, so a frame costs a handful of launches instead of hundreds. Per-avatar work (``set_source``) stays
eager; it writes the avatar's keypoints and encoder features into the buffers the captured graphs read, so a
new avatar of the same size needs no recapture. A change of shapes or dtypes, or an avatar whose encoding
cannot be copied in place, drops the graph and the next call captures again.

Precision: convolutions in fp16 with fp16 weights; autocast keeps softmax, exp and the other precision-
sensitive ops in fp32, normalisation layers keep fp32 parameters, and the Triton warps sample at float32
positions with float32 weights (their inputs are float32 motion fields), multiplying the occlusion in float32.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

import fomm
from fomm.geometry import use_warp_impl

from .backends import BackendError, TorchBackend

__all__ = ["CudaGraphs", "FastTorchBackend", "GraphRunner", "GraphSystem"]

logger = logging.getLogger(__name__)

_NORMS = (nn.BatchNorm2d, nn.BatchNorm1d, nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm)


class GraphSystem(Protocol):
    """How graphs are made (CUDA graphs; tests pass a CPU stand-in with the same contract)."""

    def warmup(self, fn: Callable[..., Any], inputs: Sequence[torch.Tensor], iterations: int) -> None:
        """Run ``fn`` a few times before capture (lazy initialisation, kernel compilation, autotuning)."""
        ...

    def capture(self, fn: Callable[..., Any], inputs: Sequence[torch.Tensor]) -> tuple[Any, Any]:
        """Capture ``fn(*inputs)``: return ``(graph, outputs)``; ``graph.replay()`` recomputes ``outputs`` in
        place from the current contents of ``inputs``."""
        ...


class CudaGraphs:
    """:class:`GraphSystem` of ``torch.cuda.CUDAGraph`` (warm-up on a side stream, as torch requires)."""

    def warmup(self, fn: Callable[..., Any], inputs: Sequence[torch.Tensor], iterations: int) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(iterations):
                fn(*inputs)
        torch.cuda.current_stream().wait_stream(side)

    def capture(self, fn: Callable[..., Any], inputs: Sequence[torch.Tensor]) -> tuple[Any, Any]:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = fn(*inputs)
        return graph, outputs


def _signature(tensors: Sequence[torch.Tensor]) -> tuple[tuple[Any, ...], ...]:
    """What a captured graph's static inputs (and an avatar's cached tensors) must match to take new values by
    ``copy_``: shape, dtype and device. Not the strides: ``copy_`` lays any view out as the buffer is, so the
    live loop's frames (views with a batch stride of 3) and its motion math's keypoints (views) replay the graph
    (and the code compiled for its buffers) instead of capturing and compiling again."""
    return tuple((tuple(t.shape), t.dtype, t.device) for t in tensors)


def _why(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 300 characters), for a warning that says why once."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def _flatten(outputs: Any) -> list[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for item in outputs for t in _flatten(item)]


@dataclass
class _Captured:
    signature: tuple[tuple[Any, ...], ...]
    inputs: list[torch.Tensor]
    graph: Any
    outputs: Any


class GraphRunner:
    """Calls ``fn(*tensors)`` through a captured graph: captured on the first call and whenever the inputs'
    shapes, dtypes or devices change, or after :meth:`invalidate`; replayed otherwise (inputs of other strides
    are copied into the static buffers as they are laid out).

    Returns fresh tensors (clones of the static outputs), so results stay valid after the next replay. If a
    capture fails, the runner logs why once and calls ``fn`` eagerly from then on.
    """

    def __init__(self, fn: Callable[..., Any], graphs: GraphSystem, *, name: str, warmup: int = 3) -> None:
        self.fn = fn
        self.graphs = graphs
        self.name = name
        self.warmup = warmup
        self.captures = 0
        self.replays = 0
        self.failed: str | None = None
        self._captured: _Captured | None = None

    def invalidate(self) -> None:
        """Drop the graph (what it reads is gone); the next call captures again."""
        self._captured = None

    @property
    def captured(self) -> bool:
        return self._captured is not None

    def __call__(self, *tensors: torch.Tensor) -> Any:
        if self.failed is not None:
            return self.fn(*tensors)
        signature = _signature(tensors)
        captured = self._captured
        if captured is None or captured.signature != signature:
            captured = self._capture(tensors, signature)
            if captured is None:
                return self.fn(*tensors)
        else:
            for static, value in zip(captured.inputs, tensors, strict=True):
                static.copy_(value)
            captured.graph.replay()
            self.replays += 1
        return _clone(captured.outputs)

    def _capture(self, tensors: Sequence[torch.Tensor], signature: tuple[tuple[Any, ...], ...]) -> _Captured | None:
        self._captured = None
        inputs = [t.clone() for t in tensors]
        try:
            self.graphs.warmup(self.fn, inputs, self.warmup)
            graph, outputs = self.graphs.capture(self.fn, inputs)
        except Exception as exc:  # a capture-unsafe op, out of memory...: run eagerly, say so once
            self.failed = _why(exc)
            logger.warning("CUDA graph capture of %s failed (%s); running it eagerly", self.name, self.failed)
            return None
        self.captures += 1
        # capture records the work without running it: replay once so the outputs hold this call's results
        graph.replay()
        self._captured = _Captured(signature, inputs, graph, outputs)
        return self._captured


def _clone(outputs: Any) -> Any:
    if isinstance(outputs, torch.Tensor):
        return outputs.clone()
    if isinstance(outputs, tuple) and hasattr(outputs, "_fields"):  # NamedTuple (Keypoints)
        return type(outputs)(*(_clone(o) for o in outputs))
    return type(outputs)(_clone(o) for o in outputs)


def half_model(model: fomm.Fomm, dtype: torch.dtype) -> fomm.Fomm:
    """Weights in ``dtype`` except normalisation layers (fp32 parameters and statistics)."""
    model = model.to(dtype)
    for module in model.modules():
        if isinstance(module, _NORMS):
            module.float()
    return model


class _Compiled:
    """``torch.compile(fn)``, falling back to ``fn`` itself (with a warning, once) when compiling fails: no C
    compiler for Triton, an op Inductor cannot lower, ... The networks then run uncompiled but still in graphs."""

    def __init__(self, fn: Callable[..., Any], mode: str | None, what: str) -> None:
        self.fn = fn
        self.compiled = torch.compile(fn, dynamic=False, mode=mode)
        self.what = what
        self.failed: str | None = None

    def __call__(self, *args: Any) -> Any:
        if self.failed is None:
            try:
                return self.compiled(*args)
            except Exception as exc:  # torch._dynamo's and Inductor's errors have no common public base
                self.failed = _why(exc)
                logger.warning("torch.compile of %s failed (%s); it runs uncompiled", self.what, self.failed)
        return self.fn(*args)


class FastTorchBackend(TorchBackend):
    """The torch GPU fast path: half-precision weights + autocast, Triton warps, CUDA graphs.

    Args:
        model: the networks (moved to ``device``, converted in place).
        device: a CUDA device (the CPU only with ``dtype='fp32'`` or ``'bf16'``, for tests, and without
            CUDA graphs unless ``graphs`` is given).
        dtype: ``fp16`` (default), ``bf16`` or ``fp32`` (fp32 weights, no autocast).
        triton: run the fused warps as Triton kernels when triton is installed (else the reference, with a
            warning).
        cuda_graph: capture and replay the per-frame calls.
        graphs: the graph system (default: CUDA graphs).
        compile: compile the per-frame networks with ``torch.compile`` (Inductor: its own fused kernels, the
            warps included, so ``triton`` is ignored); a string is its ``mode`` (e.g.
            ``"max-autotune-no-cudagraphs"``; not one with CUDA graphs of its own). The first frame waits for
            the compilation (vox-256: 21-27 s on an H200 machine's 16 cores). Per-avatar work stays eager.
    """

    def __init__(
        self,
        model: fomm.Fomm,
        device: torch.device | str = "cuda",
        dtype: str = "fp16",
        *,
        triton: bool = True,
        cuda_graph: bool = True,
        graphs: GraphSystem | None = None,
        compile: bool | str = False,
    ) -> None:
        device = torch.device(device)
        super().__init__(model, device, dtype)
        if self._autocast is not None:
            self.model = half_model(self.model, self._autocast)
        self._warp_impl: Any = None
        # the per-frame networks: compiled, or the modules themselves
        self._kp_net: Callable[[torch.Tensor], fomm.Keypoints] = self.model.kp_detector
        self._animate: Callable[..., torch.Tensor] = self.model.generator.animate
        if compile:
            logger.info("torch.compile: the first frame waits while the per-frame networks compile (vox-256: "
                        "about 25 s on 16 cores)")  # fmt: skip
            mode = compile if isinstance(compile, str) else None
            self._kp_net = _Compiled(self.model.kp_detector, mode, "the keypoint detector")
            self._animate = _Compiled(self.model.generator.animate, mode, "the generator")
        elif triton:
            from fomm.kernels import TRITON_INSTALL_HINT, TritonWarp, triton_available

            if triton_available():
                self._warp_impl = TritonWarp()
            else:
                logger.warning("triton is not installed: the fused warps run the PyTorch reference; %s",
                               TRITON_INSTALL_HINT)  # fmt: skip
        if cuda_graph and graphs is None:
            if device.type != "cuda":
                raise BackendError(f"CUDA graphs need a CUDA device, not {device}; pass cuda_graph=False")
            graphs = CudaGraphs()
        self._keypoints_graph = GraphRunner(self._keypoints_eager, graphs, name="keypoints") if cuda_graph else None
        self._generate_graph = GraphRunner(self._generate_eager, graphs, name="generate") if cuda_graph else None
        parts = [dtype, "compiled" if compile else "triton" if self._warp_impl is not None else "torch-warp"]
        if cuda_graph:
            parts.append("graph")
        self.name = f"torch-{device.type}-" + "+".join(parts)

    def _context(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(self._precision())
        if self._warp_impl is not None:
            stack.enter_context(use_warp_impl(self._warp_impl))
        return stack

    # --- eager bodies (what the graphs capture) -------------------------------------------------------------

    def _keypoints_eager(self, image: torch.Tensor) -> fomm.Keypoints:
        with self._context():
            return self._float(self._kp_net(image))

    def _generate_eager(self, value: torch.Tensor, jacobian: torch.Tensor) -> torch.Tensor:
        assert self._encoding is not None and self._kp_source is not None
        with self._context():
            kp = fomm.Keypoints(value, jacobian)
            return self._animate(self._encoding, self._kp_source, kp).float()

    # --- the backend interface ------------------------------------------------------------------------------

    @torch.inference_mode()
    def set_source(self, source: torch.Tensor) -> fomm.Keypoints:
        with self._context():
            kp = self._float(self.model.kp_detector(source))
            encoding = self.model.generator.encode_source(source)
        if not self._store_in_place(kp, encoding):
            self._kp_source, self._encoding = kp, encoding
            if self._generate_graph is not None:
                self._generate_graph.invalidate()  # the graph reads the old tensors
        assert self._kp_source is not None
        return fomm.Keypoints(self._kp_source.value.clone(), self._kp_source.jacobian.clone())

    def _store_in_place(self, kp: fomm.Keypoints, encoding: fomm.SourceEncoding) -> bool:
        """Copy a new avatar into the tensors a captured graph reads; ``False`` when they do not fit."""
        if self._kp_source is None or self._encoding is None:
            return False
        new = [*kp, *encoding]
        old = [*self._kp_source, *self._encoding]
        if _signature(new) != _signature(old):
            return False
        for target, value in zip(old, new, strict=True):
            target.copy_(value)
        return True

    @torch.inference_mode()
    def keypoints(self, image: torch.Tensor) -> fomm.Keypoints:
        if self._keypoints_graph is None:
            return self._keypoints_eager(image)
        return self._keypoints_graph(image)

    @torch.inference_mode()
    def generate(self, kp_driving: fomm.Keypoints) -> torch.Tensor:
        if self._encoding is None or self._kp_source is None:
            raise BackendError("set_source() must run before generate()")
        value, jacobian = kp_driving.value.float(), kp_driving.jacobian.float()
        if self._generate_graph is None:
            return self._generate_eager(value, jacobian)
        return self._generate_graph(value, jacobian)

    @property
    def graph_stats(self) -> dict[str, int]:
        """Captures and replays so far, per graph (for tests and benchmarks)."""
        stats: dict[str, int] = {}
        for runner in (self._keypoints_graph, self._generate_graph):
            if runner is not None:
                stats[f"{runner.name}_captures"] = runner.captures
                stats[f"{runner.name}_replays"] = runner.replays
        return stats
