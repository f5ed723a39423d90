"""The fused warp plugin for standard TensorRT (10/11): an IPluginV3 written in Python.

It implements the custom ONNX ops of :mod:`export.warp_op` (``WarpMulti``, ``WarpOccluded`` in domain
``fomm.warp``, version :data:`~export.warp_op.OP_VERSION`), registered under the same name, version and
namespace so that TensorRT's ONNX parser maps the exported nodes to it. Its enqueue runs the Triton kernels of
``fomm.kernels.triton_warp`` on TensorRT's stream.

Everything the plugin decides outside TensorRT's calls is a plain function here, tested without TensorRT:
input counts and shape rules (:func:`output_dims`), attribute parsing and serialisation
(:class:`WarpAttributes`), supported formats (:func:`supports_format`), and the kernel launch on raw device
pointers (:func:`launch`). The classes in :func:`plugin_classes` only adapt these to TensorRT's interfaces.

TensorRT-RTX cannot use it: its networks have no ``add_plugin_v3`` and its ONNX parser aborts the process on a
fused node, with this Python plugin and with a compiled one alike (see :mod:`engines.plugin_probe`,
:mod:`engines.plugin_probe_lib` and the README); engines for it use the ``standard`` graph with TensorRT's native
GridSample.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engines.errors import EngineError
from engines.trt import TensorRT
from export.warp_op import DOMAIN, OP_VERSION, PADDING_MODES, WARP_MULTI, WARP_OCCLUDED, plugin_name

__all__ = [
    "PLUGIN_VERSION",
    "WarpAttributes",
    "add_parser_attributes",
    "launch",
    "num_inputs",
    "output_dims",
    "output_dtype",
    "plugin_classes",
    "probe_compiled_plugin",
    "probe_python_plugin",
    "register_warp_plugins",
    "supports_format",
]

logger = logging.getLogger(__name__)

PLUGIN_VERSION = str(OP_VERSION)
OPS = (WARP_MULTI, WARP_OCCLUDED)
FLOAT_DTYPES = ("float32", "float16")
_INPUTS = {WARP_MULTI: ("image", "grids"), WARP_OCCLUDED: ("image", "grid", "occlusion")}
_RANKS = {WARP_MULTI: (4, 5), WARP_OCCLUDED: (4, 4, 4)}
# Output dimension d is dimension _OUTPUT_DIMS[op][d][1] of input _OUTPUT_DIMS[op][d][0].
_OUTPUT_DIMS = {
    WARP_MULTI: ((0, 0), (1, 1), (0, 1), (1, 2), (1, 3)),  # (B, N, C, h, w)
    WARP_OCCLUDED: ((0, 0), (0, 1), (1, 1), (1, 2)),  # (B, C, h, w)
}


def _op(op: str) -> str:
    return plugin_name(op)  # raises ValueError for an unknown op type


def num_inputs(op: str) -> int:
    """``WarpMulti``: image, grids; ``WarpOccluded``: image, grid, occlusion."""
    return len(_INPUTS[_op(op)])


def output_dims(op: str, inputs: Sequence[Sequence[Any]]) -> list[Any]:
    """The output's dimensions, each one taken from an input's (works on ints and on TensorRT's dimension
    expressions alike).

    ``WarpMulti``: image ``(B, C, H, W)``, grids ``(B, N, h, w, 2)`` -> ``(B, N, C, h, w)``.
    ``WarpOccluded``: image ``(B, C, H, W)``, grid ``(B, h, w, 2)``, occlusion ``(B, 1, h, w)`` -> ``(B, C, h, w)``.

    Raises:
        EngineError: wrong number of inputs or ranks.
    """
    op = _op(op)
    ranks = _RANKS[op]
    if len(inputs) != len(ranks) or any(len(x) != r for x, r in zip(inputs, ranks, strict=False)):
        got = [len(x) for x in inputs]
        raise EngineError(f"{op}: expected inputs of ranks {list(ranks)} ({', '.join(_INPUTS[op])}), got {got}")
    return [inputs[i][d] for i, d in _OUTPUT_DIMS[op]]


def check_shapes(op: str, inputs: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """Concrete-shape check (what the kernel requires); returns the output shape."""
    out = tuple(int(d) for d in output_dims(op, inputs))
    image, grid = inputs[0], inputs[1]
    if grid[0] != image[0] or grid[-1] != 2:
        raise EngineError(f"{op}: grid shape {tuple(grid)} does not fit image {tuple(image)} (B, ..., 2)")
    if op == WARP_OCCLUDED and tuple(inputs[2]) != (image[0], 1, grid[1], grid[2]):
        raise EngineError(f"{op}: occlusion shape {tuple(inputs[2])} must be {(image[0], 1, grid[1], grid[2])}")
    return out


def output_dtype(op: str, input_dtypes: Sequence[str]) -> str:
    """The output has the image's dtype (``float32`` or ``float16``)."""
    _op(op)
    if input_dtypes[0] not in FLOAT_DTYPES:
        raise EngineError(f"{op}: image dtype {input_dtypes[0]!r} is not one of {', '.join(FLOAT_DTYPES)}")
    return input_dtypes[0]


