"""Assembles the live tool from a :class:`LiveConfig`: camera, model, framing, pipeline, sinks, loop.

``run_live.py`` parses flags into a config and calls :func:`run`; tests call :func:`run` directly.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import fomm
from fomm.media.assets import DEFAULT_AVATAR, DEFAULT_DRIVING, DEMO_MODEL

from .backends import BackendError, InferenceBackend, TorchBackend
from .capture import CaptureSource, LatestFrameCapture
from .checks import check_inputs, device_problem
from .config import FALLBACK_OUTPUT, LiveConfig
from .controls import Action, AvatarList
from .crop import CropConfig, FaceFramer
from .filters import KeypointFilter
from .loop import LoopOptions, LoopState, run_loop
from .pipeline import PuppetPipeline
from .sinks import PreviewSink, Sink, SinkGroup, VideoFileSink, VirtualCameraSink, has_display
from .stats import LatencyStats

__all__ = ["LiveError", "LiveRun", "load_backend", "open_capture", "run"]

logger = logging.getLogger(__name__)


class LiveError(RuntimeError):
    """A live-tool problem the user can fix (one line)."""


@dataclass
class LiveRun:
    """The outcome of :func:`run`."""

    stats: LatencyStats
    camera: str
    model: str
    untrained: bool
    outputs: list[str] = field(default_factory=list)
    camera_lost: str | None = None
    """Why the run ended early because the camera or stream was lost for good (``None``: it was not)."""


# --- building blocks -----------------------------------------------------------------------------------------


def open_capture(config: LiveConfig) -> tuple[LatestFrameCapture, str]:
    """Start the camera; ``"auto"`` means webcam 0 when it opens, else the bundled driving clip."""
    size = config.capture_size or (None, None)
    if config.camera == "auto":
        camera = LatestFrameCapture(
            0, width=size[0], height=size[1], fps=config.capture_fps, reconnect_seconds=config.reconnect_seconds
        )
        try:
            camera.start()
            return camera, "webcam 0"
        except Exception as exc:  # no webcam: say so and use the bundled clip
            camera.close()
            logger.warning("no webcam opens (%s): driving with the bundled demo clip %s", exc, DEFAULT_DRIVING)
            source = str(DEFAULT_DRIVING)
    else:
        source = config.camera
    kind = CaptureSource.parse(source).kind
    camera = LatestFrameCapture(
        source,
        width=size[0] if kind == "camera" else None,
        height=size[1] if kind == "camera" else None,
        fps=config.capture_fps if kind == "camera" else None,
        loop=config.loop,
        realtime=config.realtime,
        reconnect_seconds=config.reconnect_seconds,
    )
    camera.start()
    return camera, camera.description


def load_backend(config: LiveConfig) -> tuple[InferenceBackend, str, bool]:
    """The inference backend, a description of the model, and whether its weights are untrained."""
    problem = device_problem(config.device)
    if problem is not None:
        raise LiveError(f"--device {config.device!r} {problem}")
    device = torch.device(config.device)
    if config.backend == "trt":
        from engines.engine import require_cuda
        from engines.errors import EngineError
        from engines.trt import load_tensorrt

        try:
            load_tensorrt()  # first: "TensorRT is missing" says what to install
            require_cuda()
        except EngineError as exc:
            raise LiveError(f"--backend trt: {exc}") from None
        if device.type == "cpu":
            device = torch.device("cuda")
    model_config = None
    if config.model_config is not None:
        path = Path(config.model_config)
        is_yaml = path.suffix.lower() in (".yaml", ".yml") or path.is_file()
        model_config = fomm.load_yaml_config(path) if is_yaml else fomm.preset(config.model_config)
    checkpoint = config.checkpoint
    if checkpoint is None and model_config is None and DEMO_MODEL.is_file():
        checkpoint = DEMO_MODEL  # the default; --config without --checkpoint means an untrained network of it
    if checkpoint is None:
        model = fomm.build_fomm(model_config or fomm.preset("tiny-256"))
        untrained = True
        described = f"{model.config.name}, UNTRAINED weights"
    else:
        loaded = fomm.load_checkpoint(checkpoint, model_config, device="cpu")
        model, untrained = loaded.model, False
        described = f"{loaded.config.name} from {checkpoint}"
    if config.backend == "trt":
        return _trt_backend(model, device, config, checkpoint), described, untrained
    if config.backend == "onnx":
        return _onnx_backend(model, device, config, checkpoint), described, untrained
    if config.backend == "torch-fast":  # fp16 weights, Triton warps, CUDA-graph replay (CUDA; checked by the config)
        from .fast_backend import FastTorchBackend

        return FastTorchBackend(model, device, config.dtype, compile=config.compile), described, untrained
    return TorchBackend(model, device, config.dtype), described, untrained


def _trt_backend(
    model: fomm.Fomm, device: torch.device, config: LiveConfig, checkpoint: Path | None
) -> InferenceBackend:
    """TensorRT engines built (and cached) from the ``standard`` graphs: ``--onnx-dir`` or the export cache."""
    from engines.backend import TrtBackend
    from engines.errors import EngineError

    onnx_dir = config.onnx_dir
    if onnx_dir is None:
        from export.cache import cached_export
        from export.exporter import ExportError

        try:
            onnx_dir, _ = cached_export(model, checkpoint=checkpoint)
        except ExportError as exc:
            raise BackendError(str(exc)) from None
    try:
        return TrtBackend(model, onnx_dir, device, config.dtype)
    except EngineError as exc:
        raise LiveError(f"--backend trt: {exc}") from None


def _onnx_backend(
    model: fomm.Fomm, device: torch.device, config: LiveConfig, checkpoint: Path | None
) -> InferenceBackend:
    """ONNX Runtime on the graphs of ``model``: ``--onnx-dir``, or exported into the cache on first use (it says
    where)."""
    from export.backend import OnnxBackend
    from export.exporter import ExportError

    try:
        return OnnxBackend.from_model(
            model, device=device, precision=config.dtype, checkpoint=checkpoint, folder=config.onnx_dir
        )
    except ExportError as exc:
        raise BackendError(f"--onnx-dir: {exc}" if config.onnx_dir is not None else str(exc)) from None


def _switch_avatar(avatars: AvatarList, pipeline: PuppetPipeline, *, forward: bool) -> None:
    """The next (or previous) avatar of the list that can be read; an image that cannot (changed or deleted
    since the start) is skipped with a warning, and the session goes on with the avatar it has."""
    from fomm.media.errors import MediaError

    for _ in range(len(avatars)):
        path = avatars.next() if forward else avatars.previous()
        try:
            image = _load_avatar(path)
        except MediaError as exc:
            logger.warning("avatar skipped: %s", exc)
            continue
        pipeline.set_source(image)
        logger.info("avatar: %s", path)
        return


def _load_avatar(path: Path) -> np.ndarray:
    from fomm.media.image import load_image

    return np.ascontiguousarray(load_image(path)[:, :, ::-1])


def _build_sinks(config: LiveConfig, fps: float, extra: Iterable[Sink]) -> tuple[SinkGroup, list[str]]:
    sinks: list[Sink] = list(extra)
    outputs: list[str] = []
    try:
        show = config.preview if config.preview is not None else has_display()
        if show:
            sinks.append(PreviewSink())
            outputs.append("preview window")
        if config.vcam:
            vcam = VirtualCameraSink(
                *config.vcam_size, fps=fps, device=config.vcam_device, backend=config.vcam_backend, fit=config.vcam_fit
            )
            sinks.append(vcam)
            outputs.append(f"virtual camera {vcam.device_name}")
        if config.output is not None:
            sinks.append(VideoFileSink(config.output, fps))
            outputs.append(f"file {config.output}")
        if not sinks:  # nothing can show the avatar: record what the preview would show
            logger.warning("no display and no --vcam: recording the preview to %s instead", FALLBACK_OUTPUT)
            sinks.append(VideoFileSink(FALLBACK_OUTPUT, fps, include_preview=True))
            outputs.append(f"file {FALLBACK_OUTPUT} (preview)")
    except BaseException:
        SinkGroup(sinks).close()
        raise
    return SinkGroup(sinks), outputs


# --- the run -------------------------------------------------------------------------------------------------


def run(
    config: LiveConfig,
    *,
    stop: threading.Event | None = None,
    extra_sinks: Iterable[Sink] = (),
    find_best_frame: bool = False,
) -> LiveRun:
    """Run the live tool until the camera ends, ``stop`` is set, the user quits or ``max_frames`` are done.

    The camera, the virtual camera and the files are closed however the run ends; statistics are written
    (``config.stats``) even after an error or an interrupt.
    """
    stop = stop or threading.Event()
    stats = LatencyStats()
    check_inputs(config, fallback_output=FALLBACK_OUTPUT)  # a typo costs a second, not the model's load time
    backend, model_text, untrained = load_backend(config)
    with contextlib.ExitStack() as stack:
        stack.callback(backend.close)  # however the run ends, a bad avatar included
        logger.info("model: %s on %s (%s)", model_text, backend.device, backend.name)
        if untrained:
            logger.warning(
                "using UNTRAINED weights: the avatar will not follow the face; pass --checkpoint (e.g. vox-cpk.pth.tar)"
            )
        avatars = AvatarList(config.avatar or DEFAULT_AVATAR)
        framer = FaceFramer(CropConfig(size=backend.image_size))
        landmarker = framer.detector
        keypoint_filter = KeypointFilter(config.filter_strength, enabled=config.filter_strength > 0)
        pipeline = PuppetPipeline(
            backend,
            framer,
            relative=config.relative,
            adapt_scale=config.adapt_scale,
            keypoint_filter=keypoint_filter,
            landmarker=landmarker,
            mirror=config.mirror,
            hold_seconds=config.hold_seconds,
            ease_seconds=config.ease_seconds,
        )
        pipeline.set_source(_load_avatar(avatars.current))
        notes = ["UNTRAINED WEIGHTS"] if untrained else []

        def on_action(action: Action) -> None:
            if action in (Action.NEXT_AVATAR, Action.PREVIOUS_AVATAR):
                _switch_avatar(avatars, pipeline, forward=action is Action.NEXT_AVATAR)

        capture, camera_text = open_capture(config)
        stack.callback(capture.close)
        logger.info("camera: %s", camera_text)
        fps = float(config.fps_cap or capture.fps or 30.0)
        sinks, outputs = _build_sinks(config, fps, extra_sinks)
        stack.callback(sinks.close)
        if config.stats is not None:
            stack.callback(lambda: logger.info("stats written to %s", stats.write_json(config.stats)))
        logger.info("sending to: %s", ", ".join(outputs) or "nowhere (null sink)")
        if find_best_frame:
            pipeline.find_best_frame(max(1, round(config.best_frame_seconds * (capture.fps or 25.0))))
        options = LoopOptions(
            fps_cap=config.fps_cap,
            max_frames=config.max_frames,
            best_frame_frames=max(1, round(config.best_frame_seconds * (capture.fps or 25.0))),
        )
        run_loop(
            capture,
            pipeline,
            sinks,
            stats=stats,
            options=options,
            state=LoopState(overlay=config.overlay, passthrough=config.passthrough),
            stop=stop,
            on_action=on_action,
            notes=notes,
        )
        lost = capture.last_error if capture.lost and not stop.is_set() else None
    return LiveRun(stats, camera_text, model_text, untrained, outputs, camera_lost=lost)
