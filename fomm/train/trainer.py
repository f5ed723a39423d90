"""FOMM training: the original ``train.py`` loop with resumable state, DDP and logs.

One step (as the original ``GeneratorFullModel`` / ``DiscriminatorFullModel``):

1. keypoints of the source and the driving frame; generator forward (prediction, motion, occlusion);
2. perceptual loss over the image pyramid (:func:`~fomm.train.losses.perceptual_pyramid_loss`);
3. with ``generator_gan > 0``: LSGAN generator loss and discriminator feature matching (discriminator frozen);
4. equivariance: a random TPS transform of the driving frame, its keypoints, value and jacobian losses;
5. backward, Adam steps of the generator and the keypoint detector;
6. with ``generator_gan > 0``: the discriminator's LSGAN step on the detached prediction.

Learning rates drop by 10 at each epoch milestone (``MultiStepLR``). Files in ``out_dir`` (rank 0 only):

- ``log.jsonl``: one JSON object per logged step (``step``, ``epoch``, ``lr``, each loss, ``total``,
  ``seconds_per_step``); scalars also go to TensorBoard (``out_dir/tensorboard``) when it is installed;
- ``images/step-XXXXXXXX.png``: source | driving | transformed driving (keypoints drawn) | prediction |
  occlusion, one row per batch item (first 4);
- ``checkpoint.safetensors`` (the project's model format, :func:`fomm.save_checkpoint`) and beside it
  ``train_state.pt`` (optimizers, schedulers, loss scalers, epoch/step, RNG states; tensors and plain
  containers only, read back with ``weights_only=True``); :meth:`Trainer.resume` continues exactly;
- ``train_config.json``: the :class:`TrainConfig` of the run.

Data order is derived from ``seed + epoch`` (a :class:`~torch.utils.data.DistributedSampler`, also with one
process), and the random transforms from ``(seed, rank, step)``, so a resumed run sees the same batches and
transforms as an uninterrupted one. Randomness inside the data set (pair sampling, augmentation) comes from the
global RNGs (torch, numpy, ``random``), which are seeded for each item from ``(seed, rank, epoch, position in the
epoch)`` and restored afterwards: the items are the same with any ``num_workers`` and after a resume mid-epoch.

Distributed: launched by ``torchrun`` (``RANK``/``WORLD_SIZE`` set), the trainer joins the process group
(NCCL on CUDA, Gloo on CPU), wraps the networks in ``DistributedDataParallel``, converts BatchNorm to
SyncBatchNorm when there is more than one process on CUDA (SyncBatchNorm has no CPU kernel: on CPU each
process keeps its own batch statistics), and only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..checkpoint import load_checkpoint, save_checkpoint
from ..cli_errors import one_line
from ..config import ConfigError, yaml_float, yaml_floats, yaml_int, yaml_ints, yaml_mapping
from ..discriminator import scale_key
from ..generator import GeneratorOutput
from ..keypoints import Keypoints
from ..model import Fomm
from ..precision import slow_cpu_bf16
from .losses import (
    FeatureNetwork,
    ImagePyramid,
    LossWeights,
    equivariance_losses,
    face_anchor_loss,
    feature_matching_loss,
    l1_pyramid_loss,
    landmark_heatmap_loss,
    landmark_keypoint_loss,
    landmark_roll_loss,
    load_feature_network,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    match_keypoints_to_landmarks,
    mouth_region_loss,
    perceptual_pyramid_loss,
)
from .names import DEFAULT_SCALES
from .transforms import RandomTpsTransform, TransformParams

__all__ = ["DistributedInfo", "TrainConfig", "TrainError", "Trainer", "load_train_config", "setup_distributed"]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.safetensors"
STATE_NAME = "train_state.pt"
LOG_NAME = "log.jsonl"
STATE_VERSION = 1
AMP_MODES = ("off", "bf16", "fp16")
CHECKPOINT_UNITS = ("epoch", "step")
#: In ``TrainConfig.landmark_assignment``: a landmark that no keypoint is pulled onto (``-`` on the command line).
SKIPPED_LANDMARK = -1


class TrainError(RuntimeError):
    """A training run that cannot start or continue (bad resume files, too little data, non-finite loss)."""


# --- configuration -------------------------------------------------------------------------------------------


def _int_at_least(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"train.{name} must be an integer >= {low}, got {value!r}")


def _positive_number(name: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"train.{name} must be a number {'>=' if allow_zero else '>'} 0, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything about a training run except the model and the data (original ``train_params`` + more).

    Defaults are the original ``vox-256.yaml`` training parameters (not adversarial).

    Attributes:
        num_epochs: epochs to train (an epoch is ``num_repeats`` passes over the data set).
        num_repeats: passes over the data set per epoch (the original ``DatasetRepeater``; 75 for VoxCeleb).
        epoch_milestones: epochs after which every learning rate is multiplied by 0.1.
        lr_generator, lr_kp_detector, lr_discriminator: Adam learning rates.
        betas: Adam betas.
        batch_size: frames pairs per step *per process*.
        num_workers: DataLoader worker processes (0: load in the training process).
        scales: image pyramid of the perceptual loss.
        transform: strength of the random equivariance transforms.
        loss_weights: see :class:`~fomm.train.losses.LossWeights`.
        checkpoint_every: write a checkpoint every N ``checkpoint_unit``\\ s (and always at the end).
        checkpoint_unit: ``"epoch"`` or ``"step"``.
        keep_checkpoints: also keep ``checkpoint-<step>.safetensors`` model snapshots.
        log_every: steps between ``log.jsonl`` records (the step's own losses, not an average).
        image_every: steps between image grids (0: never).
        max_steps: stop after this many steps in total (``None``: run all epochs).
        max_minutes: stop (with a checkpoint) once this many minutes of training have passed in this process
            (all ranks agree on the step); ``None``: no time limit.
        seed: seeds the global RNGs, the data order and the random transforms.
        features: perceptual-loss network spec (:func:`~fomm.train.losses.load_feature_network`), or ``"none"``
            (then the perceptual weights must be 0 and ``l1`` on).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (under torchrun, CUDA uses ``cuda:LOCAL_RANK``).
        amp: ``"off"``, ``"bf16"`` (CPU or CUDA autocast) or ``"fp16"`` (CUDA autocast with loss scaling).
        channels_last: use the channels-last memory format (faster convolutions on recent GPUs).
        progress: show a tqdm progress bar on stderr (rank 0).
        landmark_assignment: which keypoint the landmark losses (keypoint, heatmap) pull onto each landmark,
            fixed for the run (one distinct keypoint index per landmark, in the landmarks' order; ``-1``
            (``SKIPPED_LANDMARK``) leaves that landmark out, not all); empty: the nearest pairs over each batch,
            chosen again every step (:func:`~fomm.train.losses.landmark_keypoint_loss`).
    """

    num_epochs: int = 100
    num_repeats: int = 75
    epoch_milestones: tuple[int, ...] = (60, 90)
    lr_generator: float = 2e-4
    lr_kp_detector: float = 2e-4
    lr_discriminator: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    batch_size: int = 40
    num_workers: int = 4
    scales: tuple[float, ...] = DEFAULT_SCALES
    transform: TransformParams = field(default_factory=TransformParams)
    loss_weights: LossWeights = field(default_factory=LossWeights)
    checkpoint_every: int = 50
    checkpoint_unit: str = "epoch"
    keep_checkpoints: bool = False
    log_every: int = 10
    image_every: int = 500
    max_steps: int | None = None
    max_minutes: float | None = None
    seed: int = 0
    features: str = "auto"
    device: str = "cpu"
    amp: str = "off"
    channels_last: bool = False
    progress: bool = True
    landmark_assignment: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _int_at_least("num_epochs", self.num_epochs, 1)
        _int_at_least("num_repeats", self.num_repeats, 1)
        object.__setattr__(self, "epoch_milestones", tuple(self.epoch_milestones))
        for milestone in self.epoch_milestones:
            _int_at_least("epoch_milestones[]", milestone, 1)
        for name in ("lr_generator", "lr_kp_detector", "lr_discriminator"):
            _positive_number(name, getattr(self, name), allow_zero=True)
        betas = tuple(float(b) for b in self.betas)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ConfigError(f"train.betas must be two numbers in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", betas)
        _int_at_least("batch_size", self.batch_size, 1)
        _int_at_least("num_workers", self.num_workers, 0)
        scales = tuple(float(s) for s in self.scales)
        if not scales or not all(0 < s <= 1 for s in scales):
            raise ConfigError(f"train.scales must be non-empty numbers in (0, 1], got {self.scales!r}")
        object.__setattr__(self, "scales", scales)
        _int_at_least("checkpoint_every", self.checkpoint_every, 1)
        if self.checkpoint_unit not in CHECKPOINT_UNITS:
            raise ConfigError(f"train.checkpoint_unit must be 'epoch' or 'step', got {self.checkpoint_unit!r}")
        _int_at_least("log_every", self.log_every, 1)
        _int_at_least("image_every", self.image_every, 0)
        if self.max_steps is not None:
            _int_at_least("max_steps", self.max_steps, 1)
        if self.max_minutes is not None:
            _positive_number("max_minutes", self.max_minutes)
        _int_at_least("seed", self.seed, 0)
        if self.amp not in AMP_MODES:
            raise ConfigError(f"train.amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        weights = self.loss_weights
        if self.features.strip() == "none" and weights.uses_perceptual:
            raise ConfigError("train.features is 'none' but the perceptual loss weights are not 0")
        if not weights.uses_perceptual and weights.l1 == 0:
            raise ConfigError("no reconstruction loss: set perceptual weights (and features) or loss_weights.l1 > 0")
        ids = tuple(self.landmark_assignment)
        pulled = [i for i in ids if i != SKIPPED_LANDMARK]
        if (
            not all(isinstance(i, int) and not isinstance(i, bool) and i >= SKIPPED_LANDMARK for i in ids)
            or len(set(pulled)) != len(pulled)
            or (ids and not pulled)
        ):
            raise ConfigError(
                "train.landmark_assignment must be distinct keypoint indices >= 0 (-1: a landmark left out, not "
                f"all), got {list(ids)}"
            )
        if ids and weights.landmark_keypoints == 0 and weights.landmark_heatmap == 0:
            raise ConfigError(
                "train.landmark_assignment is set but loss_weights.landmark_keypoints and landmark_heatmap are 0"
            )
        object.__setattr__(self, "landmark_assignment", ids)

    @classmethod
    def from_original(cls, train_params: Mapping[str, Any], **overrides: Any) -> TrainConfig:
        """From an original YAML's ``train_params`` mapping (``checkpoint_freq`` is in epochs)."""
        params = yaml_mapping(train_params, "train_params")
        readers: dict[str, Callable[[Any, str], Any]] = {
            "num_epochs": yaml_int,
            "num_repeats": yaml_int,
            "epoch_milestones": yaml_ints,
            "lr_generator": yaml_float,
            "lr_discriminator": yaml_float,
            "lr_kp_detector": yaml_float,
            "batch_size": yaml_int,
            "scales": yaml_floats,
            "checkpoint_freq": yaml_int,
        }
        unknown = sorted(set(params) - set(readers) - _NESTED)
        if unknown:
            raise ConfigError(f"unknown train_params key(s): {', '.join(map(str, unknown))}")
        values: dict[str, Any] = {k: read(params[k], f"train_params.{k}") for k, read in readers.items() if k in params}
        if "checkpoint_freq" in values:
            values["checkpoint_every"] = values.pop("checkpoint_freq")
            values["checkpoint_unit"] = "epoch"
        if "transform_params" in params:
            values["transform"] = TransformParams.from_original(params["transform_params"])
        if "loss_weights" in params:
            values["loss_weights"] = LossWeights.from_original(params["loss_weights"])
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (inverse of :meth:`from_dict`)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Rebuild a config saved with :meth:`to_dict` (e.g. a run's ``train_config.json``)."""
        values = dict(data)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}")
        try:
            if isinstance(values.get("transform"), Mapping):
                values["transform"] = TransformParams(**values["transform"])
            if isinstance(values.get("loss_weights"), Mapping):
                values["loss_weights"] = LossWeights(**values["loss_weights"])
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"malformed training settings: {exc}") from exc