def supports_format(pos: int, in_out: Sequence[tuple[str, str]], n_inputs: int) -> bool:
    """Format combinations: every input and the output linear, all FP32 or all FP16 (``in_out[i]`` is
    ``(dtype, format)``, ``format`` ``"LINEAR"``, ...; TensorRT asks about position ``pos`` given those before)."""
    dtype, layout = in_out[pos]
    if layout != "LINEAR" or dtype not in FLOAT_DTYPES:
        return False
    return pos == 0 or dtype == in_out[0][0]


@dataclass(frozen=True)
class WarpAttributes:
    """The node attributes (integers; see :mod:`export.warp_op`), as the plugin keeps and serialises them."""

    align_corners: bool
    padding_mode: str = "zeros"

    def __post_init__(self) -> None:
        if self.padding_mode != "zeros":
            raise EngineError(f"padding_mode {self.padding_mode!r}: the warp plugin implements 'zeros' only")

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> WarpAttributes:
        """From plugin fields (name -> int or 1-element array), as the ONNX parser or deserialisation gives them.

        Raises:
            EngineError: ``align_corners`` missing, or a value out of range.
        """
        values = {name: int(np.asarray(value).reshape(-1)[0]) for name, value in fields.items() if np.size(value)}
        if "align_corners" not in values:
            raise EngineError(f"warp plugin: attribute 'align_corners' is missing (got {sorted(values)})")
        if values["align_corners"] not in (0, 1):
            raise EngineError(f"warp plugin: align_corners must be 0 or 1, got {values['align_corners']}")
        modes = {v: k for k, v in PADDING_MODES.items()}
        mode = values.get("padding_mode", 0)
        if mode not in modes:
            raise EngineError(f"warp plugin: padding_mode {mode} is not one of {sorted(modes)}")
        return cls(bool(values["align_corners"]), modes[mode])

    def to_fields(self) -> dict[str, np.ndarray]:
        """Name -> int32 array: what :meth:`from_fields` reads back (the serialised plugin)."""
        return {
            "align_corners": np.array([int(self.align_corners)], np.int32),
            "padding_mode": np.array([PADDING_MODES[self.padding_mode]], np.int32),
        }


def add_parser_attributes(model: Any) -> int:
    """Point TensorRT's ONNX parser at our plugins: fused warp nodes get ``plugin_namespace`` and
    ``plugin_version`` attributes (the parser looks plugins up by op type, these two, and passes the other
    attributes as fields). Returns the number of nodes changed; ``model`` is changed in place."""
    from onnx import helper

    changed = 0
    for node in model.graph.node:
        if node.domain != DOMAIN or node.op_type not in OPS:
            continue
        names = {a.name for a in node.attribute}
        if "plugin_namespace" not in names:
            node.attribute.append(helper.make_attribute("plugin_namespace", DOMAIN))
        if "plugin_version" not in names:
            node.attribute.append(helper.make_attribute("plugin_version", PLUGIN_VERSION))
        changed += 1
    return changed


def device_tensor(pointer: int, shape: Sequence[int], dtype: str) -> torch.Tensor:
    """A CUDA tensor over TensorRT-owned memory on the current device (no copy): the Triton kernels' own
    :func:`fomm.kernels.triton_warp.cuda_tensor` with TensorRT's dtype name."""
    from fomm.kernels.triton_warp import cuda_tensor

    return cuda_tensor(pointer, tuple(shape), getattr(torch, dtype), device=torch.cuda.current_device())


