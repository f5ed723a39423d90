"""Static int8 quantisation (QDQ) of an exported fp32 graph, calibrated on real frames.

Only convolutions are quantised (weights per channel int8, activations uint8); the warps' sampling grids,
keypoint arithmetic, softmax and sigmoid stay float. The quantised graph keeps the spec's names and shapes
and lies beside the fp32 one (``animate.int8.onnx``), so :class:`export.backend.OnnxBackend` can swap it in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from .exporter import ExportError, load_manifest

__all__ = ["int8_filename", "quantize_graph"]

logger = logging.getLogger(__name__)


def _preprocessing_advice(record: logging.LogRecord) -> bool:
    """Drop ONNX Runtime's "consider pre-processing before quantization" advice, which its quantiser logs on the
    root logger at WARNING for every call (the graphs come from our exporter, already shape-inferred and folded)."""
    return not ("onnxruntime" in record.pathname and "pre-process" in record.getMessage())


def int8_filename(graph: str) -> str:
    return f"{graph}.int8.onnx"


def quantize_graph(folder: str | Path, graph: str, calibration: Iterable[Mapping[str, np.ndarray]]) -> Path:
    """Write ``<graph>.int8.onnx`` into an fp32 export folder, calibrated on ``calibration`` feeds.

    Args:
        folder: an export folder (``standard`` warp, fp32).
        graph: the graph to quantise (``animate`` holds nearly all the per-frame work).
        calibration: input feeds by name, from real frames (e.g. a clip through the ``source`` and
            ``keypoints`` graphs and motion transfer).

    Returns:
        The quantised file's path.
    """
    try:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    except ImportError:
        raise ExportError("int8 quantisation needs onnxruntime; pip install 'fomm-live[export]'") from None
    folder = Path(folder)
    manifest = load_manifest(folder)
    if manifest.options.precision != "fp32" or manifest.options.warp != "standard":
        raise ExportError("int8 quantisation starts from an fp32 export with the standard warp")
    spec = manifest.graphs[graph]
    feeds = [{name: np.asarray(f[name], np.float32) for name in spec.input_names} for f in calibration]
    if not feeds:
        raise ExportError("int8 quantisation needs at least one calibration frame")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    out = folder / int8_filename(graph)
    partial = out.with_suffix(".partial")
    root = logging.getLogger()
    root.addFilter(_preprocessing_advice)
    try:
        quantize_static(
            str(manifest.path(folder, graph)),
            str(partial),
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        partial.replace(out)
    finally:
        root.removeFilter(_preprocessing_advice)
        partial.unlink(missing_ok=True)
    logger.info("quantised %s to int8 (%d calibration frames): %s", graph, len(feeds), out)
    return out


def calibration_feeds(backend: object, source: object, frames: Iterable[object], *, relative: bool = True) -> list:
    """``animate`` feeds for real driving frames: the backend's source cache, keypoints of each frame and
    relative motion transfer calibrated on the first frame (as the live tool does).

    Args:
        backend: an :class:`export.backend.OnnxBackend` (fp32).
        source: ``(1, 3, S, S)`` avatar tensor.
        frames: ``(1, 3, S, S)`` driving frame tensors.
    """
    import fomm

    kp_source = backend.set_source(source)  # type: ignore[attr-defined]
    cached = backend.source_feeds  # type: ignore[attr-defined]
    calibration = None
    feeds = []
    for frame in frames:
        kp = backend.keypoints(frame)  # type: ignore[attr-defined]
        if relative and calibration is None:
            calibration = fomm.calibrate(kp_source, kp, adapt_movement_scale=True)
        kp_norm = fomm.transfer_motion(kp, calibration, relative=relative)
        feeds.append(
            {**cached, "driving_kp_value": kp_norm.value.numpy(), "driving_kp_jacobian": kp_norm.jacobian.numpy()}
        )
    return feeds
