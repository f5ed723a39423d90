"""The TensorRT backend: the per-frame graphs (``keypoints``, ``animate``) as TensorRT engines.

The avatar's encoding (``set_source``, once per avatar) runs in PyTorch on the same GPU; motion transfer stays
in torch in the pipeline, as with every backend. Engines come from :class:`engines.cache.EngineCache` (built
from the exported ONNX graphs on first use, rebuilt when stale) and run on torch-owned buffers on torch's
current stream, optionally replayed from CUDA graphs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

import fomm
from engines.errors import EngineError

__all__ = ["GRAPHS", "TrtBackend"]

logger = logging.getLogger(__name__)

GRAPHS = ("keypoints", "animate")
"""Exported graphs the backend runs (``<onnx_dir>/<name>.onnx``, names and I/O as in ``export.specs``)."""


class TrtBackend:
    """TensorRT engines for the per-frame work.

    Args:
        model: the networks (used for ``set_source`` and moved to ``device``).
        onnx_dir: folder of the exported ``keypoints.onnx`` and ``animate.onnx`` (``standard`` warp).
        device: a CUDA device.
        precision: ``fp32`` or ``fp16`` engines (FP32 inputs and outputs either way).
        cache_dir: engine cache folder (default: :func:`engines.cache.default_cache_dir`).
        cuda_graph: replay each engine from a CUDA graph after the first frame.

    It satisfies ``live.backends.InferenceBackend`` (``set_source``, ``keypoints``, ``generate``).

    Raises:
        EngineError: one line saying what is missing (TensorRT, a GPU, the ONNX files) or what is wrong.
    """

    def __init__(
        self,
        model: fomm.Fomm,
        onnx_dir: str | Path,
        device: torch.device | str = "cuda",
        precision: str = "fp32",
        *,
        cache_dir: str | Path | None = None,
        cuda_graph: bool = False,
    ) -> None:
        self._open(model, Path(onnx_dir), torch.device(device), precision, cache_dir, cuda_graph)

    def _open(
        self,
        model: fomm.Fomm,
        onnx_dir: Path,
        device: torch.device,
        precision: str,
        cache_dir: str | Path | None,
        cuda_graph: bool,
    ) -> None:
        from engines.build import EngineConfig
        from engines.cache import EngineCache
        from engines.engine import Engine, check_gpu_supported, require_cuda, rtx_targets
        from engines.spec import GraphSpec
        from engines.trt import load_tensorrt

        trt = load_tensorrt()  # first: "TensorRT is not installed" is the most useful message
        require_cuda()
        if device.type != "cuda":
            raise EngineError(f"--backend trt runs on a CUDA device, not {device}; use --device cuda")
        capability = torch.cuda.get_device_capability(device)
        check_gpu_supported(trt, torch.cuda.get_device_name(device), capability)
        missing = [name for name in GRAPHS if not (onnx_dir / f"{name}.onnx").is_file()]
        if missing:
            raise EngineError(
                f"--onnx-dir {str(onnx_dir)!r} has no {', '.join(f'{m}.onnx' for m in missing)}; export the model "
                "first (python -m export --checkpoint ... --out DIR) and pass that folder"
            )
        manifest = _manifest(onnx_dir, model)
        if manifest.options.warp == "fused":
            from engines.plugin import register_warp_plugins

            if not register_warp_plugins(trt):  # also needed to deserialise a cached fused engine
                raise EngineError(
                    f"--onnx-dir {str(onnx_dir)!r} holds the fused export, whose warp plugin cannot load with "
                    f"{trt.label} here; export with --warp standard"
                )
        cache = EngineCache(cache_dir, trt)
        config = EngineConfig(precision=precision, compute_capabilities=rtx_targets(trt, capability))
        self.engines = {}
        for name in GRAPHS:
            spec = GraphSpec.from_spec(manifest.graphs[name])
            path = onnx_dir / manifest.graphs[name].filename
            self.engines[name] = Engine(cache.get_or_build(path, spec, config), spec, trt=trt, device=device)
        self.device = device
        self.model = model.to(device).eval()
        self.image_size = model.config.image_size
        self.max_batch = 1  # static batch-1 engines (fomm.BackendAnimator feeds them frame by frame)
        self.name = f"trt-{trt.flavour}-{precision}"
        self._cuda_graph = cuda_graph
        self._has_source = False
        self._kp_source: fomm.Keypoints | None = None

    def _run(self, name: str, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        engine = self.engines[name]
        out = engine(feed)
        if self._cuda_graph and not engine.captured:
            engine.capture()  # buffers are bound: later frames copy inputs and replay
        return {k: v.clone() for k, v in out.items()}

    @torch.inference_mode()
    def set_source(self, source: torch.Tensor) -> fomm.Keypoints:
        kp = self.model.kp_detector(source)
        encoding = self.model.generator.encode_source(source)
        self._kp_source = fomm.Keypoints(kp.value.float(), kp.jacobian.float())
        # once per avatar: into the animate engine's input buffers, which every frame (and a CUDA graph) reads
        self.engines["animate"].set_inputs(
            {
                "features": encoding.features,
                "source_small": encoding.source_small,
                "source_kp_value": self._kp_source.value,
                "source_kp_jacobian": self._kp_source.jacobian,
            }
        )
        self._has_source = True
        return self._kp_source

    @torch.inference_mode()
    def keypoints(self, image: torch.Tensor) -> fomm.Keypoints:
        out = self._run("keypoints", {"image": image})
        return fomm.Keypoints(out["kp_value"].float(), out["kp_jacobian"].float())

    @torch.inference_mode()
    def generate(self, kp_driving: fomm.Keypoints) -> torch.Tensor:
        if not self._has_source:
            raise EngineError("set_source() must run before generate()")
        feed = {"driving_kp_value": kp_driving.value, "driving_kp_jacobian": kp_driving.jacobian}
        return self._run("animate", feed)["frame"].float()


def _manifest(onnx_dir: Path, model: fomm.Fomm) -> Any:
    """The export folder's manifest, checked: these weights (``set_source`` runs the torch model, the engines
    the exported weights: they must be the same), fp32 graphs (FP16 engines are made from them)."""
    from export.exporter import ExportError, load_manifest, weights_sha256

    try:
        manifest = load_manifest(onnx_dir, weights_sha256=weights_sha256(model))
    except ExportError as exc:
        raise EngineError(str(exc)) from None
    if manifest.options.precision != "fp32":
        raise EngineError(
            f"--onnx-dir {str(onnx_dir)!r} holds {manifest.options.precision} graphs; TensorRT engines are built "
            "from the fp32 export (--precision fp16 makes FP16 engines from it)"
        )
    return manifest
