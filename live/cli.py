"""fomm-live: a webcam drives a still avatar; the result goes to a preview window, a virtual camera or a file.

With no arguments: webcam 0 (or, when no camera opens, the bundled driving clip), the bundled avatar and
model, a preview window when a display exists, and a video file when nothing can show the avatar.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from live.config import MAX_FPS, MAX_SECONDS

__all__ = ["build_parser", "main", "prog_name"]

logger = logging.getLogger("fomm.live")


def _size(text: str) -> tuple[int, int]:
    from live.settings import SettingsError, parse_size

    try:
        return parse_size(text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _strength(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a strength between 0 (off) and 1, got {text!r}")
    return value


def _number(text: str, kind: type) -> float | int | None:
    """``text`` as a finite ``kind`` (``None``: not a number, or inf/nan)."""
    try:
        value = kind(text)
    except ValueError:
        return None
    return value if isinstance(value, int) or math.isfinite(value) else None


def _positive(kind: type, most: float | None = None, what: str = "a number", note: str = "") -> Any:
    """An argparse type: a finite ``kind`` > 0 (and <= ``most``, when given; ``note`` follows the bound)."""
    expected = f"{what} > 0" + ("" if most is None else f" and <= {most:g}{note}")

    def parse(text: str) -> Any:
        value = _number(text, kind)
        if value is None or not value > 0 or (most is not None and value > most):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def _seconds(text: str) -> float:
    value = _number(text, float)
    if value is None or not 0.0 <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds >= 0 and <= {MAX_SECONDS:g} (1 day), got {text!r}"
        )
    return value


_fps = _positive(float, MAX_FPS, "a frame rate")
_search_seconds = _positive(float, MAX_SECONDS, "a number of seconds", " (1 day)")


def prog_name(argv0: str | None = None) -> str:
    """How the tool was started: ``fomm-live`` (the console script) or ``run_live.py`` (the checkout's shim)."""
    name = Path(sys.argv[0] if argv0 is None else argv0).name
    return "fomm-live" if name.startswith("fomm-live") else "run_live.py"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The live tool's flags (all of them, in this one function). Imports neither torch nor OpenCV."""
    from live.controls import help_lines

    keys = "\n".join("  " + line for line in help_lines())
    from fomm.cli_errors import RaisingParser, path_argument

    p = RaisingParser(
        prog=prog or prog_name(),
        description=__doc__,
        epilog=f"keys in the preview window:\n{keys}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("camera")
    src.add_argument("--camera", help="webcam index, video file or stream URL (default: webcam 0, else the demo clip)")
    src.add_argument("--list-cameras", action="store_true", help="list the webcams that open, then exit")
    src.add_argument("--no-loop", dest="loop", action="store_false", help="stop at the end of a video file")
    src.add_argument(
        "--every-frame",
        dest="realtime",
        action="store_false",
        help="video file: process every frame instead of pacing it like a camera (offline rendering)",
    )
    src.add_argument(
        "--reconnect-seconds",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="stream/webcam that drops: keep reopening it this long, with backoff, then exit 1 (10)",
    )
    src.add_argument("--capture-size", type=_size, metavar="WxH", help="requested webcam size, e.g. 1280x720")
    src.add_argument("--capture-fps", type=_fps, metavar="FPS", help="requested webcam frame rate")
    mdl = p.add_argument_group("model")
    mdl.add_argument(
        "--avatar", type=path_argument, help="avatar image or folder of images (default: the bundled portrait)"
    )
    mdl.add_argument(
        "--checkpoint", type=path_argument, help="model: original .pth.tar or .safetensors (default: bundled)"
    )
    mdl.add_argument("--config", dest="model_config", metavar="PRESET_OR_YAML", help="config of a .pth.tar file")
    mdl.add_argument("--device", help="cpu, cuda or cuda:N (default cpu)")
    mdl.add_argument(
        "--dtype",
        choices=("fp32", "fp16", "bf16", "int8"),
        help="precision (fp16: CUDA only; int8: --backend onnx on the CPU; default fp32)",
    )
    mdl.add_argument(
        "--backend",
        choices=("torch", "torch-fast", "onnx", "trt"),
        help="torch (default); torch-fast: CUDA fp16 + Triton warps + CUDA graphs; onnx: ONNX Runtime; "
        "trt: TensorRT engines (CUDA); onnx/trt graphs are exported on first use",
    )
    mdl.add_argument(
        "--compile",
        action="store_true",
        help="--backend torch-fast: compile the per-frame networks with torch.compile (faster frames; start-up "
        "waits for the compilation, about 25 s for vox-256 on 16 cores)",
    )
    mdl.add_argument(
        "--onnx-dir",
        type=path_argument,
        metavar="DIR",
        help="--backend onnx or trt: graphs from `fomm export` instead of the export cache",
    )
    mot = p.add_argument_group("motion")
    mode = mot.add_mutually_exclusive_group()
    mode.add_argument(
        "--relative", dest="relative", action="store_true", default=None, help="relative motion (default)"
    )
    mode.add_argument("--absolute", dest="relative", action="store_false", help="absolute keypoints")
    mot.add_argument("--adapt-scale", action=argparse.BooleanOptionalAction, default=None, help="default on")
    mot.add_argument("--filter", type=_strength, metavar="0..1", help="keypoint smoothing strength, 0 = off (0.3)")
    mot.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None, help="flip the camera")
    mot.add_argument(
        "--hold-seconds",
        type=_seconds,
        default=2.0,
        metavar="S",
        help="face lost: hold the last pose this long, then ease back to the rest pose (2)",
    )
    mot.add_argument(
        "--ease-seconds",
        type=_seconds,
        default=1.0,
        metavar="S",
        help="face lost, after the hold: ease back to the rest pose over this long, 0 = at once (1)",
    )
    mot.add_argument("--find-best-frame", action="store_true", help="start by calibrating on the best-matching pose")
    mot.add_argument("--best-frame-seconds", type=_search_seconds, default=2.0, metavar="S", help="search length (2)")
    out = p.add_argument_group("output")
    out.add_argument("--vcam", action="store_true", help="send to a virtual camera (Zoom, Meet, OBS, ...)")
    out.add_argument("--vcam-size", type=_size, metavar="WxH", help="virtual camera size (default 640x480)")
    out.add_argument("--vcam-fit", choices=("letterbox", "scale", "crop"), help="avatar in the frame (letterbox)")
    out.add_argument("--vcam-device", help="a specific virtual camera device, e.g. /dev/video2")
    out.add_argument("--vcam-backend", help="pyvirtualcam backend: v4l2loopback, obs or unitycapture")
    out.add_argument("--preview", action=argparse.BooleanOptionalAction, default=None, help="default: if a display")
    out.add_argument("--output", type=path_argument, metavar="FILE.mp4", help="also record the avatar to a video file")
    out.add_argument("--fps-cap", type=_fps, metavar="FPS", help="at most this many frames per second")
    out.add_argument("--no-overlay", dest="overlay", action="store_false", default=None, help="hide the overlay")
    out.add_argument("--passthrough", action="store_true", help="start showing the real camera (space toggles)")
    out.add_argument("--stats", type=path_argument, metavar="FILE.json", help="write latency statistics here at exit")
    out.add_argument("--max-frames", type=_positive(int), metavar="N", help="stop after N frames")
    p.add_argument("--no-remember", dest="remember", action="store_false", help="ignore the settings file")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _config(args: argparse.Namespace) -> Any:
    """Flags over remembered settings over defaults."""
    from live.checks import usable_settings
    from live.config import LiveConfig
    from live.settings import Settings, load_settings, parse_size, settings_path

    saved = load_settings() if args.remember else Settings()
    given = {
        "camera": args.camera,
        "avatar": None if args.avatar is None else str(args.avatar),
        "checkpoint": None if args.checkpoint is None else str(args.checkpoint),
        "config": args.model_config,
        "device": args.device,
        "relative": args.relative,
        "adapt_scale": args.adapt_scale,
        "mirror": args.mirror,
        "overlay": args.overlay,
        "vcam_size": None if args.vcam_size is None else "{}x{}".format(*args.vcam_size),
        "vcam_fit": args.vcam_fit,
        "vcam_device": args.vcam_device,
        "fps_cap": args.fps_cap,
    }
    saved = usable_settings(saved, settings_path(), Settings(**given))  # a bad remembered value: its default
    merged = saved.merged(Settings(**given))
    config = LiveConfig(
        camera=merged.camera or "auto",
        loop=args.loop,
        realtime=args.realtime,
        capture_size=args.capture_size,
        capture_fps=args.capture_fps,
        avatar=Path(merged.avatar) if merged.avatar else None,
        checkpoint=Path(merged.checkpoint) if merged.checkpoint else None,
        model_config=merged.config,
        device=merged.device or "cpu",
        dtype=args.dtype or "fp32",
        backend=args.backend or "torch",
        onnx_dir=args.onnx_dir,
        compile=args.compile,
        relative=True if merged.relative is None else merged.relative,
        adapt_scale=True if merged.adapt_scale is None else merged.adapt_scale,
        filter_strength=0.3 if args.filter is None else args.filter,
        mirror=bool(merged.mirror),
        vcam=args.vcam,
        vcam_size=parse_size(merged.vcam_size) if merged.vcam_size else (640, 480),
        vcam_fit=merged.vcam_fit or "letterbox",
        vcam_device=merged.vcam_device,
        vcam_backend=args.vcam_backend,
        preview=args.preview,
        output=args.output,
        fps_cap=merged.fps_cap,
        overlay=True if merged.overlay is None else merged.overlay,
        passthrough=args.passthrough,
        stats=args.stats,
        max_frames=args.max_frames,
        best_frame_seconds=args.best_frame_seconds,
        remember=args.remember,
        reconnect_seconds=args.reconnect_seconds,
        hold_seconds=args.hold_seconds,
        ease_seconds=args.ease_seconds,
    )
    return config, merged


def _remember(merged: Any) -> None:
    """Save the camera, avatar and options of this run (only what was given or already remembered)."""
    from live.settings import save_settings

    try:
        save_settings(merged)
    except Exception as exc:  # never lose the run over the settings file
        logger.warning("could not save settings: %s", exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the live tool; returns the exit status (2 for user errors, 1 when the camera was lost for good,
    130 when interrupted twice, or before the session started)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while torch and the model load, before the session's own handler
        print(f"{prog_name().removesuffix('.py')}: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    prog = prog_name()
    tag = prog.removesuffix(".py")
    logging.basicConfig(level=logging.INFO, format=f"{tag}: %(message)s", stream=sys.stderr)
    logging.getLogger("torch").setLevel(logging.WARNING)  # its INFO lines (e.g. cache stats at exit) are not ours
    from fomm.cli import CliError

    try:
        args = build_parser(prog).parse_args(argv)
    except CliError as exc:
        print(f"{tag}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code) if isinstance(exc.code, int) else 0
    if args.verbose:
        logging.getLogger().setLevel(logging.DEBUG)
    from fomm.media.native_logs import route_native_logs

    route_native_logs(verbose=args.verbose)

    from fomm.config import ConfigError
    from fomm.media.errors import MediaError
    from live.capture import CaptureError, list_cameras
    from live.checks import check_inputs
    from live.config import FALLBACK_OUTPUT, LiveConfigError
    from live.settings import SettingsError

    if args.list_cameras:
        cameras = list_cameras()
        print("\n".join(f"{c.index}: {c.width}x{c.height}" for c in cameras) or "no camera opens")
        return 0
    input_errors = (CaptureError, SettingsError, LiveConfigError, ConfigError, MediaError)
    try:  # the settings and the inputs, before torch and the model load (a typo costs a second)
        config, merged = _config(args)
        check_inputs(config, fallback_output=FALLBACK_OUTPUT)
    except input_errors as exc:
        print(f"{tag}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{tag}: interrupted", file=sys.stderr)
        return 130

    from fomm.checkpoint import CheckpointError
    from live.app import LiveError, run
    from live.backends import BackendError
    from live.sinks import SinkError

    user_errors = (*input_errors, SinkError, LiveError, BackendError, CheckpointError)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C: stop waiting for a clean shutdown
            raise KeyboardInterrupt
        logger.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = run(config, stop=stop, find_best_frame=args.find_best_frame)
    except user_errors as exc:
        print(f"{tag}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{tag}: interrupted", file=sys.stderr)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(result.stats.format_table(), file=sys.stderr)
    if config.remember:
        _remember(merged)
    if result.camera_lost is not None:
        print(f"{tag}: error: camera gone: {' '.join(result.camera_lost.split())}", file=sys.stderr)
        return 1
    return 0
