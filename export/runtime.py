"""Run exported graphs in ONNX Runtime, tensors by name.

:class:`OrtGraph` is one graph in one ``InferenceSession`` (CPU execution provider with thread settings and
graph optimisation level; CUDA first when asked and present). :func:`open_export` checks an export folder
(:func:`export.exporter.load_manifest`) and opens its three graphs.

The ``fused`` graphs hold ``fomm.warp`` nodes. ONNX Runtime runs them through Python custom ops registered
with ``onnxruntime-extensions`` (:func:`register_fused_ops`; the bodies are the PyTorch reference). Its
Python custom ops can only live in the ``ai.onnx.contrib`` domain, so the session is built from the exported
graph with one change made in memory: the custom nodes' domain field ``fomm.warp`` -> ``ai.onnx.contrib``
(op types, attributes, inputs and outputs untouched). ORT's C API headers, needed for a native custom-op
library in the ``fomm.warp`` domain, are on none of the registries this project can reach.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import warp_op
from .exporter import ExportError, ExportOptions, Manifest, check_graph_file, load_manifest
from .specs import GRAPH_NAMES, NetworkSpec

__all__ = [
    "OPT_LEVELS",
    "OrtExport",
    "OrtGraph",
    "import_onnxruntime",
    "open_export",
    "register_fused_ops",
]

logger = logging.getLogger(__name__)

OPT_LEVELS = ("disable", "basic", "extended", "all")
"""ONNX Runtime graph optimisation levels by name."""

_ORT_HINT = "pip install 'fomm-live[export]' (onnx, onnxruntime, onnxruntime-extensions)"


def import_onnxruntime() -> Any:
    """``onnxruntime``, or :class:`ExportError` with an install hint."""
    try:
        import onnxruntime
    except ImportError:
        raise ExportError(f"the ONNX backend needs onnxruntime, which is not installed; {_ORT_HINT}") from None
    return onnxruntime


_registered: str | None = None


def register_fused_ops() -> str:
    """Register the ``WarpMulti`` / ``WarpOccluded`` implementations; returns the custom-op library path."""
    global _registered
    if _registered is not None:
        return _registered
    try:
        import onnxruntime_extensions as ortx
    except ImportError:
        raise ExportError(f"running a fused graph needs onnxruntime-extensions; {_ORT_HINT}") from None
    import torch

    from fomm import geometry

    dt = ortx.PyCustomOpDef
    attrs = {"align_corners": dt.dt_int64, "padding_mode": dt.dt_int64}

    def check_padding(padding_mode: int) -> None:
        if padding_mode != warp_op.PADDING_MODES["zeros"]:
            raise ValueError(f"fomm.warp: padding_mode {padding_mode} is not implemented (only zeros, 0)")

    @ortx.onnx_op(op_type=warp_op.WARP_MULTI, inputs=[dt.dt_float] * 2, outputs=[dt.dt_float], attrs=attrs)
    def warp_multi(image: np.ndarray, grids: np.ndarray, align_corners: int = 1, padding_mode: int = 0) -> np.ndarray:
        check_padding(padding_mode)
        with torch.no_grad(), geometry.use_warp_impl(None):
            image_t, grids_t = torch.from_numpy(image), torch.from_numpy(grids)
            out = geometry.warp_multi(image_t, grids_t, align_corners=bool(align_corners))
        return out.numpy()

    @ortx.onnx_op(op_type=warp_op.WARP_OCCLUDED, inputs=[dt.dt_float] * 3, outputs=[dt.dt_float], attrs=attrs)
    def warp_occluded(
        image: np.ndarray, grid: np.ndarray, occlusion: np.ndarray, align_corners: int = 1, padding_mode: int = 0
    ) -> np.ndarray:
        check_padding(padding_mode)
        with torch.no_grad(), geometry.use_warp_impl(None):
            out = geometry.warp_occluded(
                torch.from_numpy(image),
                torch.from_numpy(grid),
                torch.from_numpy(occlusion),
                align_corners=bool(align_corners),
            )
        return out.numpy()

    _registered = ortx.get_library_path()
    return _registered


def _contrib_model(path: Path) -> bytes:
    """The graph at ``path`` with its ``fomm.warp`` nodes moved to onnxruntime-extensions' domain."""
    import onnx
    import onnxruntime_extensions as ortx

    proto = onnx.load(str(path))
    contrib = ortx.default_opset_domain()
    for node in proto.graph.node:
        if node.domain == warp_op.DOMAIN:
            node.domain = contrib
    kept = [o for o in proto.opset_import if o.domain != warp_op.DOMAIN]
    del proto.opset_import[:]
    proto.opset_import.extend(kept)
    proto.opset_import.append(onnx.helper.make_opsetid(contrib, 1))
    return proto.SerializeToString()