def launch(
    op: str,
    attributes: WarpAttributes,
    inputs: Sequence[torch.Tensor],
    output: torch.Tensor,
    stream: int,
) -> None:
    """Run the warp into ``output`` on the raw CUDA ``stream`` with ``fomm.kernels.triton_warp``'s kernels.

    The kernel module is imported here, by name (it needs Triton and a GPU).
    """
    from fomm.kernels import triton_warp

    op = _op(op)
    if op == WARP_MULTI:
        image, grids = inputs
        triton_warp.launch_warp_multi(
            image, grids, output, attributes.align_corners, padding_mode=attributes.padding_mode, stream=stream
        )
    else:
        image, grid, occlusion = inputs
        triton_warp.launch_warp_occluded(
            image, grid, occlusion, output, attributes.align_corners, padding_mode=attributes.padding_mode,
            stream=stream,
        )  # fmt: skip


# --- TensorRT adapters (standard TensorRT 10/11 only) ---------------------------------------------------------


def _dtype_name(trt: TensorRT, dtype: Any) -> str:
    module = trt.module
    return {module.DataType.FLOAT: "float32", module.DataType.HALF: "float16"}.get(dtype, str(dtype))


def plugin_classes(trt: TensorRT, op: str, *, probe: bool = False) -> tuple[type, type]:
    """``(plugin, creator)`` classes of ``op`` for this TensorRT module (IPluginV3 core/build/runtime).

    Raises:
        EngineError: the flavour has no plugin layers (TensorRT-RTX; ``probe=True`` builds them anyway, for
            :mod:`engines.plugin_probe`).
    """
    if not trt.has_plugin_layers and not probe:
        raise EngineError(
            f"{trt.label} has no plugin layers; use the `standard` graph (native GridSample) with this flavour"
        )
    module = trt.module
    op = _op(op)
    n_in = num_inputs(op)

    class WarpPlugin(module.IPluginV3, module.IPluginV3OneCore, module.IPluginV3OneBuild, module.IPluginV3OneRuntime):  # type: ignore[misc,name-defined]
        def __init__(self, attributes: WarpAttributes) -> None:
            module.IPluginV3.__init__(self)
            module.IPluginV3OneCore.__init__(self)
            module.IPluginV3OneBuild.__init__(self)
            module.IPluginV3OneRuntime.__init__(self)
            self.attributes = attributes
            self.num_outputs = 1
            self.plugin_namespace = DOMAIN
            self.plugin_name = op
            self.plugin_version = PLUGIN_VERSION
            self.timing_cache_id = f"{op}-{int(attributes.align_corners)}"

        # core
        def get_capability_interface(self, capability_type: Any) -> Any:
            return self

        def clone(self) -> Any:
            return WarpPlugin(self.attributes)

        def get_fields_to_serialize(self) -> Any:
            fields = [
                module.PluginField(k, v, module.PluginFieldType.INT32) for k, v in self.attributes.to_fields().items()
            ]
            return module.PluginFieldCollection(fields)

        # build
        def get_output_data_types(self, input_types: Sequence[Any]) -> list[Any]:
            output_dtype(op, [_dtype_name(trt, t) for t in input_types])
            return [input_types[0]]

        def get_output_shapes(self, inputs: Sequence[Any], shape_inputs: Any, expr_builder: Any) -> list[Any]:
            return [module.DimsExprs(output_dims(op, [[x[i] for i in range(len(x))] for x in inputs]))]

        def supports_format_combination(self, pos: int, in_out: Sequence[Any], num_inputs: int) -> bool:
            descs = [(_dtype_name(trt, x.desc.type), str(x.desc.format).rsplit(".", 1)[-1]) for x in in_out]
            return supports_format(pos, descs, num_inputs)

        def configure_plugin(self, inputs: Any, outputs: Any) -> None:
            """Nothing to configure at build time: shapes are checked in ``on_shape_change``."""

        def get_workspace_size(self, inputs: Any, outputs: Any) -> int:
            return 0

        def get_valid_tactics(self) -> list[int]:
            return []

        # runtime
        def on_shape_change(self, inputs: Sequence[Any], outputs: Sequence[Any]) -> None:
            check_shapes(op, [tuple(x.dims) for x in inputs])

        def set_tactic(self, tactic: int) -> None:
            """One implementation (the Triton kernel), so no tactic to choose."""

        def attach_to_context(self, context: Any) -> Any:
            return self.clone()

        def enqueue(
            self, input_desc: Any, output_desc: Any, inputs: Any, outputs: Any, workspace: int, stream: int
        ) -> None:
            tensors = [
                device_tensor(inputs[i], tuple(input_desc[i].dims), _dtype_name(trt, input_desc[i].type))
                for i in range(n_in)
            ]
            out = device_tensor(outputs[0], tuple(output_desc[0].dims), _dtype_name(trt, output_desc[0].type))
            launch(op, self.attributes, tensors, out, stream)

    class WarpPluginCreator(module.IPluginCreatorV3One):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            module.IPluginCreatorV3One.__init__(self)
            self.name = op
            self.plugin_namespace = DOMAIN
            self.plugin_version = PLUGIN_VERSION
            self.field_names = module.PluginFieldCollection(
                [
                    module.PluginField(k, np.array([], np.int32), module.PluginFieldType.INT32)
                    for k in ("align_corners", "padding_mode")
                ]
            )

        def create_plugin(self, name: str, fields: Any, phase: Any) -> Any:
            return WarpPlugin(WarpAttributes.from_fields({f.name: f.data for f in fields}))

    return WarpPlugin, WarpPluginCreator


