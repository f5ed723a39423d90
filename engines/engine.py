"""Run a TensorRT engine on torch-owned CUDA buffers and torch's current stream (no pycuda).

:class:`Engine` deserialises an engine, allocates every input and output as a torch tensor named as in its
:class:`~engines.spec.GraphSpec`, binds them with ``set_tensor_address`` and runs ``execute_async_v3`` on
``torch.cuda.current_stream()``. :meth:`Engine.capture` records the run in a CUDA graph; later calls replay it.
Outputs are read by name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from engines.errors import EngineError
from engines.spec import GraphSpec
from engines.trt import RTX_SUPPORTED_CAPABILITIES, LogBridge, TensorRT, load_tensorrt, rtx_runs_on

__all__ = ["RTX_SUPPORTED_CAPABILITIES", "Engine", "check_gpu_supported", "deserialise", "require_cuda", "rtx_targets"]

logger = logging.getLogger(__name__)


def require_cuda() -> None:
    """:class:`EngineError` unless torch sees a CUDA GPU (TensorRT deserialises and runs engines only there)."""
    if not torch.cuda.is_available():
        raise EngineError(
            "running a TensorRT engine needs a CUDA GPU and none is visible to torch "
            "(install a CUDA build of torch on a GPU machine, or use --backend torch)"
        )


def check_gpu_supported(trt: TensorRT, name: str, capability: tuple[int, int]) -> None:
    """:class:`EngineError` when the flavour cannot run on this GPU (TensorRT-RTX: RTX GPUs only)."""
    if trt.is_rtx and not rtx_runs_on(capability):
        supported = ", ".join(f"{a}.{b}" for a, b in RTX_SUPPORTED_CAPABILITIES)
        raise EngineError(
            f"{name} (compute capability {capability[0]}.{capability[1]}) is not supported by {trt.label} "
            f"(it runs on {supported} and later); install standard TensorRT for this GPU (pip install tensorrt), "
            "or use --backend torch-fast"
        )


def rtx_targets(trt: TensorRT, capability: tuple[int, int]) -> tuple[str, ...]:
    """TensorRT-RTX build targets for an engine to run on this GPU: its portable default (8.0-12.x) leaves
    Turing (7.5) out, so a Turing GPU gets an engine built for it alone; ``()`` elsewhere (the default)."""
    return ("SM75",) if trt.is_rtx and tuple(capability) == (7, 5) else ()


def deserialise(trt: TensorRT, blob: bytes, path: Path) -> tuple[Any, Any, LogBridge]:
    """``(runtime, engine, log)`` of the engine bytes ``blob`` read from ``path``; the runtime and its log must
    live as long as the engine.

    Raises:
        EngineError: TensorRT could not deserialise it, with TensorRT's own first error (wrong magic number,
            another TensorRT version, a GPU it cannot run on, ...).
    """
    log = LogBridge(trt)
    runtime = trt.module.Runtime(log.logger)
    engine = runtime.deserialize_cuda_engine(blob)
    if engine is None:
        reason = log.first_error() or "corrupt, or built by another TensorRT version or for another GPU"
        raise EngineError(f"{trt.label} could not deserialise {str(path)!r}: {reason}; delete it and let it rebuild")
    return runtime, engine, log


_TORCH_DTYPES = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT32": torch.int32}
_TORCH_DTYPES |= {"INT64": torch.int64, "BOOL": torch.bool, "UINT8": torch.uint8, "INT8": torch.int8}


def _torch_dtype(trt_dtype: Any) -> torch.dtype:
    name = str(trt_dtype).rsplit(".", 1)[-1]
    if name not in _TORCH_DTYPES:
        raise EngineError(f"engine tensor type {name} has no torch equivalent here")
    return _TORCH_DTYPES[name]


class Engine:
    """A deserialised engine with its I/O buffers.

    Args:
        path: the engine file (from :class:`engines.cache.EngineCache`).
        spec: its graph's I/O; the engine must have exactly these names.
        batch: batch size of the buffers (graphs with a dynamic batch axis; 1 otherwise).
        trt: the TensorRT flavour (the installed one by default).
        device: the CUDA device (torch's current one by default).

    Raises:
        EngineError: no CUDA GPU, a GPU the flavour does not support, or an engine file that does not
            deserialise or does not have the spec's tensors.
    """

    def __init__(
        self,
        path: str | Path,
        spec: GraphSpec,
        *,
        batch: int = 1,
        trt: TensorRT | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        self.trt = trt or load_tensorrt()
        require_cuda()
        self.device = torch.device(device) if device is not None else torch.device("cuda", torch.cuda.current_device())
        check_gpu_supported(
            self.trt, torch.cuda.get_device_name(self.device), torch.cuda.get_device_capability(self.device)
        )
        self.path = Path(path)
        self.spec = spec
        with torch.cuda.device(self.device):
            self._runtime, self.engine, self._log = deserialise(self.trt, self.path.read_bytes(), self.path)
            self.context = self.engine.create_execution_context()
        names = {self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)}
        expected = {t.name for t in (*spec.inputs, *spec.outputs)}
        if names != expected:
            raise EngineError(f"engine {str(self.path)!r} has tensors {sorted(names)}, spec expects {sorted(expected)}")
        self.buffers: dict[str, torch.Tensor] = {}
        self._set: set[str] = set()  # inputs whose buffers hold values
        for tensor in spec.inputs:
            self.context.set_input_shape(tensor.name, tensor.with_batch(batch))
        for tensor in (*spec.inputs, *spec.outputs):
            shape = tuple(self.context.get_tensor_shape(tensor.name))
            dtype = _torch_dtype(self.engine.get_tensor_dtype(tensor.name))
            self.buffers[tensor.name] = torch.empty(shape, dtype=dtype, device=self.device)
            self.context.set_tensor_address(tensor.name, self.buffers[tensor.name].data_ptr())
        self._graph: torch.cuda.CUDAGraph | None = None

    def _execute(self) -> None:
        stream = torch.cuda.current_stream(self.device).cuda_stream
        if not self.context.execute_async_v3(stream):
            raise EngineError(
                f"{self.trt.label} failed to run {self.path.name}: {self._log.first_error() or 'see the log'}"
            )

    def capture(self) -> None:
        """Record the engine's run in a CUDA graph (after one plain run, as TensorRT requires); later
        :meth:`__call__` copies inputs and replays it."""
        self._execute()
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._execute()
        self._graph = graph

    @property
    def captured(self) -> bool:
        return self._graph is not None

    def __call__(self, feed: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Copy ``feed`` (by name) into the input buffers, run, and return the output buffers by name. Inputs
        set earlier (:meth:`set_inputs`, e.g. once per avatar) and not in ``feed`` keep their values.

        The returned tensors are the engine's buffers: the next call overwrites them (clone to keep).
        """
        self.set_inputs(feed)
        missing = [t.name for t in self.spec.inputs if t.name not in self._set]
        if missing:
            raise EngineError(f"engine {self.spec.name!r}: missing inputs {missing}")
        if self._graph is not None:
            self._graph.replay()
        else:
            self._execute()
        return {t.name: self.buffers[t.name] for t in self.spec.outputs}

    def set_inputs(self, feed: Mapping[str, torch.Tensor]) -> None:
        """Copy ``feed`` into the input buffers by name (they keep these values until set again)."""
        inputs = {t.name for t in self.spec.inputs}
        unknown = sorted(set(feed) - inputs)
        if unknown:
            raise EngineError(f"engine {self.spec.name!r}: no inputs named {unknown}")
        for name, value in feed.items():
            self.buffers[name].copy_(value)
        self._set.update(feed)

    def inspect(self) -> str:
        """The engine's layers as TensorRT's inspector reports them (JSON)."""
        inspector = self.engine.create_engine_inspector()
        inspector.execution_context = self.context
        return str(inspector.get_engine_information(self.trt.module.LayerInformationFormat.JSON))
