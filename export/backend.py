"""ONNX Runtime inference backend (the ``InferenceBackend`` protocol of :mod:`live.backends`).

The three exported graphs run in ONNX Runtime; motion transfer (calibration, relative jacobians) stays in
torch, in the caller, as with the torch backend; :class:`fomm.BackendAnimator` gives it :class:`fomm.Animator`'s
per-frame API (``fomm animate --backend onnx``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

import fomm

from .cache import cached_export
from .exporter import ExportError, ExportOptions, load_manifest, weights_sha256
from .runtime import OrtExport, import_onnxruntime, open_export

__all__ = ["OnnxBackend"]

logger = logging.getLogger(__name__)


class OnnxBackend:
    """The exported graphs in ONNX Runtime, tensors by name (see :mod:`export.specs`).

    Args:
        folder: an export folder (``fomm export``), checked against its manifest.
        device: ``cpu`` or ``cuda`` (CUDA execution provider, needs onnxruntime-gpu).
        threads: intra-op threads (0: ONNX Runtime's default).
        optimization: ONNX Runtime graph optimisation level (``all`` by default).
        weights_sha256: refuse a folder exported from other weights.
        options: refuse a folder exported with other options.
        graph_files: override the file of a graph (e.g. ``{"animate": "animate.int8.onnx"}``: a quantised
            variant in the same folder, same names and shapes).

    Use :meth:`from_model` to export (or reuse the cached export of) a loaded model.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        device: torch.device | str = "cpu",
        threads: int = 0,
        optimization: str = "all",
        weights_sha256: str | None = None,
        options: ExportOptions | None = None,
        graph_files: dict[str, str] | None = None,
    ) -> None:
        import_onnxruntime()
        self.device = torch.device(device)
        self.export: OrtExport = open_export(
            folder,
            weights_sha256=weights_sha256,
            options=options,
            threads=threads,
            optimization=optimization,
            device=self.device.type,
            graph_files=graph_files,
        )
        manifest = self.export.manifest
        self.image_size = manifest.image_size
        variant = "-int8" if graph_files else ""
        self.name = f"onnx-{self.device.type}-{manifest.options.precision}{variant}"
        self._cached: dict[str, np.ndarray] | None = None
        self._fixed_batch = manifest.graphs["keypoints"].inputs[0].shape[0] == 1

    @classmethod
    def from_model(
        cls,
        model: fomm.Fomm,
        *,
        device: torch.device | str = "cpu",
        precision: str = "fp32",
        warp: str = "standard",
        cache_dir: str | Path | None = None,
        checkpoint: str | Path | None = None,
        threads: int = 0,
        folder: str | Path | None = None,
    ) -> OnnxBackend:
        """Export ``model`` into the cache (first use) or reuse its cached export, then open it.

        ``precision="int8"``: the fp32 export with its ``animate`` graph statically quantised (int8 QDQ
        convolutions), calibrated once on real frames (the bundled clip driving the bundled avatar) and
        kept in the same cache folder.

        ``folder``: an export folder (``fomm export``) to open instead of the cache; it must hold graphs of
        ``model``'s weights at ``precision`` (int8: fp32 graphs, quantised into the folder on first use), any
        warp variant; ``warp`` is then not used.

        Raises:
            ExportError: the export failed, or ``folder`` is not an export of this model at this precision.
        """
        import_onnxruntime()  # before a long export: say what is missing first
        int8 = precision == "int8"
        options = ExportOptions(precision="fp32" if int8 else precision, warp=warp)
        if folder is None:
            folder, built = cached_export(model, options, root=cache_dir, checkpoint=checkpoint)
        else:
            folder, built = Path(folder), False
            manifest = load_manifest(folder, weights_sha256=weights_sha256(model))
            if manifest.options.precision != options.precision:
                raise ExportError(
                    f"export folder {str(folder)!r} holds {manifest.options.precision} graphs, "
                    f"expected {options.precision} ones for {precision}"
                )
            options = manifest.options
        files = None
        if int8:
            from .quantize import int8_filename

            if built or not (folder / int8_filename("animate")).is_file():
                _quantize_on_bundled_clip(folder, model.config.image_size, threads)
            files = {"animate": int8_filename("animate")}
        return cls(folder, device=device, threads=threads, options=options, graph_files=files)

    # --- the InferenceBackend protocol ---------------------------------------------------------------------

    def _run(self, graph: str, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        arrays = {k: v.detach().float().cpu().numpy() if torch.is_tensor(v) else v for k, v in feeds.items()}
        batch = next(iter(arrays.values())).shape[0]
        if batch == 1 or not self._fixed_batch:
            return self.export[graph].run(arrays)
        parts = [self.export[graph].run({k: v[i : i + 1] for k, v in arrays.items()}) for i in range(batch)]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)

    def set_source(self, source: torch.Tensor) -> fomm.Keypoints:
        """Run the ``source`` graph once per avatar; keep its outputs for :meth:`generate`."""
        self._cached = self._run("source", {"source": source})
        return fomm.Keypoints(
            self._tensor(self._cached["source_kp_value"]), self._tensor(self._cached["source_kp_jacobian"])
        )

    @property
    def source_feeds(self) -> dict[str, np.ndarray]:
        """The ``source`` graph's outputs for the current avatar (the ``animate`` graph's per-avatar inputs)."""
        if self._cached is None:
            raise RuntimeError("set_source() must run first")
        return dict(self._cached)

    def keypoints(self, image: torch.Tensor) -> fomm.Keypoints:
        out = self._run("keypoints", {"image": image})
        return fomm.Keypoints(self._tensor(out["kp_value"]), self._tensor(out["kp_jacobian"]))

    def generate(self, kp_driving: fomm.Keypoints) -> torch.Tensor:
        if self._cached is None:
            raise ExportError("set_source() must run before generate()")
        n = kp_driving.value.shape[0]
        feeds: dict[str, Any] = {k: np.repeat(v, n, axis=0) if n > 1 else v for k, v in self._cached.items()}
        feeds["driving_kp_value"] = kp_driving.value
        feeds["driving_kp_jacobian"] = kp_driving.jacobian
        return self._tensor(self._run("animate", feeds)["frame"])

    def close(self) -> None:
        """Release the ONNX Runtime sessions."""
        self.export.graphs.clear()
        self._cached = None

    def __enter__(self) -> OnnxBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _quantize_on_bundled_clip(folder: Path, size: int, threads: int, frames: int = 12) -> None:
    """Quantise ``animate`` to int8, calibrated on the bundled clip (every 20th frame) and avatar."""
    from fomm.media.assets import DEFAULT_AVATAR, DEFAULT_DRIVING
    from fomm.media.image import fit_square, load_image, to_tensor
    from fomm.media.video import open_frames

    from .quantize import calibration_feeds, quantize_graph

    with open_frames(DEFAULT_DRIVING) as clip:
        driving = [to_tensor(fit_square(f, size, "resize")) for i, f in enumerate(clip) if i % 20 == 5][:frames]
    source = to_tensor(fit_square(load_image(DEFAULT_AVATAR), size, "resize"))
    logger.info("calibrating the int8 animate graph on %d frames of the bundled clip", len(driving))
    quantize_graph(folder, "animate", calibration_feeds(OnnxBackend(folder, threads=threads), source, driving))