class OrtGraph:
    """One exported graph in an ONNX Runtime session; inputs and outputs by name.

    Args:
        path: the ``.onnx`` file.
        spec: its :class:`NetworkSpec`.
        threads: intra-op threads (0: ONNX Runtime's default, one per core).
        optimization: one of :data:`OPT_LEVELS`.
        device: ``"cpu"`` or ``"cuda"`` (CUDA execution provider first, CPU as fallback).
        fused: the graph holds ``fomm.warp`` nodes (registers the custom ops).
    """

    def __init__(
        self,
        path: str | Path,
        spec: NetworkSpec,
        *,
        threads: int = 0,
        optimization: str = "all",
        device: str = "cpu",
        fused: bool = False,
    ) -> None:
        ort = import_onnxruntime()
        if optimization not in OPT_LEVELS:
            raise ExportError(f"optimization {optimization!r} is not one of {', '.join(OPT_LEVELS)}")
        self.spec = spec
        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[optimization]
        options.log_severity_level = 3
        # idle intra-op threads sleep instead of spinning: the live loop runs torch work (motion transfer,
        # pixel conversion) between graphs, which spinning threads would starve on a small CPU
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ExportError(
                    "the ONNX backend on CUDA needs onnxruntime-gpu (this onnxruntime has no CUDA provider)"
                )
            providers.insert(0, "CUDAExecutionProvider")
        model: str | bytes = str(self.path)
        if fused:
            options.register_custom_ops_library(register_fused_ops())
            model = _contrib_model(self.path)
        try:
            self.session = ort.InferenceSession(model, sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises its own exception types
            raise ExportError(f"ONNX Runtime cannot load {str(self.path)!r}: {str(exc).splitlines()[0]}") from None
        names = [i.name for i in self.session.get_inputs()]
        if sorted(names) != sorted(spec.input_names):
            raise ExportError(f"{str(self.path)!r} has inputs {names}, its spec says {spec.input_names}")
        self._dtypes = {t.name: np.dtype(t.dtype) for t in spec.inputs}

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on named inputs (cast to the spec's dtype); returns every output by name."""
        missing = set(self.spec.input_names) - set(feeds)
        if missing:
            raise ExportError(f"graph {self.spec.name!r} is missing inputs: {', '.join(sorted(missing))}")
        arrays = {name: np.ascontiguousarray(feeds[name], dtype=self._dtypes[name]) for name in self.spec.input_names}
        outputs = self.session.run(self.spec.output_names, arrays)
        return dict(zip(self.spec.output_names, outputs, strict=True))


@dataclass
class OrtExport:
    """The three graphs of an export folder, opened."""

    folder: Path
    manifest: Manifest
    graphs: dict[str, OrtGraph]

    def __getitem__(self, name: str) -> OrtGraph:
        return self.graphs[name]


def open_export(
    folder: str | Path,
    *,
    weights_sha256: str | None = None,
    options: ExportOptions | None = None,
    threads: int = 0,
    optimization: str = "all",
    device: str = "cpu",
    graph_files: Mapping[str, str] | None = None,
) -> OrtExport:
    """Check an export folder against the expected weights/options and open its graphs in ONNX Runtime.

    ``graph_files`` replaces the file of some graphs by another file of the folder with the same inputs and
    outputs (a quantised variant); those files are checked to be ONNX, not against the manifest's hashes.
    """
    import_onnxruntime()
    folder = Path(folder)
    manifest = load_manifest(folder, weights_sha256=weights_sha256, options=options)
    fused = manifest.options.warp == "fused"
    files = {name: manifest.path(folder, name) for name in GRAPH_NAMES}
    for name, file in (graph_files or {}).items():
        if name not in files:
            raise ExportError(f"no graph named {name!r}; expected one of {', '.join(GRAPH_NAMES)}")
        files[name] = folder / file
        check_graph_file(files[name])
    graphs = {
        name: OrtGraph(
            files[name],
            manifest.graphs[name],
            threads=threads,
            optimization=optimization,
            device=device,
            fused=fused and name == "animate",  # the only graph with fomm.warp nodes
        )
        for name in GRAPH_NAMES
    }
    return OrtExport(folder, manifest, graphs)
