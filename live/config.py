"""Configuration of the live tool: one frozen dataclass, validated with messages naming field and value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from fomm.cli_errors import ONNX_BACKENDS, onnx_dir_problem

__all__ = [
    "BACKENDS",
    "DTYPES",
    "FALLBACK_OUTPUT",
    "FITS",
    "MAX_FPS",
    "MAX_SECONDS",
    "ONNX_BACKENDS",
    "LiveConfig",
    "LiveConfigError",
    "is_number",
]

DTYPES = ("fp32", "fp16", "bf16", "int8")
FITS = ("letterbox", "scale", "crop")
#: Where the recording goes when nothing else can show the avatar (no display, no --vcam).
FALLBACK_OUTPUT = Path("fomm-live-output.mp4")
BACKENDS = ("torch", "torch-fast", "onnx", "trt")
#: Largest frame rate (fps cap, capture rate) and duration (search, hold, ease, reconnect) the tool accepts:
#: beyond them a value means nothing (no camera or screen is that fast, no session that long).
MAX_FPS = 1000.0
MAX_SECONDS = 86400.0


class LiveConfigError(ValueError):
    """An option value that cannot be used (one line, names the option)."""


@dataclass(frozen=True)
class LiveConfig:
    """Everything ``run_live.py`` can be told.

    Attributes:
        camera: webcam index (``"0"``), video file, stream URL, or ``"auto"`` (webcam 0 when it opens,
            else the bundled driving clip).
        loop: loop a video file at its end (a camera never ends).
        realtime: pace a video file at its frame rate and drop what the loop cannot keep up with, as a
            camera would; ``False`` hands over every frame (offline processing of a file).
        capture_size: requested camera size ``(w, h)`` or ``None`` (the camera's default).
        capture_fps: requested camera rate or ``None``.
        avatar: avatar image or folder of images (``None``: the bundled portrait).
        checkpoint: model file (``None``: the bundled demo model, or untrained weights of ``model_config``).
        model_config: preset name or YAML for an original checkpoint (``None``: the preset that fits); without
            a checkpoint, an untrained network of this config (for speed measurements).
        device: ``cpu``, ``cuda``, ``cuda:N``.
        dtype: ``fp32``, ``fp16`` or ``bf16`` (autocast; CUDA only for fp16); ``int8`` with the onnx backend
            (statically quantised graphs, CPU).
        backend: ``torch``; ``torch-fast`` (CUDA: fp16 weights, Triton warps, CUDA graphs); ``onnx`` (ONNX
            Runtime; exports into the cache folder on first use); ``trt`` (TensorRT engines built from the
            exported graphs, cached; CUDA).
        compile: for ``torch-fast``: compile the per-frame networks with ``torch.compile`` (fewer, fused kernels;
            the start waits for the compilation).
        onnx_dir: for ``onnx`` and ``trt``: a folder of graphs exported by ``fomm export`` (default: the export
            cache); refused with the torch backends, which do not use it.
        relative: relative motion transfer (default) or absolute.
        adapt_scale: scale relative motion by the keypoint hulls' size ratio.
        filter_strength: One-Euro smoothing of the driving keypoints, 0 (off) to 1 (strong).
        mirror: flip the camera horizontally (a mirror view).
        vcam: send to a virtual camera; ``vcam_size``, ``vcam_fit``, ``vcam_device`` and ``vcam_backend``
            (pyvirtualcam's: ``v4l2loopback``, ``obs``, ``unitycapture``; default: the first that works) set it up.
        preview: ``True``/``False`` or ``None`` (auto: when a display exists).
        output: write the animated frames to this video file.
        fps_cap: at most this many frames per second (``None``: as fast as possible).
        overlay: draw keypoints, FPS and per-stage ms on the preview.
        passthrough: start by showing the real camera instead of the avatar (space toggles).
        stats: write latency statistics (JSON) here at exit.
        max_frames: stop after this many frames (``None``: until quit / end of video).
        best_frame_seconds: how long "find best frame" watches the camera.
        remember: read defaults from and save the last camera, avatar and options to the settings file.
        reconnect_seconds: a stream or webcam that stops delivering is reopened for this long (exponential
            backoff) before the run ends with "camera lost" (exit status 1).
        hold_seconds, ease_seconds: while no face is seen, hold the last pose this long, then ease back to the
            rest pose over ``ease_seconds``.
    """

    camera: str = "auto"
    loop: bool = True
    realtime: bool = True
    capture_size: tuple[int, int] | None = None
    capture_fps: float | None = None
    avatar: Path | None = None
    checkpoint: Path | None = None
    model_config: str | None = None
    device: str = "cpu"
    dtype: str = "fp32"
    backend: str = "torch"
    onnx_dir: Path | None = None
    compile: bool = False
    relative: bool = True
    adapt_scale: bool = True
    filter_strength: float = 0.3
    mirror: bool = False
    vcam: bool = False
    vcam_size: tuple[int, int] = (640, 480)
    vcam_fit: str = "letterbox"
    vcam_device: str | None = None
    vcam_backend: str | None = None
    preview: bool | None = None
    output: Path | None = None
    fps_cap: float | None = None
    overlay: bool = True
    passthrough: bool = False
    stats: Path | None = None
    max_frames: int | None = None
    best_frame_seconds: float = 2.0
    remember: bool = True
    reconnect_seconds: float = 10.0
    hold_seconds: float = 2.0
    ease_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise LiveConfigError(f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.backend not in BACKENDS:
            raise LiveConfigError(f"backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        problem = _precision_problem(self.backend, self.dtype, self.device)
        if problem is not None:
            raise LiveConfigError(problem)
        problem = onnx_dir_problem(self.onnx_dir, self.backend, folder=False)  # the folder: live.checks
        if problem is not None:
            raise LiveConfigError(problem)
        if self.compile and self.backend != "torch-fast":
            raise LiveConfigError(f"--compile is for --backend torch-fast; --backend {self.backend} does not use it")
        if not 0.0 <= self.filter_strength <= 1.0:
            raise LiveConfigError(f"filter strength {self.filter_strength!r} must be between 0 and 1")
        if self.vcam_fit not in FITS:
            raise LiveConfigError(f"vcam fit {self.vcam_fit!r} is not one of {', '.join(FITS)}")
        for name in ("fps_cap", "capture_fps"):
            value = getattr(self, name)
            if value is not None and not (is_number(value) and 0 < value <= MAX_FPS):
                raise LiveConfigError(f"{name.replace('_', ' ')} {value!r} must be > 0 and <= {MAX_FPS:g}")
        if self.max_frames is not None and self.max_frames < 1:
            raise LiveConfigError(f"max frames {self.max_frames!r} must be >= 1")
        if not (is_number(self.best_frame_seconds) and 0 < self.best_frame_seconds <= MAX_SECONDS):
            raise LiveConfigError(
                f"best-frame seconds {self.best_frame_seconds!r} must be > 0 and <= {MAX_SECONDS:g} (1 day)"
            )
        for name in ("reconnect_seconds", "hold_seconds", "ease_seconds"):
            value = getattr(self, name)
            if not (is_number(value) and 0 <= value <= MAX_SECONDS):
                limit = f"{MAX_SECONDS:g} (1 day)"
                raise LiveConfigError(
                    f"{name.replace('_', ' ')} {value!r} must be a number of seconds >= 0 and <= {limit}"
                )
        if not self.camera.strip():
            raise LiveConfigError("camera must not be empty (an index, a video file, a URL or 'auto')")


def is_number(value: object) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _precision_problem(backend: str, dtype: str, device: str) -> str | None:
    """What is wrong with this backend / precision / device combination (``None``: fine), checked with the
    config, before any model loads."""
    cuda = str(device).startswith("cuda")
    if backend == "torch-fast" and not cuda:
        return "--backend torch-fast (fp16, Triton warps, CUDA graphs) needs --device cuda"
    if backend == "torch-fast" and dtype not in ("fp32", "fp16"):
        return f"--backend torch-fast runs fp32 or fp16, not {dtype}"
    if dtype == "int8" and not (backend == "onnx" and not cuda):
        return "int8 needs --backend onnx on the CPU (statically quantised ONNX Runtime graphs)"
    if backend == "trt" and dtype not in ("fp32", "fp16"):
        return f"--backend trt runs fp32 or fp16 engines, not {dtype}"
    if backend == "onnx" and dtype == "bf16":
        return "--backend onnx runs fp32, int8 (CPU) or fp16 (CUDA); bf16 autocast is a torch option"
    if dtype == "fp16" and backend != "trt" and not cuda:
        return "fp16 needs a CUDA device; on the CPU use fp32 or bf16 (torch) or int8 (--backend onnx)"
    return None