_registered: dict[str, Any] = {}


def register_warp_plugins(trt: TensorRT) -> bool:
    """Register both warp plugin creators once per process; ``False`` (and a log line saying why) where the
    flavour or the machine cannot run them, so the caller builds the ``standard`` graph instead."""
    if not trt.has_plugin_layers:
        logger.info("warp plugin: %s has no plugin layers; the standard graph (native GridSample) is used", trt.label)
        return False
    from fomm.kernels import TRITON_INSTALL_HINT, triton_available

    if not triton_available():
        logger.info(
            "warp plugin: its Triton kernels do not import (triton missing: %s); the standard graph is used",
            TRITON_INSTALL_HINT,
        )
        return False
    registry = trt.module.get_plugin_registry()
    for op in OPS:
        if op not in _registered:
            _plugin, creator_class = plugin_classes(trt, op)
            creator = creator_class()
            if not registry.register_creator(creator, DOMAIN):
                logger.warning("warp plugin: TensorRT refused to register %s; the standard graph is used", op)
                return False
            _registered[op] = creator  # TensorRT keeps a pointer: keep the object alive
    return True


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of a plugin probe: ``works``, a one-line ``detail``, and every line the probe reported (its stage
    lines, then those of a compiled probe library, ``warp_probe: ...``), in order per stream."""

    works: bool
    detail: str
    lines: tuple[str, ...] = ()


def probe_python_plugin(flavour: str, timeout: float = 120.0) -> ProbeResult:
    """Whether ``flavour``'s ONNX parser accepts our Python IPluginV3 for a fused warp node and builds it.

    Runs :mod:`engines.plugin_probe` in a subprocess: TensorRT-RTX 1.7 aborts the whole process there.
    """
    return _run_probe([flavour], timeout)


def probe_compiled_plugin(
    flavour: str, library: str | Path, dtype: str = "fp32", timeout: float = 120.0
) -> ProbeResult:
    """The same with a compiled plugin library (``IPluginRegistry.load_library``), e.g. the probe library of
    :func:`engines.plugin_probe_lib.build_probe_library`; ``dtype`` (``fp32``/``fp16``) is the graph's tensors'."""
    return _run_probe([flavour, "--library", str(library), "--dtype", dtype], timeout)


def _run_probe(args: list[str], timeout: float) -> ProbeResult:
    import os
    import signal
    import subprocess
    import sys

    from engines.plugin_probe import STAGES

    cmd = [sys.executable, "-m", "engines.plugin_probe", *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ), check=False)
    except subprocess.TimeoutExpired:
        return ProbeResult(False, f"the probe did not finish in {timeout:.0f} s")
    lines = [line for line in done.stdout.splitlines() if line.startswith(STAGES)]
    lines += [line for line in done.stderr.splitlines() if line.startswith("warp_probe:")]
    stages = [line for line in lines if line.startswith(STAGES)]
    last = stages[-1] if stages else ""
    if done.returncode == 0 and last.startswith("built"):
        return ProbeResult(True, last, tuple(lines))
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        why = [line for line in done.stderr.splitlines() if line.startswith("terminate called")]
        return ProbeResult(
            False,
            f"the process died with {name} at: {last or 'no output'}{f' ({why[-1]})' if why else ''}",
            tuple(lines),
        )
    return ProbeResult(False, f"exit {done.returncode}: {last or done.stderr.strip()[-200:]}", tuple(lines))