_NESTED = {"transform_params", "loss_weights"}


def load_train_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """The ``train_params`` of an original first-order-model YAML file as a :class:`TrainConfig`."""
    import yaml

    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML") from exc
    train = params.get("train_params") if isinstance(params, Mapping) else None
    if not isinstance(train, Mapping):
        raise ConfigError(f"config file {str(path)!r} has no 'train_params' section")
    try:
        return TrainConfig.from_original(train, **overrides)
    except ConfigError as exc:
        raise ConfigError(f"config file {str(path)!r}: {exc}") from exc


# --- distributed ---------------------------------------------------------------------------------------------


class DistributedInfo(NamedTuple):
    """Where this process stands: ``rank`` of ``world_size``; ``created`` if the trainer made the group."""

    rank: int
    world_size: int
    local_rank: int
    created: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: torch.device) -> tuple[DistributedInfo, torch.device]:
    """Join the process group when launched by torchrun (``RANK``/``WORLD_SIZE``), else a single process.

    Returns the process's place and its device (``cuda:LOCAL_RANK`` for CUDA under torchrun).
    """
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", 0))
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", local)
        return DistributedInfo(dist.get_rank(), dist.get_world_size(), local, False), device
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistributedInfo(0, 1, 0, False), device
    if not dist.is_available():
        raise TrainError("launched by torchrun but this torch build has no torch.distributed")
    local = int(os.environ.get("LOCAL_RANK", 0))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend)
    info = DistributedInfo(dist.get_rank(), dist.get_world_size(), local, True)
    logger.info("rank %d/%d: process group up (%s) on %s", info.rank, info.world_size, backend, device)
    return info, device


