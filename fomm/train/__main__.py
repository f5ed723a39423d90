"""``python -m fomm.train``: train FOMM on a data set in the original layout (``ROOT/train/<video>``).

Examples::

    python -m fomm.train --data data/vox --out runs/vox --config vox-256 --device cuda
    python -m fomm.train --data data/vox --out runs/tiny --preset tiny-256 --batch-size 4 --max-steps 1000
    python -m fomm.train --resume runs/vox/checkpoint.safetensors --max-steps 20000
    torchrun --nproc_per_node 4 -m fomm.train --data data/vox --out runs/vox --config vox-adv-256.yaml

``--config`` takes a preset name or an original YAML file (model *and* ``train_params``); without a YAML
the training parameters are the original ``vox-256.yaml``'s, changed by the flags given. ``--resume`` alone
continues with the run's own model, settings and data (``train_config.json`` and ``run.json`` beside the
checkpoint) in the checkpoint's folder; flags still change them (e.g. a larger ``--max-steps``). User errors
print one line ``fomm.train: error: ...`` and exit with 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import CheckpointError, load_checkpoint
from ..cli_errors import CliError, RaisingParser, one_line, path_argument
from ..config import ConfigError, FommConfig, load_yaml_config, preset
from ..model import build_fomm
from .losses import FeatureNetworkError
from .names import AUGMENTATION_LEVERS, LANDMARK_POINT_CHOICES, LANDMARK_POINT_COUNTS
from .trainer import CHECKPOINT_NAME, TrainConfig, Trainer, TrainError, load_train_config

__all__ = ["build_parser", "main"]

logger = logging.getLogger("fomm.train")

PROG = "fomm.train"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEFAULT_PRESET = "vox-256"
#: The run's data set (``{"data": ROOT, "id_sampling": bool, "webcam_aug": P, "occluders": P, "shape_aug": P,
#: "tilt_aug": P, "landmark_points": "yunet" | "facemesh"}``), beside its checkpoint.
RUN_RECORD = "run.json"
#: Loss weights set by a flag of the same name (``--landmark-roll W`` sets ``LossWeights.landmark_roll``).
WEIGHT_FLAGS: tuple[str, ...] = (
    "l1",
    "face_anchor",
    "landmark_keypoints",
    "landmark_heatmap",
    "landmark_roll",
    "mouth_region",
    "equivariance_value",
    "equivariance_jacobian",
)


def _int_at_least(low: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text}")
    return value


def _scales(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in (0, 1], got {text!r}") from None
    if not all(0.0 < v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in (0, 1], got {text!r}")
    return values


def _keypoint_ids(text: str) -> tuple[int, ...]:
    """``--landmark-assign``: keypoint indices, ``-`` (stored as -1) for a landmark no keypoint is pulled onto."""
    try:
        values = tuple(-1 if part.strip() == "-" else int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated keypoint indices (or - to skip a landmark), got {text!r}"
        ) from None
    return values  # distinct, >= 0 or -1 (skipped), not all skipped: TrainConfig checks


def build_parser() -> argparse.ArgumentParser:
    parser = RaisingParser(prog=f"python -m {PROG}", description="Train the First Order Motion Model.")
    parser.add_argument(
        "--data", type=path_argument, help="data set root (holds train/<video>...); with --resume: the run's by default"
    )
    parser.add_argument(
        "--out",
        type=path_argument,
        help="run folder: logs, images, checkpoints; with --resume: the checkpoint's folder",
    )
    model = parser.add_mutually_exclusive_group()
    model.add_argument(
        "--config", help=f"preset name or original YAML (model + train_params); default {DEFAULT_PRESET}"
    )
    model.add_argument("--preset", help="preset name, e.g. tiny-256, demo-256, vox-256")
    parser.add_argument("--epochs", type=_int_at_least(1), help="number of epochs")
    parser.add_argument("--num-repeats", type=_int_at_least(1), help="passes over the data per epoch (vox: 75)")
    parser.add_argument("--max-steps", type=_int_at_least(1), help="stop after N steps in total")
    parser.add_argument(
        "--max-minutes", type=_non_negative_float, help="stop with a checkpoint after this many minutes of training"
    )
    parser.add_argument("--batch-size", type=_int_at_least(1), help="pairs per step per process (vox: 40)")
    parser.add_argument("--lr", type=_non_negative_float, help="learning rate of all three networks (2e-4)")
    parser.add_argument(
        "--lr-kp-detector",
        type=_non_negative_float,
        metavar="LR",
        help="the keypoint detector's own learning rate (default: --lr), e.g. faster while --face-anchor moves "
        "keypoints",
    )
    parser.add_argument(
        "--features",
        help="perceptual-loss network: auto (default), vgg19:PATH, hed-vgg16:PATH, a converted .safetensors, "
        "or none (pixel L1 over the pyramid instead)",
    )
    parser.add_argument(
        "--scales",
        type=_scales,
        metavar="S,S,...",
        help="image pyramid of the perceptual loss (default 1,0.5,0.25,0.125); e.g. 0.5,0.25,0.125 for a coarse "
        "stage at about a quarter of the feature network's cost; --resume keeps the run's",
    )
    parser.add_argument(
        "--l1", type=_non_negative_float, help="weight of the pyramid L1 loss (default 0; 10 with none)"
    )
    parser.add_argument("--adversarial", action="store_true", help="train with the discriminator (LSGAN + FM)")
    parser.add_argument("--resume", type=path_argument, help="continue a run: its checkpoint.safetensors (or folder)")
    parser.add_argument(
        "--init", type=path_argument, help="start from a checkpoint's weights (.pth.tar or .safetensors)"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--workers", type=_int_at_least(0), help="DataLoader workers (default 4)")
    parser.add_argument("--image-size", type=_int_at_least(16), help="frame size (default: the config's)")
    parser.add_argument("--id-sampling", action="store_true", help="epochs iterate identities (ID#... names)")
    parser.add_argument(
        "--webcam-aug",
        type=_probability,
        metavar="P",
        help="probability that the keypoint detector's copy of a driving frame is degraded like a webcam frame "
        "(blur, noise, exposure, JPEG, downscale); default 0 (off); --resume keeps the run's",
    )
    parser.add_argument(
        "--occluders",
        type=_probability,
        metavar="P",
        help="probability of a synthetic occluder (ellipse, hand-like blob) over the keypoint detector's copy of "
        "a driving frame; default 0 (off); --resume keeps the run's",
    )
    parser.add_argument(
        "--shape-aug",
        type=_probability,
        metavar="P",
        help="probability that both frames of a pair are warped by one random face-shape change (wider, narrower, "
        "longer faces: the same motion by more face shapes); default 0 (off); --resume keeps the run's",
    )
    parser.add_argument(
        "--tilt-aug",
        type=_probability,
        metavar="P",
        help="probability that the driving frame alone is turned by a random angle (up to 25 degrees either way): "
        "head tilts the videos lack, for the avatar to follow; default 0 (off); --resume keeps the run's",
    )
    parser.add_argument(
        "--face-anchor",
        type=_non_negative_float,
        metavar="W",
        help="weight of the face-anchor loss: keypoint k kept on the same face part in every person (YuNet "
        "landmarks of each training frame); e.g. 10; default 0 (off); --resume keeps the run's",
    )
    parser.add_argument(
        "--landmark-keypoints",
        type=_non_negative_float,
        metavar="W",
        help="weight of the landmark-keypoint loss: one keypoint pulled onto each of the 5 YuNet landmarks (eyes, "
        "nose tip, mouth corners) of every training frame, the others free; e.g. 10; default 0 (off); --resume "
        "keeps the run's",
    )
    parser.add_argument(
        "--landmark-heatmap",
        type=_non_negative_float,
        metavar="W",
        help="weight of the landmark-heatmap loss: the heatmap of each landmark's keypoint made to peak on the "
        "landmark, which moves a keypoint that is far from it (--landmark-keypoints only nudges the heatmap's "
        "mean); e.g. 1; default 0 (off); --resume keeps the run's",
    )
    parser.add_argument(
        "--landmark-roll",
        type=_non_negative_float,
        metavar="W",
        help="weight of the landmark-roll loss: every keypoint's jacobian made to turn as the head tilts between the "
        "two frames (the line through the eyes, from the data set's landmarks), so an avatar tilts its head with "
        "the driver; e.g. 100; default 0 (off); --resume keeps the run's",
    )
    parser.add_argument(
        "--mouth-region",
        type=_non_negative_float,
        metavar="W",
        help="weight of the mouth-region loss: pixel L1 between the generated and the real driving frame in a "
        "crop around the driving frame's mouth (from the data set's landmarks), which the whole-frame losses "
        "weigh little, so that the avatar opens its mouth with the driver; e.g. 500; default 0 (off); --resume "
        "keeps the run's",
    )
    parser.add_argument(
        "--landmark-points",
        choices=LANDMARK_POINT_CHOICES,
        help="the landmarks of --landmark-keypoints / --face-anchor: yunet (5 points, default) or facemesh (those "
        "5 and the inner upper and lower lip, from FaceMesh: a keypoint for the mouth opening); --resume keeps "
        "the run's",
    )
    parser.add_argument(
        "--landmark-assign",
        type=_keypoint_ids,
        metavar="K,K,...",
        help="which keypoint --landmark-keypoints / --landmark-heatmap pull onto each landmark, fixed for the run "
        "(one index per landmark, in YuNet's order: the two eyes, nose tip, the two mouth corners, then with "
        "facemesh the upper and lower inner lip; - for a landmark no keypoint is pulled onto, e.g. 9,2,3,7,5,-,4); "
        "default: the nearest pairs, chosen again every step; --resume keeps the run's",
    )
    parser.add_argument(
        "--sigma-affine",
        type=_non_negative_float,
        metavar="S",
        help="strength of the equivariance transforms' affine part (noise on [I | 0], the original's "
        "transform_params.sigma_affine; default 0.05, about 3 degrees of rotation): larger asks the jacobians to "
        "follow larger head turns and tilts; --resume keeps the run's",
    )
    parser.add_argument(
        "--equivariance-value",
        type=_non_negative_float,
        metavar="W",
        help="weight of the equivariance loss on keypoint positions (default 10, as the original); --resume keeps "
        "the run's",
    )
    parser.add_argument(
        "--equivariance-jacobian",
        type=_non_negative_float,
        metavar="W",
        help="weight of the equivariance loss on the jacobians (default 10, as the original): larger makes the "
        "jacobians turn with the face, which first-order motion needs for head tilts; --resume keeps the run's",
    )
    parser.add_argument("--seed", type=_int_at_least(0), help="random seed (default 0)")
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), help="autocast precision (default off)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    parser.add_argument("--log-every", type=_int_at_least(1), help="steps between log records (default 10)")
    parser.add_argument("--image-every", type=_int_at_least(0), help="steps between image grids (default 500)")
    parser.add_argument("--checkpoint-every", type=_int_at_least(1), help="checkpoint interval (default 50)")
    parser.add_argument("--checkpoint-unit", choices=("epoch", "step"), help="unit of --checkpoint-every")
    parser.add_argument("--keep-checkpoints", action="store_true", help="also keep checkpoint-<step> snapshots")
    parser.add_argument("--export-original", type=path_argument, help="at the end also write an original .pth.tar")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _resume_path(args: argparse.Namespace) -> Path | None:
    if args.resume is None:
        return None
    return args.resume / CHECKPOINT_NAME if args.resume.is_dir() else args.resume


def _run_paths(args: argparse.Namespace) -> None:
    """Fill ``args.data`` / ``args.out`` of a resumed run from the run itself (``run.json`` beside its checkpoint,
    the checkpoint's folder); without ``--resume`` both are required."""
    resume = _resume_path(args)
    if resume is None:
        missing = [flag for flag in ("--data", "--out") if getattr(args, flag[2:]) is None]
        if missing:
            raise CliError(f"{' and '.join(missing)} required (or --resume CHECKPOINT to continue a run)")
        return
    if not resume.is_file():
        raise CliError(f"--resume {str(args.resume)!r} does not exist (expected a run's {CHECKPOINT_NAME} or folder)")
    if args.out is None:
        args.out = resume.parent
    record_path = resume.parent / RUN_RECORD
    try:
        record = json.loads(record_path.read_text())
    except FileNotFoundError:
        if args.data is None:
            raise CliError(
                f"--data is needed: no {RUN_RECORD} names the run's data set ({str(record_path)!r})"
            ) from None
        return  # a run from before run.json existed: the command line says everything
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the run's record {str(record_path)!r}: {exc}") from None
    try:  # every setting the command line leaves unset comes from the run
        if args.data is None:
            args.data = Path(record["data"])
        args.id_sampling = args.id_sampling or bool(record.get("id_sampling", False))
        _augmentation_from_record(args, record)
        if args.landmark_points is None:
            args.landmark_points = str(record.get("landmark_points", "yunet"))
            if args.landmark_points not in LANDMARK_POINT_CHOICES:
                raise ValueError(f"landmark_points must be one of {', '.join(LANDMARK_POINT_CHOICES)}")
    except (KeyError, ValueError, TypeError) as exc:
        raise CliError(f"cannot read the run's settings from {str(record_path)!r}: {exc}") from None


def _augmentation_from_record(args: argparse.Namespace, record: dict[str, Any]) -> None:
    """The run's ``--webcam-aug`` / ``--occluders`` / ``--shape-aug`` where the command line does not give them."""
    for name in AUGMENTATION_LEVERS:
        if getattr(args, name) is None:
            value = float(record.get(name, 0.0))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
            setattr(args, name, value)


def _augmentation(args: argparse.Namespace) -> dict[str, float]:
    """The run's augmentation probabilities (:data:`AUGMENTATION_LEVERS`; unset: 0)."""
    return {name: float(getattr(args, name) or 0.0) for name in AUGMENTATION_LEVERS}


def _landmark_points(args: argparse.Namespace) -> str:
    """The run's ``--landmark-points`` (unset: ``"yunet"``)."""
    return args.landmark_points or "yunet"


def _write_run_record(args: argparse.Namespace) -> None:
    """``run.json`` in the run folder: the data set and its augmentation, so that ``--resume`` alone can continue
    the run."""
    args.out.mkdir(parents=True, exist_ok=True)
    record = {
        "data": str(args.data.resolve()),
        "id_sampling": bool(args.id_sampling),
        **_augmentation(args),
        "landmark_points": _landmark_points(args),
    }
    (args.out / RUN_RECORD).write_text(json.dumps(record, indent=2) + "\n")


def _model_config(args: argparse.Namespace) -> tuple[FommConfig, Path | None]:
    resume = _resume_path(args)
    if resume is not None and not (args.config or args.preset):
        return load_checkpoint(resume).config, None  # the run's own model
    name = args.preset or args.config or DEFAULT_PRESET
    path = Path(name)
    if args.config and path.suffix.lower() in (".yaml", ".yml"):
        if not path.is_file():
            raise CliError(f"config file {str(path)!r} does not exist")
        return load_yaml_config(path), path
    return preset(name), None


def _train_config(args: argparse.Namespace, model_config: FommConfig, yaml_path: Path | None) -> TrainConfig:
    resume = _resume_path(args)
    saved = resume.parent / "train_config.json" if resume is not None else None
    if yaml_path is not None:
        base = load_train_config(yaml_path)
    elif saved is not None and saved.is_file():
        try:
            base = TrainConfig.from_dict(json.loads(saved.read_text()))  # the run's own settings
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read the run's settings {str(saved)!r}: {exc}") from exc
    else:
        base = TrainConfig()
    changes: dict[str, Any] = {}
    for flag, name in (
        ("epochs", "num_epochs"),
        ("num_repeats", "num_repeats"),
        ("max_steps", "max_steps"),
        ("max_minutes", "max_minutes"),
        ("batch_size", "batch_size"),
        ("workers", "num_workers"),
        ("seed", "seed"),
        ("amp", "amp"),
        ("log_every", "log_every"),
        ("image_every", "image_every"),
        ("checkpoint_every", "checkpoint_every"),
        ("checkpoint_unit", "checkpoint_unit"),
        ("device", "device"),
        ("features", "features"),
        ("scales", "scales"),
    ):
        value = getattr(args, flag)
        if value is not None:
            changes[name] = value
    if args.lr is not None:
        changes.update(lr_generator=args.lr, lr_kp_detector=args.lr, lr_discriminator=args.lr)
    if args.lr_kp_detector is not None:
        changes["lr_kp_detector"] = args.lr_kp_detector
    if args.channels_last:
        changes["channels_last"] = True
    if args.keep_checkpoints:
        changes["keep_checkpoints"] = True
    if args.no_progress:
        changes["progress"] = False
    weights = base.loss_weights
    if (args.features or "").strip() == "none":
        weights = dataclasses.replace(weights, perceptual=(0.0,) * len(weights.perceptual), l1=10.0)
    given = {name: getattr(args, name) for name in WEIGHT_FLAGS if getattr(args, name) is not None}
    weights = dataclasses.replace(weights, **given)
    if args.landmark_assign is not None:
        changes["landmark_assignment"] = args.landmark_assign
    if args.sigma_affine is not None:
        changes["transform"] = dataclasses.replace(base.transform, sigma_affine=args.sigma_affine)
    if args.adversarial:
        blocks = model_config.discriminator.num_blocks
        matching = weights.feature_matching
        if len(matching) < blocks or not any(matching):
            matching = (10.0,) * blocks
        weights = dataclasses.replace(weights, generator_gan=1.0, discriminator_gan=1.0, feature_matching=matching)
    changes["loss_weights"] = weights
    return dataclasses.replace(base, **changes)


def _dataset(args: argparse.Namespace, image_size: int, *, landmarks: bool = False) -> Any:
    from .data import DatasetConfig, FramesDataset

    config = DatasetConfig(
        root=args.data,
        image_size=image_size,
        split="train",
        id_sampling=args.id_sampling,
        landmarks=landmarks,
        landmark_points=_landmark_points(args),
        **_augmentation(args),
    )
    dataset = FramesDataset(config)
    dataset.probe()  # a file that is no video is refused now, not when an epoch reaches it
    return dataset


def _user_errors() -> tuple[type[BaseException], ...]:
    from ..media.errors import MediaError
    from .data import DatasetError

    return (CliError, ConfigError, CheckpointError, FeatureNetworkError, TrainError, DatasetError, MediaError)


def _provenance(args: argparse.Namespace) -> dict[str, Any]:
    """What the checkpoints record of the run besides its settings: the data, the robustness levers and, with
    ``--init``, the initial weights and their own training record (a chain back to random initialisation)."""
    from fomm.checkpoint import read_training_record

    record: dict[str, Any] = {
        "data": str(args.data),
        "id_sampling": bool(args.id_sampling),
        **_augmentation(args),
    }
    if _landmark_points(args) != "yunet":
        record["landmark_points"] = _landmark_points(args)
    dataset_json = Path(args.data) / "dataset.json"
    if dataset_json.is_file():
        try:
            described = json.loads(dataset_json.read_text())
            record["dataset"] = {k: described.get(k) for k in ("format", "max_frames_per_source", "still_motion")}
        except (OSError, ValueError) as exc:
            logger.warning("%s: unreadable (%s); the checkpoints will not describe the data set", dataset_json, exc)
    if args.init is not None:
        record["init"] = str(args.init)
        earlier = read_training_record(args.init)
        if earlier:
            record["init_training"] = earlier
    return record


def run(args: argparse.Namespace) -> int:
    from ..media.video import check_writable_folder

    _run_paths(args)
    check_writable_folder(args.out, "--out")  # before the data set and the model load
    model_config, yaml_path = _model_config(args)
    if args.image_size is not None:
        model_config = model_config.with_image_size(args.image_size)
    train_config = _train_config(args, model_config, yaml_path)
    if args.resume is not None and args.init is not None:
        raise CliError("--resume and --init exclude each other")
    if args.resume is None and (args.out / CHECKPOINT_NAME).exists():
        raise CliError(
            f"{str(args.out)!r} already holds a run: continue it with --resume {args.out / CHECKPOINT_NAME} "
            "or pick another --out"
        )
    with_discriminator = train_config.loss_weights.adversarial
    torch.manual_seed(train_config.seed)
    model = build_fomm(model_config, with_discriminator=with_discriminator)
    if args.init is not None:
        loaded = load_checkpoint(args.init, model_config, with_discriminator=None)
        model.kp_detector.load_state_dict(loaded.model.kp_detector.state_dict())
        model.generator.load_state_dict(loaded.model.generator.state_dict())
        if model.discriminator is not None and loaded.model.discriminator is not None:
            model.discriminator.load_state_dict(loaded.model.discriminator.state_dict())
        logger.info("initialised from %s", args.init)
    uses_landmarks = train_config.loss_weights.uses_landmarks
    points = LANDMARK_POINT_COUNTS[_landmark_points(args)]
    if train_config.landmark_assignment and len(train_config.landmark_assignment) != points:
        raise CliError(
            f"--landmark-assign has {len(train_config.landmark_assignment)} keypoint(s) but --landmark-points "
            f"{_landmark_points(args)} gives {points} landmarks"
        )
    if uses_landmarks and _landmark_points(args) == "facemesh":
        from ..media import faces

        if not faces.facemesh_available():
            raise CliError(f"--landmark-points facemesh needs the FaceMesh model; {faces.FACEMESH_INSTALL_HINT}")
    dataset = _dataset(args, model_config.image_size, landmarks=uses_landmarks)
    logger.info("data: %s (%d items)", args.data, len(dataset))
    with Trainer(model, train_config, dataset, args.out) as trainer:
        trainer.provenance = _provenance(args)
        if args.resume is not None:
            trainer.resume(args.resume)
        if trainer.is_main:
            _write_run_record(args)
        try:
            trainer.train()
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except _user_errors() as exc:
            saved = trainer.saved_on_error
            if saved is None:
                raise
            message = one_line(exc)
            raise CliError(
                f"{message} (the run stopped at step {trainer.step}; its checkpoint is saved: continue with "
                f"--resume {saved})"
            ) from exc
        if args.export_original is not None and trainer.is_main:
            path = trainer.export_original(args.export_original)
            logger.info("wrote the original format: %s", path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    rank = os.environ.get("RANK")
    prefix = f"[rank {rank}] " if rank is not None and os.environ.get("WORLD_SIZE", "1") != "1" else ""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s")
    errors = _user_errors()
    try:
        args = build_parser().parse_args(argv)
        return run(args)
    except errors as exc:
        message = one_line(exc)
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
