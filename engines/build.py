"""Build a TensorRT engine from an exported ONNX graph (either flavour; see :mod:`engines.trt`).

Explicit-batch (the only kind in TensorRT 10+/RTX), strongly typed networks: FP32 as exported, FP16 through
:func:`engines.precision.to_mixed_fp16` (warps, softmax and sigmoid heads stay FP32). Parser errors are
reported per node; a timing cache is reused across builds where the flavour has one; the graph's shapes are
static (S x S) unless the ONNX has a dynamic batch axis and a batch profile is asked for.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.errors import EngineError
from engines.onnx_utils import load_onnx
from engines.spec import GraphSpec, TensorSpec
from engines.trt import RTX_SUPPORTED_CAPABILITIES, LogBridge, TensorRT, load_tensorrt

__all__ = [
    "PRECISIONS",
    "BuiltEngine",
    "EngineConfig",
    "LayerInfo",
    "NetworkSummary",
    "build_engine",
    "parse_network",
]

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16")
RTX_COMPUTE_CAPABILITIES = tuple(f"SM{major}{minor}" for major, minor in RTX_SUPPORTED_CAPABILITIES)
"""Targets TensorRT-RTX 1.7 can build for (``trt.ComputeCapability``); none set = portable 8.0/8.6/8.9/12.0."""


@dataclass(frozen=True)
class EngineConfig:
    """How to build an engine.

    Attributes:
        precision: ``fp32`` or ``fp16`` (mixed: see :mod:`engines.precision`).
        batch: ``(min, opt, max)`` batch sizes for a graph exported with a dynamic batch axis; ``None``: the
            graph's static shapes (the live loop's batch 1).
        timing_cache: file of the timing cache reused across builds (standard TensorRT; TensorRT-RTX has none).
        compute_capabilities: TensorRT-RTX targets, e.g. ``("SM86",)``; empty = its portable default.
        workspace_mib: builder workspace limit (``None``: TensorRT's default, the device memory).
        optimization_level: builder optimisation level 0-5 (``None``: TensorRT's default, 3).
    """

    precision: str = "fp32"
    batch: tuple[int, int, int] | None = None
    timing_cache: Path | None = None
    compute_capabilities: tuple[str, ...] = ()
    workspace_mib: int | None = None
    optimization_level: int | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise EngineError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.batch is not None:
            lo, opt, hi = self.batch
            if not 1 <= lo <= opt <= hi:
                raise EngineError(f"batch profile {self.batch} must satisfy 1 <= min <= opt <= max")
        for cc in self.compute_capabilities:
            if cc not in RTX_COMPUTE_CAPABILITIES:
                raise EngineError(f"compute capability {cc!r} is not one of {', '.join(RTX_COMPUTE_CAPABILITIES)}")
        if self.optimization_level is not None and not 0 <= self.optimization_level <= 5:
            raise EngineError(f"optimization_level {self.optimization_level} is not in 0..5")
        if self.workspace_mib is not None and self.workspace_mib <= 0:
            raise EngineError(f"workspace_mib {self.workspace_mib} must be positive")


@dataclass(frozen=True)
class LayerInfo:
    """One layer of the parsed network: name, TensorRT layer type and output dtypes (``float32``, ...)."""

    name: str
    type: str
    output_dtypes: tuple[str, ...]


@dataclass(frozen=True)
class NetworkSummary:
    """The parsed network TensorRT builds (what an engine inspector shows, available without a GPU)."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    layers: tuple[LayerInfo, ...]

    def layer_types(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for layer in self.layers:
            counts[layer.type] = counts.get(layer.type, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        def tensors(items: tuple[TensorSpec, ...]) -> list[dict[str, Any]]:
            return [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in items]

        layers = [{"name": x.name, "type": x.type, "outputs": list(x.output_dtypes)} for x in self.layers]
        return {"inputs": tensors(self.inputs), "outputs": tensors(self.outputs), "layers": layers}


@dataclass
class BuiltEngine:
    """A serialised engine and what it was built from."""

    blob: bytes
    network: NetworkSummary
    config: EngineConfig
    tensorrt: str
    seconds: float
    warnings: list[str] = field(default_factory=list)


def _progress_monitor(trt: TensorRT) -> Any:
    """An ``IProgressMonitor`` that logs each top-level build phase with its elapsed time."""
    module = trt.module

    class Progress(module.IProgressMonitor):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            module.IProgressMonitor.__init__(self)
            self.started: dict[str, float] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.started[phase_name] = time.perf_counter()
            if parent_phase is None or parent_phase == "Building engine":
                logger.info("engine build: %s ...", phase_name)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            start = self.started.pop(phase_name, None)
            if start is not None and time.perf_counter() - start > 5.0:
                logger.info("engine build: %s took %.1f s", phase_name, time.perf_counter() - start)

    return Progress()


def _dtype(trt_dtype: Any) -> str:
    from engines.spec import _dtype_name

    return _dtype_name(trt_dtype)


def _summary(network: Any) -> NetworkSummary:
    def tensor(t: Any) -> TensorSpec:
        return TensorSpec(t.name, tuple(t.shape), _dtype(t.dtype))

    layers = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        dtypes = tuple(_dtype(layer.get_output(j).dtype) for j in range(layer.num_outputs))
        layers.append(LayerInfo(layer.name, str(layer.type).removeprefix("LayerType."), dtypes))
    inputs = tuple(tensor(network.get_input(i)) for i in range(network.num_inputs))
    outputs = tuple(tensor(network.get_output(i)) for i in range(network.num_outputs))
    return NetworkSummary(inputs, outputs, tuple(layers))


def _parser_errors(parser: Any, path: Path) -> str:
    parts = []
    for i in range(parser.num_errors):
        error = parser.get_error(i)
        where = f"node {error.node()}" if error.node() >= 0 else "model"
        if error.node_name():
            where += f" {error.node_name()!r}"
        if error.node_operator():
            where += f" ({error.node_operator()})"
        parts.append(f"{where}: {str(error.desc()).splitlines()[0] if error.desc() else error.code()}")
    return f"TensorRT's ONNX parser rejected {str(path)!r}: " + "; ".join(parts)


def _check_io(summary: NetworkSummary, spec: GraphSpec, path: Path) -> None:
    for kind, have, want in (("inputs", summary.inputs, spec.inputs), ("outputs", summary.outputs, spec.outputs)):
        got = sorted(t.name for t in have)
        expected = sorted(t.name for t in want)
        if got != expected:
            raise EngineError(f"{str(path)!r} {kind} are {got}, graph spec {spec.name!r} expects {expected}")
        for tensor in have:
            wanted = next(t for t in want if t.name == tensor.name)
            if len(tensor.shape) != len(wanted.shape) or any(
                a != b for a, b in zip(tensor.shape[1:], wanted.shape[1:], strict=True)
            ):
                raise EngineError(
                    f"{str(path)!r} {kind[:-1]} {tensor.name!r} has shape {tensor.shape}, spec says {wanted.shape}"
                )


def parse_network(trt: TensorRT, builder: Any, onnx_bytes: bytes, path: Path, bridge: LogBridge) -> tuple[Any, Any]:
    """Parse ONNX bytes into a strongly typed network; :class:`EngineError` lists the parser's errors per node."""
    module = trt.module
    flags = 1 << int(module.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = module.OnnxParser(network, bridge.logger)
    if not parser.parse(onnx_bytes, str(path)):
        raise EngineError(_parser_errors(parser, path))
    return network, parser


def _configure(trt: TensorRT, builder: Any, network: Any, spec: GraphSpec, config: EngineConfig) -> tuple[Any, Any]:
    module = trt.module
    builder_config = builder.create_builder_config()
    builder_config.profiling_verbosity = module.ProfilingVerbosity.DETAILED  # layer details for the inspector
    if config.workspace_mib is not None:
        builder_config.set_memory_pool_limit(module.MemoryPoolType.WORKSPACE, config.workspace_mib << 20)
    if config.optimization_level is not None:
        builder_config.builder_optimization_level = config.optimization_level
    if config.precision == "fp32" and hasattr(module.BuilderFlag, "TF32"):
        builder_config.clear_flag(module.BuilderFlag.TF32)  # FP32 parity with PyTorch (1e-4) needs true FP32
    if config.compute_capabilities:
        if not trt.has_compute_capability_targets:
            logger.warning("%s cannot target compute capabilities: building for this GPU", trt.label)
        else:
            builder_config.num_compute_capabilities = len(config.compute_capabilities)
            for i, cc in enumerate(config.compute_capabilities):
                builder_config.set_compute_capability(getattr(module.ComputeCapability, cc), i)
    timing_cache = None
    if config.timing_cache is not None:
        if not trt.has_timing_cache:
            logger.info("timing cache: %s has none (it would also require a GPU at build time); skipped", trt.label)
        else:
            data = config.timing_cache.read_bytes() if config.timing_cache.is_file() else b""
            timing_cache = builder_config.create_timing_cache(data)
            if not builder_config.set_timing_cache(timing_cache, False):
                logger.warning("timing cache %s does not fit this GPU/TensorRT: new one", config.timing_cache)
                timing_cache = builder_config.create_timing_cache(b"")
                builder_config.set_timing_cache(timing_cache, False)
    if trt.has_progress_monitor:
        builder_config.progress_monitor = _progress_monitor(trt)
    if spec.dynamic_batch or config.batch is not None:
        if not spec.dynamic_batch:
            raise EngineError(
                f"graph {spec.name!r} has a static batch; a batch profile needs an export with a dynamic batch axis"
            )
        if config.batch is None:
            raise EngineError(f"graph {spec.name!r} has a dynamic batch axis: give a batch profile (min, opt, max)")
        profile = builder.create_optimization_profile()
        lo, opt, hi = config.batch
        for tensor in spec.inputs:
            profile.set_shape(tensor.name, tensor.with_batch(lo), tensor.with_batch(opt), tensor.with_batch(hi))
        builder_config.add_optimization_profile(profile)
    return builder_config, timing_cache


def _prepare_plugin_nodes(model: Any, path: Path, trt: TensorRT) -> None:
    """A ``fused`` graph (warp nodes of :mod:`export.warp_op`) needs the warp plugin: register it and point the
    parser at it, or say why it cannot be built here."""
    from export.warp_op import DOMAIN

    fused = [node.name or node.op_type for node in model.graph.node if node.domain == DOMAIN]
    if not fused:
        return
    from engines.plugin import add_parser_attributes, register_warp_plugins

    if not trt.has_plugin_layers:
        raise EngineError(
            f"{str(path)!r} has {len(fused)} fused warp node(s) but {trt.label} has no plugin layers; "
            "build the `standard` export (native GridSample) for this flavour"
        )
    if not register_warp_plugins(trt):
        raise EngineError(
            f"{str(path)!r} has fused warp nodes but the warp plugin cannot load here (see the log); "
            "build the `standard` export, or install Triton on a CUDA machine"
        )
    add_parser_attributes(model)


def build_engine(
    onnx_path: str | Path, spec: GraphSpec, config: EngineConfig | None = None, *, trt: TensorRT | None = None
) -> BuiltEngine:
    """Build a serialised engine for ``spec`` from ``onnx_path``.

    Raises:
        EngineError: missing TensorRT or ONNX, a parser error (per node), I/O that does not match ``spec``, or
            a failed build (TensorRT's first error in the message).
    """
    config = config or EngineConfig()
    trt = trt or load_tensorrt()
    path = Path(onnx_path)
    model = load_onnx(path)
    _prepare_plugin_nodes(model, path, trt)
    if config.precision == "fp16":
        from engines.precision import to_mixed_fp16

        model = to_mixed_fp16(model)
    start = time.perf_counter()
    bridge = LogBridge(trt)
    builder = trt.module.Builder(bridge.logger)
    network, _parser = parse_network(trt, builder, model.SerializeToString(), path, bridge)
    summary = _summary(network)
    _check_io(summary, spec, path)
    builder_config, timing_cache = _configure(trt, builder, network, spec, config)
    logger.info("building %s %s engine from %s with %s", spec.name, config.precision, path.name, trt.label)
    blob = builder.build_serialized_network(network, builder_config)
    if blob is None:
        reason = bridge.first_error() or "no reason given"
        raise EngineError(f"{trt.label} could not build {str(path)!r} ({config.precision}): {reason}")
    if timing_cache is not None and config.timing_cache is not None:
        config.timing_cache.parent.mkdir(parents=True, exist_ok=True)
        config.timing_cache.write_bytes(bytes(builder_config.get_timing_cache().serialize()))
    seconds = time.perf_counter() - start
    logger.info("built %s (%s) in %.1f s: %.1f MiB", spec.name, config.precision, seconds, blob.nbytes / 2**20)
    return BuiltEngine(bytes(blob), summary, config, trt.label, seconds, list(bridge.warnings))