# --- data ----------------------------------------------------------------------------------------------------


class _Repeated(Dataset[Any]):
    """``num_repeats`` passes over a data set as one (the original ``DatasetRepeater``)."""

    def __init__(self, dataset: Dataset[Any], num_repeats: int) -> None:
        self.dataset = dataset
        self.num_repeats = num_repeats
        self.base = len(dataset)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.base * self.num_repeats

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index % self.base]


class _SeededItems(Dataset[Any]):
    """Items by ``(index, seed)``: item ``index`` of ``dataset`` drawn with the global RNGs (torch, numpy,
    ``random``) seeded by ``seed`` and restored afterwards, so that its randomness does not depend on which
    process loads it or on what that process loaded before."""

    def __init__(self, dataset: Dataset[Any]) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        python_state, numpy_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
            try:
                return self.dataset[index]
            finally:
                random.setstate(python_state)
                np.random.set_state(numpy_state)


class _ResumableSampler(DistributedSampler):
    """A :class:`DistributedSampler` (order from ``seed + epoch``) that can start mid-epoch; it yields
    ``(index, item_seed)`` for :class:`_SeededItems`, the seed a function of the run's seed, the rank, the epoch
    and the position in the epoch."""

    def __init__(self, dataset: Dataset[Any], *, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` indices of this process's share of the epoch."""
        self.start = start

    def item_seed(self, position: int) -> int:
        """The RNG seed of the item at ``position`` of this process's share of the current epoch."""
        key = ((self.seed * 1_000_003 + self.rank) * 1_000_033 + self.epoch) * 1_000_000_007 + position
        return key % (2**63 - 1)

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        indices = list(super().__iter__())
        return iter([(index, self.item_seed(p)) for p, index in enumerate(indices) if p >= self.start])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)


# --- the networks' forward pass (what DDP wraps) -----------------------------------------------------------------


class _GeneratorForward(NamedTuple):
    kp_source: Keypoints
    kp_driving: Keypoints
    generated: GeneratorOutput
    kp_transformed: Keypoints | None
    #: ``(2B, K, h, w)`` float32 log-heatmaps of the source then the driving frames (``None``: not asked for).
    log_heatmaps: torch.Tensor | None = None


class _GeneratorStep(nn.Module):
    """Keypoint detector + generator in one module, so that DDP sees one forward per step."""

    def __init__(self, kp_detector: nn.Module, generator: nn.Module, *, with_heatmaps: bool = False) -> None:
        super().__init__()
        self.kp_detector = kp_detector
        self.generator = generator
        self.with_heatmaps = with_heatmaps

    def forward(
        self, source: torch.Tensor, driving: torch.Tensor, transformed: torch.Tensor | None
    ) -> _GeneratorForward:
        log_heatmaps = None
        if self.with_heatmaps:
            kp_source, log_source = self.kp_detector.forward_with_heatmaps(source)
            kp_driving, log_driving = self.kp_detector.forward_with_heatmaps(driving)
            log_heatmaps = torch.cat((log_source, log_driving))
        else:
            kp_source = self.kp_detector(source)
            kp_driving = self.kp_detector(driving)
        generated = self.generator.forward_debug(source, kp_source, kp_driving)
        kp_transformed = self.kp_detector(transformed) if transformed is not None else None
        return _GeneratorForward(kp_source, kp_driving, generated, kp_transformed, log_heatmaps)


class _DiscriminatorStep(nn.Module):
    """The discriminator on the generated then the real pyramid (the original's order)."""

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(
        self, real: dict[str, torch.Tensor], fake: dict[str, torch.Tensor], kp: Keypoints
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        fake_maps = self.discriminator(fake, kp).prediction_maps
        real_maps = self.discriminator(real, kp).prediction_maps
        return real_maps, fake_maps


# --- visualisation ---------------------------------------------------------------------------------------------


def _colours(n: int) -> np.ndarray:
    import colorsys

    return np.array([colorsys.hsv_to_rgb(i / max(n, 1), 1.0, 1.0) for i in range(n)], dtype=np.float32)


def _draw_keypoints(image: np.ndarray, kp: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """``image`` ``(H, W, 3)`` float in ``[0, 1]``; ``kp`` ``(K, 2)`` xy in ``[-1, 1]``: filled discs."""
    h, w = image.shape[:2]
    radius = max(1.5, h / 64)
    yy, xx = np.mgrid[0:h, 0:w]
    out = image.copy()
    for (x, y), colour in zip(kp, colours, strict=True):
        cx, cy = (x + 1) / 2 * (w - 1), (y + 1) / 2 * (h - 1)
        out[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2] = colour
    return out


def make_image_grid(
    source: torch.Tensor,
    driving: torch.Tensor,
    prediction: torch.Tensor,
    occlusion: torch.Tensor,
    kp_source: torch.Tensor,
    kp_driving: torch.Tensor,
    transformed: torch.Tensor | None = None,
    kp_transformed: torch.Tensor | None = None,
    *,
    max_items: int = 4,
) -> np.ndarray:
    """One row per batch item: source | driving | [transformed] (keypoints drawn) | prediction | occlusion.

    Args:
        source, driving, prediction, transformed: ``(B, 3, H, W)`` RGB in ``[0, 1]``.
        occlusion: ``(B, 1, h, w)`` in ``[0, 1]`` (resized to ``H x W``).
        kp_source, kp_driving, kp_transformed: ``(B, K, 2)`` xy in ``[-1, 1]``.

    Returns:
        ``(rows * H, columns * W, 3)`` uint8 RGB.
    """
    n = min(max_items, source.shape[0])
    h, w = source.shape[2:]
    occlusion = nn.functional.interpolate(occlusion[:n].float(), size=(h, w), mode="bilinear", align_corners=False)

    def hwc(t: torch.Tensor) -> np.ndarray:
        return t[:n].detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()

    colours = _colours(kp_source.shape[1])

    def with_keypoints(images: torch.Tensor, kp: torch.Tensor) -> list[np.ndarray]:
        kps = kp[:n].detach().float().cpu().numpy()
        return [_draw_keypoints(im, k, colours) for im, k in zip(hwc(images), kps, strict=True)]

    columns = [with_keypoints(source, kp_source), with_keypoints(driving, kp_driving)]
    if transformed is not None and kp_transformed is not None:
        columns.append(with_keypoints(transformed, kp_transformed))
    columns.append(list(hwc(prediction)))
    columns.append(list(hwc(occlusion.expand(n, 3, h, w))))
    grid = np.concatenate([np.concatenate(column, axis=0) for column in columns], axis=1)
    return (grid * 255 + 0.5).astype(np.uint8)


# --- the trainer -------------------------------------------------------------------------------------------------


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Trains a :class:`fomm.Fomm` on a data set of ``{"source", "driving"}`` frame pairs.

    Args:
        model: the networks (random or loaded); with a discriminator for adversarial training.
        config: the run's :class:`TrainConfig`.
        dataset: any map-style data set whose items are ``{"source": (3, S, S), "driving": (3, S, S), ...}``
            float RGB in ``[0, 1]`` (e.g. :class:`fomm.train.data.FramesDataset`).
        out_dir: where logs, images and checkpoints go.
        features: a feature network to use instead of loading ``config.features`` (tests, custom losses).

    Raises:
        ConfigError: settings that do not fit the model or the machine.
        TrainError: a data set smaller than one batch per process.
        FeatureNetworkError: the perceptual-loss weights cannot be found or read.
    """

    def __init__(
        self,
        model: Fomm,
        config: TrainConfig,
        dataset: Dataset[Any],
        out_dir: str | Path,
        *,
        features: FeatureNetwork | None = None,
    ) -> None:
        self.config = config
        self.out_dir = Path(out_dir)
        self.dist, self.device = setup_distributed(torch.device(config.device))
        #: How the weights were made besides this run's settings (data, initial weights...), saved in every
        #: checkpoint's ``training`` record (:func:`fomm.checkpoint.read_training_record`).
        self.provenance: dict[str, Any] = {}
        #: The checkpoint :meth:`train` saved when an error stopped it (``None``: none, or no error).
        self.saved_on_error: Path | None = None
        self.train_seconds = 0.0  # training time of earlier processes of this run (resumed)
        self._started: float | None = None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"train.device is {config.device!r} but torch sees no CUDA device")
        if config.amp == "fp16" and self.device.type != "cuda":
            raise ConfigError("train.amp 'fp16' needs a CUDA device; use 'bf16' or 'off' on the CPU")
        if config.amp == "bf16" and self.device.type == "cpu" and (why := slow_cpu_bf16()):
            logger.warning("train.amp 'bf16': %s; 'off' (fp32) trains faster here", why)
        weights = config.loss_weights
        self.weights = weights
        self.use_gan = weights.adversarial
        if self.use_gan and model.discriminator is None:
            raise ConfigError("loss_weights.generator_gan > 0 needs a model built with a discriminator")
        num_kp = model.config.keypoint_detector.num_kp
        if any(i >= num_kp for i in config.landmark_assignment):
            raise ConfigError(
                f"train.landmark_assignment names keypoint {max(config.landmark_assignment)} but the model has "
                f"{num_kp} keypoints (0..{num_kp - 1})"
            )
        #: The fixed landmark assignment as a tensor, made once, without the skipped landmarks (``None``: nearest
        #: pairs every step), and the landmarks it pulls on (``None``: all).
        self._landmark_ids: torch.Tensor | None = None
        self._landmarks_pulled: torch.Tensor | None = None
        if config.landmark_assignment:
            ids = config.landmark_assignment
            pulled = [landmark for landmark, k in enumerate(ids) if k != SKIPPED_LANDMARK]
            self._landmark_ids = torch.tensor([ids[i] for i in pulled], dtype=torch.long, device=self.device)
            if len(pulled) < len(ids):
                self._landmarks_pulled = torch.tensor(pulled, dtype=torch.long, device=self.device)
        if model.discriminator is not None and not self.use_gan:
            logger.info("the model has a discriminator but generator_gan is 0: it is not trained (as the original)")
        if self.use_gan and model.discriminator is not None:
            blocks = model.config.discriminator.num_blocks
            if len(weights.feature_matching) < blocks:
                raise ConfigError(
                    f"loss_weights.feature_matching has {len(weights.feature_matching)} weights for "
                    f"{blocks} discriminator blocks"
                )

        seed = config.seed + self.dist.rank
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)

        # Networks: train mode, device, memory format; SyncBatchNorm and DDP when distributed.
        self.model = model.to(self.device).train()
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.dist.enabled:
            if self.device.type == "cuda":
                nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            else:
                logger.warning("SyncBatchNorm needs CUDA: on the CPU each process keeps its own batch statistics")
        generator_step: nn.Module = _GeneratorStep(
            self.model.kp_detector, self.model.generator, with_heatmaps=self.weights.landmark_heatmap != 0
        )
        discriminator_step: nn.Module | None = None
        if self.use_gan:
            assert self.model.discriminator is not None
            discriminator_step = _DiscriminatorStep(self.model.discriminator)
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            generator_step = nn.parallel.DistributedDataParallel(generator_step, device_ids=ids)
            if discriminator_step is not None:
                discriminator_step = nn.parallel.DistributedDataParallel(discriminator_step, device_ids=ids)
        self._generator_step = generator_step
        self._discriminator_step = discriminator_step

        # Optimizers and schedulers, as the original (one Adam per network; D's exists even when unused).
        def adam(module: nn.Module, lr: float) -> torch.optim.Adam:
            return torch.optim.Adam(module.parameters(), lr=lr, betas=config.betas)

        self.optimizers: dict[str, torch.optim.Optimizer] = {
            "generator": adam(self.model.generator, config.lr_generator),
            "kp_detector": adam(self.model.kp_detector, config.lr_kp_detector),
        }
        if self.model.discriminator is not None:
            self.optimizers["discriminator"] = adam(self.model.discriminator, config.lr_discriminator)
        self.schedulers = {
            name: torch.optim.lr_scheduler.MultiStepLR(opt, list(config.epoch_milestones), gamma=0.1)
            for name, opt in self.optimizers.items()
        }
        amp_scaling = config.amp == "fp16"
        self.scalers = {
            "generator": torch.amp.GradScaler(self.device.type, enabled=amp_scaling),
            "discriminator": torch.amp.GradScaler(self.device.type, enabled=amp_scaling),
        }

        # Losses.
        channels = model.config.keypoint_detector.num_channels
        self.pyramid = ImagePyramid(config.scales, channels).to(self.device)
        self.discriminator_pyramid: ImagePyramid | None = None
        if self.use_gan:
            self.discriminator_pyramid = ImagePyramid(model.config.discriminator.scales, channels).to(self.device)
        self.features: FeatureNetwork | None = None
        if weights.uses_perceptual:
            if features is None:
                features = load_feature_network(config.features, device=self.device)
            elif isinstance(features, nn.Module):
                features = features.to(self.device).eval().requires_grad_(False)
            self.features = features
            if isinstance(features, nn.Module) and config.channels_last:
                features.to(memory_format=torch.channels_last)

        # Data.
        self.dataset = dataset
        repeated = _Repeated(dataset, config.num_repeats) if config.num_repeats != 1 else dataset
        self.sampler = _ResumableSampler(
            repeated, num_replicas=self.dist.world_size, rank=self.dist.rank, seed=config.seed
        )
        self.steps_per_epoch = self.sampler.num_samples // config.batch_size
        if self.steps_per_epoch == 0:
            raise TrainError(
                f"the data set has {len(repeated)} items per epoch ({self.sampler.num_samples} per process): "
                f"fewer than one batch of {config.batch_size}; lower the batch size or add data"
            )
        self._loader_generator = torch.Generator()
        self.loader = DataLoader(
            _SeededItems(repeated),
            batch_size=config.batch_size,
            sampler=self.sampler,
            num_workers=config.num_workers,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
            generator=self._loader_generator,
        )

        # Progress.
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self._resumed = False
        self._log_file: Any = None
        self._tensorboard: Any = None
        self._last_log_time = time.perf_counter()
        self._last_log_step = 0
        self._warned_size = False

    # --- properties -------------------------------------------------------------------------------------------

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    @property
    def total_steps(self) -> int:
        """Steps the whole run will take (epochs x steps per epoch, capped by ``max_steps``)."""
        total = self.config.num_epochs * self.steps_per_epoch
        return min(total, self.config.max_steps) if self.config.max_steps is not None else total

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    def lr(self, name: str = "generator") -> float:
        return float(self.optimizers[name].param_groups[0]["lr"])

    # --- one step ---------------------------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.config.amp == "off":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _transform_generator(self) -> torch.Generator:
        """The random transforms of step ``step`` on rank ``rank`` (no state to save, same after a resume)."""
        key = ((self.config.seed * 1_000_003 + self.dist.rank) * 1_000_000_007 + self.step) % (2**63 - 1)
        return torch.Generator().manual_seed(key)

    def _discriminator_input(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        assert self.discriminator_pyramid is not None
        return {
            scale_key(s): self.discriminator_pyramid.downs[scale_key(s)](image)
            for s in self.discriminator_pyramid.scales
        }

    def train_step(self, batch: Mapping[str, Any], *, keep_outputs: bool = False) -> dict[str, Any]:
        """One generator (+ keypoint detector) update and, when adversarial, one discriminator update.

        Args:
            batch: ``{"source": (B, 3, S, S), "driving": (B, 3, S, S), ...}`` float RGB in ``[0, 1]``; an optional
                ``"driving_input"`` ``(B, 3, S, S)`` is what the keypoint detector sees of the driving frames
                (equivariance included); the reconstruction target stays ``"driving"``.
            keep_outputs: also return the tensors for an image grid under ``"outputs"``.

        Returns:
            ``{"losses": {name: 0-d tensor}, "total": 0-d tensor[, "outputs": {...}]}`` (detached).
        """
        cfg, weights = self.config, self.weights
        source = batch["source"].to(self.device, non_blocking=True)
        driving = batch["driving"].to(self.device, non_blocking=True)
        # The keypoint detector's copy of the driving frame (degraded/occluded by the data set), else the frame.
        driving_input = batch.get("driving_input")
        driving_input = driving if driving_input is None else driving_input.to(self.device, non_blocking=True)
        if cfg.channels_last:
            source = source.contiguous(memory_format=torch.channels_last)
            driving = driving.contiguous(memory_format=torch.channels_last)
            driving_input = driving_input.contiguous(memory_format=torch.channels_last)
        if not self._warned_size and source.shape[-1] != self.model.config.image_size:
            logger.warning(
                "frames are %dx%d, the model config says %d", *source.shape[-2:], self.model.config.image_size
            )
            self._warned_size = True

        # 1. Random transform of the driving frames (equivariance), drawn on the CPU from (seed, rank, step).
        transform = transformed = None
        if weights.equivariance_value != 0 or weights.equivariance_jacobian != 0:
            transform = RandomTpsTransform.sample(
                source.shape[0],
                cfg.transform,
                generator=self._transform_generator(),
                device=self.device,
                align_corners=self.model.config.align_corners,
            )
            transformed = transform.transform_frame(driving_input)

        # 2. Keypoints (driving ones from the detector's copy) and generator.
        with self._autocast():
            forward: _GeneratorForward = self._generator_step(source, driving_input, transformed)
        prediction = forward.generated.prediction.float()

        # 3. Reconstruction losses over the pyramid.
        losses: dict[str, torch.Tensor] = {}
        pyramid_real = self.pyramid(driving)
        pyramid_fake = self.pyramid(prediction)
        if self.features is not None:
            with self._autocast():
                losses["perceptual"] = perceptual_pyramid_loss(
                    self.features, pyramid_real, pyramid_fake, weights.perceptual
                )
        if weights.l1 != 0:
            losses["l1"] = l1_pyramid_loss(pyramid_real, pyramid_fake, weights.l1)

        # 4. Adversarial terms (discriminator frozen, keypoints detached, as the original).
        kp_detached = forward.kp_driving.detach()
        if self.use_gan:
            discriminator = self.model.discriminator
            assert discriminator is not None
            discriminator.requires_grad_(False)
            try:
                with self._autocast():
                    fake_out = discriminator(self._discriminator_input(prediction), kp_detached)
                    with torch.no_grad():
                        real_out = discriminator(self._discriminator_input(driving), kp_detached)
            finally:
                discriminator.requires_grad_(True)
            losses["generator_gan"] = lsgan_generator_loss(fake_out.prediction_maps, weights.generator_gan)
            if any(w != 0 for w in weights.feature_matching):
                losses["feature_matching"] = feature_matching_loss(
                    real_out.feature_maps, fake_out.feature_maps, weights.feature_matching
                )

        # 5. Equivariance.
        if transform is not None and forward.kp_transformed is not None:
            value, jacobian = equivariance_losses(
                forward.kp_driving,
                forward.kp_transformed,
                transform,
                value_weight=weights.equivariance_value,
                jacobian_weight=weights.equivariance_jacobian,
            )
            if weights.equivariance_value != 0:
                losses["equivariance_value"] = value
            if weights.equivariance_jacobian != 0:
                losses["equivariance_jacobian"] = jacobian

        # 6. Keypoints tied to face parts found by a landmark detector (the data set's landmarks).
        if weights.uses_landmarks:
            if "landmarks" not in batch or "landmarks_valid" not in batch:
                raise TrainError(
                    "a landmark loss (loss_weights.face_anchor / landmark_keypoints / landmark_heatmap / "
                    "landmark_roll / mouth_region) is on but the batch has no "
                    "face landmarks (DatasetConfig.landmarks)"
                )
            landmarks = batch["landmarks"].to(self.device)  # (B, 2, L, 2): source, driving (L = 5 or 7)
            found = batch["landmarks_valid"].to(self.device)  # (B, 2)
            both_values = torch.cat((forward.kp_source.value, forward.kp_driving.value))
            both_landmarks = torch.cat((landmarks[:, 0], landmarks[:, 1]))
            both_found = torch.cat((found[:, 0], found[:, 1]))
            if weights.face_anchor != 0:
                losses["face_anchor"] = face_anchor_loss(  # the face frame needs YuNet's 5 (first) points
                    both_values, both_landmarks[:, :5], both_found, weight=weights.face_anchor
                )
            assignment = self._landmark_ids
            if assignment is None and (weights.landmark_keypoints != 0 or weights.landmark_heatmap != 0):
                assignment = match_keypoints_to_landmarks(both_values, both_landmarks, both_found)
            if self._landmarks_pulled is not None:  # a fixed assignment that leaves landmarks out
                both_landmarks = both_landmarks[:, self._landmarks_pulled]
            if weights.landmark_keypoints != 0:
                losses["landmark_keypoints"] = landmark_keypoint_loss(
                    both_values,
                    both_landmarks,
                    both_found,
                    weight=weights.landmark_keypoints,
                    assignment=assignment,
                )
            if weights.landmark_heatmap != 0:  # the forward pass gave heatmaps (with_heatmaps)
                losses["landmark_heatmap"] = landmark_heatmap_loss(
                    forward.log_heatmaps, both_landmarks, both_found, assignment, weight=weights.landmark_heatmap
                )
            if weights.landmark_roll != 0:  # all landmarks: the eyes come first
                losses["landmark_roll"] = landmark_roll_loss(
                    forward.kp_source.jacobian,
                    forward.kp_driving.jacobian,
                    landmarks[:, 0],
                    landmarks[:, 1],
                    found[:, 0] & found[:, 1],
                    weight=weights.landmark_roll,
                )
            if weights.mouth_region != 0:  # the driving frame's mouth, generated vs real
                losses["mouth_region"] = mouth_region_loss(
                    prediction,
                    driving,
                    landmarks[:, 1],
                    found[:, 1],
                    align_corners=self.model.config.align_corners,
                    weight=weights.mouth_region,
                )

        # 7. Generator + keypoint detector update.
        total = torch.stack([v.float() for v in losses.values()]).sum()
        if not torch.isfinite(total):
            parts = ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items())
            raise TrainError(f"the loss is not finite at step {self.step + 1} ({parts})")
        scaler = self.scalers["generator"]
        scaler.scale(total).backward()
        for name in ("generator", "kp_detector"):
            scaler.step(self.optimizers[name])
            self.optimizers[name].zero_grad(set_to_none=True)
        scaler.update()

        # 8. Discriminator update on the detached prediction.
        if self._discriminator_step is not None:
            optimizer = self.optimizers["discriminator"]
            optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                real_maps, fake_maps = self._discriminator_step(
                    self._discriminator_input(driving), self._discriminator_input(prediction.detach()), kp_detached
                )
            loss_d = lsgan_discriminator_loss(real_maps, fake_maps, weights.discriminator_gan)
            d_scaler = self.scalers["discriminator"]
            d_scaler.scale(loss_d).backward()
            d_scaler.step(optimizer)
            optimizer.zero_grad(set_to_none=True)
            d_scaler.update()
            losses["discriminator_gan"] = loss_d

        result: dict[str, Any] = {
            "losses": {k: v.detach() for k, v in losses.items()},
            "total": total.detach(),
        }
        if keep_outputs:
            generated = forward.generated
            result["outputs"] = {
                "source": source.detach(),
                "driving": driving.detach(),
                "prediction": prediction.detach(),
                "occlusion": generated.motion.occlusion.detach(),
                "kp_source": forward.kp_source.value.detach(),
                "kp_driving": forward.kp_driving.value.detach(),
                "transformed": transformed.detach() if transformed is not None else None,
                "kp_transformed": (
                    forward.kp_transformed.value.detach() if forward.kp_transformed is not None else None
                ),
            }
        return result

    # --- the loop ---------------------------------------------------------------------------------------------

    def _out_of_time(self) -> bool:
        limit = self.config.max_minutes
        if limit is None:
            return False
        late = time.perf_counter() - self._started >= 60.0 * limit
        if self.dist.enabled:  # every rank must stop at the same step
            flag = torch.tensor([1.0 if late else 0.0], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            late = bool(flag.item())
        return late

    def _already_done(self) -> str | None:
        """Why the run has no step left (its --max-steps or epochs reached), else ``None``."""
        cfg = self.config
        if cfg.max_steps is not None and self.step >= cfg.max_steps:
            return f"the run is at step {self.step} and --max-steps is {cfg.max_steps}; give a larger --max-steps"
        if self.epoch >= cfg.num_epochs:
            return f"the run has done its {cfg.num_epochs} epochs; give more epochs or --max-steps"
        return None

    def _should_stop(self) -> bool:
        if self._already_done() is not None:
            return True
        if self._out_of_time():
            logger.info("time limit of %s minutes reached at step %d", self.config.max_minutes, self.step)
            return True
        return False

    def train(self) -> Path | None:
        """Run until ``num_epochs`` or ``max_steps``; writes a final checkpoint. Returns its path (rank 0).

        A ``KeyboardInterrupt`` writes a checkpoint before it propagates, and so does any other exception (e.g. a
        :class:`~fomm.train.data.DatasetError` from a video that cannot be decoded): its path is then in
        :attr:`saved_on_error` (``None`` when nothing could be saved).
        """
        cfg = self.config
        if self.is_main:
            self._open_logs()
            logger.info(
                "training %s: %d steps/epoch, batch %d x %d process(es), epoch %d, step %d of %d, on %s",
                self.model.config.name,
                self.steps_per_epoch,
                cfg.batch_size,
                self.dist.world_size,
                self.epoch,
                self.step,
                self.total_steps,
                self.device,
            )
            done = self._already_done()
            if done:
                logger.warning("nothing to train: %s", done)
        progress = self._progress()
        self._started = time.perf_counter()
        self._last_log_time = time.perf_counter()
        self._last_log_step = self.step
        try:
            while not self._should_stop():
                self.sampler.set_epoch(self.epoch)
                self.sampler.set_start(self.batch_in_epoch * cfg.batch_size)
                self._loader_generator.manual_seed(cfg.seed * 1_000_003 + self.epoch)
                for batch in self.loader:
                    want_images = self.is_main and cfg.image_every > 0 and (self.step + 1) % cfg.image_every == 0
                    result = self.train_step(batch, keep_outputs=want_images)
                    self.step += 1
                    self.batch_in_epoch += 1
                    if progress is not None:
                        progress.update(1)
                    if self.step % cfg.log_every == 0:
                        self._log(result, progress)
                    if want_images:
                        self._save_images(result["outputs"])
                    end_of_epoch = self.batch_in_epoch >= self.steps_per_epoch
                    if end_of_epoch:
                        self._end_epoch()
                    if self._checkpoint_due(end_of_epoch):
                        self.save()
                    if end_of_epoch or self._should_stop():
                        break
        except KeyboardInterrupt:
            logger.warning("interrupted at step %d: saving a checkpoint", self.step)
            self.save()
            raise
        except Exception as exc:
            # A video that turns out undecodable mid-run (they are decoded lazily), a non-finite loss, ...:
            # keep the steps done since the last periodic checkpoint, then let the error end the run.
            self.saved_on_error = self._save_on_error(exc)
            raise
        finally:
            if progress is not None:
                progress.close()
        path = self.save()
        if self.is_main:
            logger.info("finished at step %d (epoch %d): %s", self.step, self.epoch, path)
        return path if self.is_main else None

    def _save_on_error(self, exc: BaseException) -> Path | None:
        """Save the state reached when ``exc`` stops :meth:`train` (rank 0); ``None`` when nothing was saved.

        Weights that are no longer finite are not saved (they would replace the last good checkpoint), nor are
        any when saving fails too (logged; the original error is what the caller sees).
        """
        if not self.is_main:
            return None
        reason = one_line(exc)
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            logger.error(
                "stopped at step %d by an error (%s): the weights are not finite, no checkpoint saved "
                "(the last one in %s is kept)",
                self.step,
                reason,
                self.out_dir,
            )
            return None
        logger.warning("stopped at step %d by an error (%s): saving a checkpoint", self.step, reason)
        try:
            return self.save()
        except Exception as save_exc:  # keep the first error as the one reported
            logger.error("could not save a checkpoint at step %d: %s", self.step, save_exc)
            return None

    def _checkpoint_due(self, end_of_epoch: bool) -> bool:
        cfg = self.config
        if cfg.checkpoint_unit == "step":
            return self.step % cfg.checkpoint_every == 0
        return end_of_epoch and self.epoch % cfg.checkpoint_every == 0

    def _end_epoch(self) -> None:
        with warnings.catch_warnings():
            # fp16 loss scaling skips the optimizer step of overflowing steps; torch then warns that the
            # scheduler stepped first, which is harmless here.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            for scheduler in self.schedulers.values():
                scheduler.step()
        self.epoch += 1
        self.batch_in_epoch = 0

    def _progress(self) -> Any:
        if not (self.is_main and self.config.progress):
            return None
        from tqdm import tqdm

        return tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True, desc="train")

    # --- logs and images --------------------------------------------------------------------------------------

    def _open_logs(self) -> None:
        if self._log_file is not None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.out_dir / LOG_NAME
        if self._resumed and log_path.exists():
            # Records past the checkpoint come back when those steps are trained again: drop them.
            kept = [line for line in log_path.read_text().splitlines() if line.strip() and _step_of(line) <= self.step]
            log_path.write_text("".join(line + "\n" for line in kept))
            self._log_file = log_path.open("a")
        else:
            self._log_file = log_path.open("w")
        (self.out_dir / "train_config.json").write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.info("TensorBoard is not installed (pip install 'fomm-live[train]'): losses go to %s only", log_path)
        else:
            self._tensorboard = SummaryWriter(log_dir=str(self.out_dir / "tensorboard"), purge_step=self.step + 1)

    def _log(self, result: Mapping[str, Any], progress: Any) -> None:
        names = list(result["losses"])
        values = torch.stack([result["losses"][n].float() for n in names] + [result["total"].float()])
        if self.dist.enabled:
            dist.all_reduce(values)
            values /= self.dist.world_size
        if not self.is_main:
            return
        now = time.perf_counter()
        seconds = (now - self._last_log_time) / max(1, self.step - self._last_log_step)
        self._last_log_time, self._last_log_step = now, self.step
        numbers = [float(v) for v in values.cpu()]
        record: dict[str, Any] = {"step": self.step, "epoch": self.epoch, "lr": self.lr()}
        record.update(zip([*names, "total"], numbers, strict=True))
        record["seconds_per_step"] = round(seconds, 4)
        assert self._log_file is not None
        self._log_file.write(json.dumps(record) + "\n")
        self._log_file.flush()
        if self._tensorboard is not None:
            for name, number in zip([*names, "total"], numbers, strict=True):
                self._tensorboard.add_scalar(f"loss/{name}", number, self.step)
            self._tensorboard.add_scalar("lr", record["lr"], self.step)
            self._tensorboard.add_scalar("seconds_per_step", seconds, self.step)
        if progress is not None:
            progress.set_postfix(loss=f"{numbers[-1]:.3f}", epoch=self.epoch, refresh=False)

    def _save_images(self, outputs: Mapping[str, Any]) -> Path:
        grid = make_image_grid(
            outputs["source"],
            outputs["driving"],
            outputs["prediction"],
            outputs["occlusion"],
            outputs["kp_source"],
            outputs["kp_driving"],
            outputs["transformed"],
            outputs["kp_transformed"],
        )
        from ..media._deps import import_cv2

        cv2 = import_cv2()
        path = self.out_dir / "images" / f"step-{self.step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        if self._tensorboard is not None:
            self._tensorboard.add_image("reconstruction", grid, self.step, dataformats="HWC")
        return path

    def close(self) -> None:
        """Close the log files and leave the process group if this trainer joined it."""
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
        if self.dist.created and dist.is_initialized():
            # Wait for rank 0's last checkpoint; a rank leaving early can abort its peers' Gloo transport.
            dist.barrier()
            dist.destroy_process_group()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- checkpoints ------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the model weights that a resumed run needs (tensors and plain containers)."""
        return {
            "version": STATE_VERSION,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "world_size": self.dist.world_size,
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "scalers": {k: v.state_dict() for k, v in self.scalers.items()},
            "rng": _rng_state(),
            "train_config": json.dumps(self.config.to_dict()),
            "train_seconds": self._seconds_so_far(),
            "provenance": json.dumps(self.provenance, default=str),
        }

    def _seconds_so_far(self) -> float:
        """Training time of this run in all its processes so far (seconds)."""
        running = 0.0 if self._started is None else time.perf_counter() - self._started
        return self.train_seconds + running

    def training_record(self) -> dict[str, Any]:
        """What a checkpoint records of how it was made (see :attr:`provenance`)."""
        if self.device.type == "cuda":
            device = f"{torch.cuda.get_device_name(self.device)} x {self.dist.world_size}"
        else:
            device = f"cpu ({torch.get_num_threads()} threads) x {self.dist.world_size}"
        return {
            "steps": self.step,
            "seconds": round(self._seconds_so_far(), 3),
            "device": device,
            "batch_size": self.config.batch_size * self.dist.world_size,
            "amp": self.config.amp,
            "lr": self.config.lr_generator,
            "lr_kp_detector": self.config.lr_kp_detector,
            "features": self.config.features,
            "scales": list(self.config.scales),
            "face_anchor": self.config.loss_weights.face_anchor,
            "landmark_keypoints": self.config.loss_weights.landmark_keypoints,
            **(
                {"landmark_heatmap": self.config.loss_weights.landmark_heatmap}
                if self.config.loss_weights.landmark_heatmap
                else {}
            ),
            **(
                {"landmark_assignment": list(self.config.landmark_assignment)}
                if self.config.landmark_assignment
                else {}
            ),
            "sigma_affine": self.config.transform.sigma_affine,
            **(
                {"landmark_roll": self.config.loss_weights.landmark_roll}
                if self.config.loss_weights.landmark_roll
                else {}
            ),
            **(
                {"mouth_region": self.config.loss_weights.mouth_region} if self.config.loss_weights.mouth_region else {}
            ),
            "equivariance_value": self.config.loss_weights.equivariance_value,
            "equivariance_jacobian": self.config.loss_weights.equivariance_jacobian,
            "torch": torch.__version__,
            **self.provenance,
        }

    def save(self) -> Path | None:
        """Write ``checkpoint.safetensors`` + ``train_state.pt`` (rank 0; other ranks return ``None``)."""
        if not self.is_main:
            return None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state_path = self.out_dir / STATE_NAME
        tmp = state_path.with_name(state_path.name + ".tmp")
        torch.save(self.state_dict(), tmp)
        tmp.replace(state_path)
        record = self.training_record()
        path = save_checkpoint(self.checkpoint_path, self.model, step=self.step, training=record)
        if self.config.keep_checkpoints:
            snapshot = self.out_dir / f"checkpoint-{self.step:08d}.safetensors"
            save_checkpoint(snapshot, self.model, step=self.step, training=record)
        logger.info("checkpoint at step %d: %s", self.step, path)
        return path

    def resume(self, path: str | Path) -> None:
        """Continue a run from ``checkpoint.safetensors`` (or its folder) and the ``train_state.pt`` beside it.

        Raises:
            TrainError: no ``train_state.pt``, or one from another step than the checkpoint.
            CheckpointError: a checkpoint that does not fit the model.
        """
        path = Path(path)
        if path.is_dir():
            path = path / CHECKPOINT_NAME
        state_path = path.parent / STATE_NAME
        if not state_path.is_file():
            raise TrainError(
                f"cannot resume from {str(path)!r}: no {STATE_NAME} beside it (to start from weights only, "
                "load them into the model first, e.g. python -m fomm.train --init)"
            )
        loaded = load_checkpoint(
            path, self.model.config, with_discriminator=self.model.discriminator is not None, device="cpu"
        )
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise TrainError(f"{str(state_path)!r} is not a readable training state: {exc}") from exc
        if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
            raise TrainError(f"{str(state_path)!r} is not a fomm-live training state (version {STATE_VERSION})")
        if int(state["step"]) != loaded.step:
            raise TrainError(
                f"{str(state_path)!r} is from step {state['step']} but {str(path)!r} from step {loaded.step}"
            )
        missing = sorted(set(self.optimizers) - set(state["optimizers"]))
        if missing:
            raise TrainError(f"{str(state_path)!r} has no optimizer state for {', '.join(missing)}")
        if int(state.get("world_size", 1)) != self.dist.world_size:
            logger.warning(
                "resuming a %d-process run with %d process(es): the data order differs from the original run",
                state.get("world_size", 1),
                self.dist.world_size,
            )
        with torch.no_grad():
            self.model.load_state_dict(loaded.model.state_dict())
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            if name in state["schedulers"]:
                scheduler.load_state_dict(state["schedulers"][name])
        for name, scaler in self.scalers.items():
            if state["scalers"].get(name):
                scaler.load_state_dict(state["scalers"][name])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        if state.get("provenance"):
            self.provenance = {**json.loads(state["provenance"]), **self.provenance}
        if self.dist.world_size == int(state.get("world_size", 1)):
            _set_rng_state(state["rng"])
        self._resumed = True
        logger.info("resumed %s at step %d (epoch %d)", path, self.step, self.epoch)

    def export_original(self, path: str | Path) -> Path:
        """Write the original ``.pth.tar`` layout: ``generator``, ``kp_detector``, ``discriminator``,
        ``optimizer_*`` and ``epoch`` (finished epochs, so the original ``train.py`` resumes at the next one).
        """
        model = self.model
        data: dict[str, Any] = {
            "generator": model.generator.state_dict(),
            "kp_detector": model.kp_detector.state_dict(),
            "optimizer_generator": self.optimizers["generator"].state_dict(),
            "optimizer_kp_detector": self.optimizers["kp_detector"].state_dict(),
            "epoch": self.epoch,
        }
        if model.discriminator is not None:
            data["discriminator"] = model.discriminator.state_dict()
            data["optimizer_discriminator"] = self.optimizers["discriminator"].state_dict()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save({k: _to_cpu(v) for k, v in data.items()}, tmp)
        tmp.replace(path)
        return path


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, Mapping):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v) for v in value)
    return value


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return 0
