"""Training and evaluation data in the original first-order-model layout.

A data set is a folder ``root`` with ``root/train/<video>`` and ``root/test/<video>``, where a video is

* a folder of frames (PNG, JPEG, ...; natural order: ``2.png`` before ``10.png``),
* a video file (``.mp4``, ``.avi``, ``.mov``, ``.mkv``, ``.webm``) or an animated ``.gif``,
* a horizontal strip image (``.png`` / ``.jpg``): frames side by side, each as wide as the strip is high
  (square frames), else ``image_size`` wide.

:class:`FramesDataset` yields pairs of frames of one video (``source``, ``driving``), as the original
``FramesDataset``; :class:`VideoReconstructionDataset` yields whole videos for evaluation. Frames are
resized to ``image_size`` squares (the aspect ratio is not kept: prepare face-centred square crops first, e.g.
with ``fomm prepare-data``). Decoded videos are kept in memory, uint8, in a per-process LRU cache (each
DataLoader worker has its own).

Videos named ``ID#anything`` (e.g. ``id10001#7w0IBEWc9Qw#000.mp4``) belong to the identity ``ID``; with
``id_sampling`` a training epoch iterates identities rather than videos, as the original did for VoxCeleb.

Randomness comes from torch's default generator, which DataLoader seeds differently in every worker.
"""

from __future__ import annotations

import logging
import math
import re
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import Dataset

from ..cli_errors import one_line
from .names import LANDMARK_POINT_CHOICES, DatasetError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "SPLITS",
    "STRIP_SUFFIXES",
    "VIDEO_FILE_SUFFIXES",
    "DatasetConfig",
    "DatasetError",
    "FramesDataset",
    "JitterParams",
    "LoadedVideo",
    "VideoReconstructionDataset",
    "apply_jitter",
    "augment_pair",
    "list_videos",
    "load_video",
    "sample_jitter",
    "video_id",
]

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "test")
#: Video containers decoded with PyAV (``.gif`` included).
VIDEO_FILE_SUFFIXES: frozenset[str] = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif"})
#: Still images read as horizontal strips of frames.
STRIP_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg"})
#: Frame rate reported for folders of frames and strips.
DEFAULT_FPS = 25.0
_KINDS = "folders of frames, .mp4/.avi/.mov/.mkv/.webm/.gif files or .png/.jpg strips"


# --- configuration ------------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class DatasetConfig:
    """What :class:`FramesDataset` reads and how it augments.

    Attributes:
        root: data set folder holding ``train/`` and ``test/``.
        image_size: side ``S`` of the square frames returned (frames of another size are resized).
        id_sampling: training epochs iterate identities (``ID#...`` video names), one random video of each.
        num_repeats: the epoch length is multiplied by this (the original ``DatasetRepeater``).
        augment: apply the augmentations below (training split only).
        horizontal_flip: flip both frames of a pair left-right with probability 1/2.
        time_flip: swap source and driving with probability 1/2.
        brightness: colour jitter: brightness factor drawn from ``[1 - b, 1 + b]``; ``b`` in ``[0, 1]``.
        contrast: contrast factor drawn from ``[1 - c, 1 + c]``; ``c`` in ``[0, 1]``.
        saturation: saturation factor drawn from ``[1 - s, 1 + s]``; ``s`` in ``[0, 1]``.
        hue: hue shift drawn from ``[-h, h]`` (fraction of the colour circle); ``h`` in ``[0, 0.5]``.
        split: ``"train"`` (random pairs, augmented) or ``"test"`` (deterministic pairs, not augmented).
        max_frames_per_video: read only the first N frames of each video (``None``: all).
        cache_mb: decoded frames kept in memory per process (LRU over videos); 0 decodes on every access.
        webcam_aug: probability that the keypoint detector's copy of a driving frame (``"driving_input"``) is
            degraded like a webcam frame (blur, noise, exposure, JPEG, downscale; :mod:`fomm.train.augment`);
            0 (default) adds no ``"driving_input"``.
        occluders: probability that a synthetic occluder (ellipse or hand-like blob, flat colour or another
            video's texture) is pasted over the keypoint detector's copy of a driving frame; 0 (default): none.
        shape_aug: probability that both frames of a pair are warped by one random face-shape change (wider,
            narrower, longer, sheared, locally bent; :func:`fomm.train.augment.reshape_pair`): the same motion by
            a differently shaped face; 0 (default): never.
        tilt_aug: probability that the driving frame alone is turned about its centre by a random angle within
            ``+-TILT_DEGREES`` (:func:`fomm.train.augment.tilt_frame`): a head tilt between the two frames that
            the videos may lack, for the keypoints and jacobians to follow; 0 (default): never.
        landmarks: add each frame's face landmarks (found on the final augmented frames) to the items, for the
            landmark losses (``--face-anchor``, ``--landmark-keypoints``).
        landmark_points: which landmarks: ``"yunet"`` (default), YuNet's 5 points (eye centres, nose tip, mouth
            corners); ``"facemesh"``, 7 points from FaceMesh (the same five and the inner upper and lower lip,
            :class:`fomm.media.faces.FaceMeshParts`), so that a keypoint can follow the mouth opening.
    """

    root: Path
    image_size: int = 256
    id_sampling: bool = False
    num_repeats: int = 1
    augment: bool = True
    horizontal_flip: bool = True
    time_flip: bool = True
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.1
    split: str = "train"
    max_frames_per_video: int | None = None
    cache_mb: float = 1024.0
    webcam_aug: float = 0.0
    occluders: float = 0.0
    shape_aug: float = 0.0
    tilt_aug: float = 0.0
    landmarks: bool = False
    landmark_points: str = "yunet"

    def __post_init__(self) -> None:
        if not isinstance(self.root, str | Path):
            raise DatasetError(f"DatasetConfig.root must be a path, got {self.root!r}")
        object.__setattr__(self, "root", Path(self.root))
        if not _is_int(self.image_size) or self.image_size < 2:
            raise DatasetError(f"DatasetConfig.image_size must be an integer >= 2, got {self.image_size!r}")
        if not _is_int(self.num_repeats) or self.num_repeats < 1:
            raise DatasetError(f"DatasetConfig.num_repeats must be an integer >= 1, got {self.num_repeats!r}")
        for name in ("id_sampling", "augment", "horizontal_flip", "time_flip", "landmarks"):
            if not isinstance(getattr(self, name), bool):
                raise DatasetError(f"DatasetConfig.{name} must be true or false, got {getattr(self, name)!r}")
        if self.landmark_points not in LANDMARK_POINT_CHOICES:
            raise DatasetError(
                f"DatasetConfig.landmark_points must be one of {', '.join(LANDMARK_POINT_CHOICES)}, got "
                f"{self.landmark_points!r}"
            )
        for name, top in (
            ("brightness", 1.0),
            ("contrast", 1.0),
            ("saturation", 1.0),
            ("hue", 0.5),
            ("webcam_aug", 1.0),
            ("occluders", 1.0),
            ("shape_aug", 1.0),
            ("tilt_aug", 1.0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= top:
                raise DatasetError(f"DatasetConfig.{name} must be a number in [0, {top:g}], got {value!r}")
        if self.split not in SPLITS:
            raise DatasetError(f"DatasetConfig.split must be 'train' or 'test', got {self.split!r}")
        frames = self.max_frames_per_video
        if frames is not None and (not _is_int(frames) or frames < 2):
            raise DatasetError(f"DatasetConfig.max_frames_per_video must be None or an integer >= 2, got {frames!r}")
        cache = self.cache_mb
        if isinstance(cache, bool) or not isinstance(cache, int | float) or not (cache >= 0 and math.isfinite(cache)):
            raise DatasetError(f"DatasetConfig.cache_mb must be a number >= 0, got {cache!r}")


# --- finding and decoding videos ----------------------------------------------------------------------------


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _is_video(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    if path.is_dir():
        return True
    return path.is_file() and path.suffix.lower() in VIDEO_FILE_SUFFIXES | STRIP_SUFFIXES


def list_videos(folder: str | Path) -> list[Path]:
    """The videos directly inside ``folder`` (see the module docstring), in natural order.

    Hidden entries and other files (``README``, ``.json``, ...) are skipped.
    """
    folder = Path(folder)
    videos = [p for p in folder.iterdir() if _is_video(p)]
    skipped = sum(1 for p in folder.iterdir() if not p.name.startswith(".")) - len(videos)
    if skipped:
        logger.debug("%s: %d entries are not videos and are skipped", folder, skipped)
    return sorted(videos, key=lambda p: _natural_key(p.name))


def video_id(path: str | Path) -> str:
    """The identity of a video: its name up to the first ``#`` (``id10001#abc#000.mp4`` -> ``id10001``);
    a name without ``#`` is its own identity (its stem for a file)."""
    path = Path(path)
    if "#" in path.name:
        return path.name.split("#", 1)[0]
    return path.name if path.is_dir() else path.stem


@dataclass(frozen=True)
class LoadedVideo:
    """A decoded video.

    Attributes:
        frames: ``(T, S, S, 3)`` uint8 RGB in ``[0, 255]``, ``T >= 2``.
        fps: frame rate (25 for folders and strips).
        original_size: ``(width, height)`` of the frames before resizing.
    """

    frames: np.ndarray
    fps: float
    original_size: tuple[int, int]


def _read_folder(path: Path, max_frames: int | None) -> list[np.ndarray]:
    from fomm.media.image import load_image
    from fomm.media.video import list_image_files

    files = list_image_files(path)
    if not files:
        raise DatasetError(f"video folder {str(path)!r} holds no image frames (expected .png or .jpg files)")
    if max_frames is not None:
        files = files[:max_frames]
    frames: list[np.ndarray] = []
    for file in files:
        frame = load_image(file)
        if frames and frame.shape != frames[0].shape:
            (h0, w0), (h, w) = frames[0].shape[:2], frame.shape[:2]
            raise DatasetError(
                f"video folder {str(path)!r} has frames of mixed sizes: {files[0].name} is {w0}x{h0}, "
                f"{file.name} is {w}x{h}"
            )
        frames.append(frame)
    return frames


def _read_strip(path: Path, image_size: int, max_frames: int | None) -> list[np.ndarray]:
    from fomm.media.image import load_image

    strip = load_image(path)
    height, width = strip.shape[:2]
    if width % height == 0:
        frame_width = height
    elif width % image_size == 0:
        frame_width = image_size
    else:
        raise DatasetError(
            f"strip {str(path)!r} is {width}x{height}: its width is not a multiple of its height "
            f"(square frames) or of image_size {image_size}"
        )
    count = width // frame_width
    if max_frames is not None:
        count = min(count, max_frames)
    return [strip[:, k * frame_width : (k + 1) * frame_width] for k in range(count)]


def _read_video_file(path: Path, max_frames: int | None) -> tuple[list[np.ndarray], float]:
    from fomm.media.video import open_frames

    with open_frames(path, max_frames=max_frames) as source:
        fps = float(source.info.fps)
        frames = list(source)
    return frames, fps


def load_video(path: str | Path, image_size: int, *, max_frames: int | None = None) -> LoadedVideo:
    """Decode a whole video (any kind of the module docstring) into ``(T, S, S, 3)`` uint8 RGB frames.

    Frames whose size is not ``image_size`` squared are resized (area averaging when shrinking).

    Raises:
        DatasetError: unknown kind, a file that cannot be decoded, frames of mixed sizes in a folder, a strip
            of the wrong width, or fewer than 2 frames. One line naming the file.
    """
    import numpy as np

    from fomm.media.errors import MediaError
    from fomm.media.image import resize

    path = Path(path)
    suffix = path.suffix.lower()
    fps = DEFAULT_FPS
    try:
        if path.is_dir():
            frames = _read_folder(path, max_frames)
        elif not path.is_file():
            raise DatasetError(f"video {str(path)!r} does not exist")
        elif suffix in STRIP_SUFFIXES:
            frames = _read_strip(path, image_size, max_frames)
        elif suffix in VIDEO_FILE_SUFFIXES:
            frames, fps = _read_video_file(path, max_frames)
        else:
            raise DatasetError(f"{str(path)!r} is not a video (expected one of: {_KINDS})")
    except MediaError as exc:
        raise DatasetError(f"cannot decode {str(path)!r}: {one_line(exc)}") from exc
    except OSError as exc:
        raise DatasetError(f"cannot read {str(path)!r}: {exc.strerror or one_line(exc)}") from exc
    if len(frames) < 2:
        raise DatasetError(f"video {str(path)!r} has {len(frames)} frame(s); at least 2 are needed")
    height, width = frames[0].shape[:2]
    out = np.empty((len(frames), image_size, image_size, 3), dtype=np.uint8)
    for k, frame in enumerate(frames):
        out[k] = resize(np.ascontiguousarray(frame), image_size, image_size)
    return LoadedVideo(out, fps, (int(width), int(height)))


class _FrameCache:
    """Decoded videos by path, least recently used evicted beyond ``max_bytes`` (the newest always stays)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[Path, LoadedVideo] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Path) -> LoadedVideo | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: Path, video: LoadedVideo) -> None:
        if self.max_bytes <= 0:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= old.frames.nbytes
        self._items[key] = video
        self.bytes += video.frames.nbytes
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, evicted = self._items.popitem(last=False)
            self.bytes -= evicted.frames.nbytes


def _find_videos(root: Path, split: str) -> list[Path]:
    if not root.exists():
        raise DatasetError(f"dataset root {str(root)!r} does not exist (expected a folder with train/ and test/)")
    if not root.is_dir():
        raise DatasetError(f"dataset root {str(root)!r} is not a folder (expected a folder with train/ and test/)")
    folder = root / split
    if not folder.is_dir():
        raise DatasetError(f"dataset {str(root)!r} has no {split}/ folder (expected {split}/<video>: {_KINDS})")
    videos = list_videos(folder)
    if not videos:
        raise DatasetError(f"dataset folder {str(folder)!r} holds no videos (expected {_KINDS})")
    return videos


class _VideoReader:
    """Decodes videos at one size, caches them and logs the first resize."""

    def __init__(self, image_size: int, max_frames: int | None, cache_mb: float) -> None:
        self.image_size = image_size
        self.max_frames = max_frames
        self.cache = _FrameCache(int(cache_mb * 2**20))
        self._resize_logged = False

    def load(self, path: Path, *, cache: bool = True) -> LoadedVideo:
        video = self.cache.get(path) if cache else None
        if video is None:
            video = load_video(path, self.image_size, max_frames=self.max_frames)
            if video.original_size != (self.image_size, self.image_size) and not self._resize_logged:
                self._resize_logged = True
                width, height = video.original_size
                logger.info(
                    "%s: frames are %dx%d, resized to %dx%d (logged once; other videos may be resized too)",
                    path,
                    width,
                    height,
                    self.image_size,
                    self.image_size,
                )
            if cache:
                self.cache.put(path, video)
        return video


# --- augmentation -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JitterParams:
    """One draw of the colour jitter, applied identically to every frame of a pair.

    Attributes:
        order: the order of the four adjustments (0 brightness, 1 contrast, 2 saturation, 3 hue).
        brightness: multiplier of the pixel values.
        contrast: blend factor with the frame's mean grey level (1: unchanged).
        saturation: blend factor with the frame's grey version (1: unchanged).
        hue: shift of the HSV hue, a fraction of the colour circle in ``[-0.5, 0.5]``.
    """

    order: tuple[int, ...] = (0, 1, 2, 3)
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def sample_jitter(
    brightness: float, contrast: float, saturation: float, hue: float, *, generator: torch.Generator | None = None
) -> JitterParams:
    """Draw jitter parameters as torchvision's ``ColorJitter`` does: factors uniform in ``[1 - x, 1 + x]``
    (at least 0), hue shift uniform in ``[-hue, hue]``, the four adjustments in random order."""
    order = tuple(int(k) for k in torch.randperm(4, generator=generator))
    return JitterParams(
        order=order,
        brightness=_uniform(max(0.0, 1 - brightness), 1 + brightness, generator) if brightness > 0 else 1.0,
        contrast=_uniform(max(0.0, 1 - contrast), 1 + contrast, generator) if contrast > 0 else 1.0,
        saturation=_uniform(max(0.0, 1 - saturation), 1 + saturation, generator) if saturation > 0 else 1.0,
        hue=_uniform(-hue, hue, generator) if hue > 0 else 0.0,
    )


def _grey(images: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of ``(..., 3, H, W)``, shape ``(..., 1, H, W)``."""
    r, g, b = images.unbind(-3)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def _rgb_to_hsv(images: torch.Tensor) -> torch.Tensor:
    r, g, b = images.unbind(-3)
    maxc = images.amax(-3)
    minc = images.amin(-3)
    delta = maxc - minc
    has_hue = delta > 0
    safe = torch.where(has_hue, delta, torch.ones_like(delta))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(has_hue, torch.remainder(h / 6.0, 1.0), torch.zeros_like(h))
    s = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    return torch.stack((h, s, maxc), dim=-3)


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    h, s, v = hsv.unbind(-3)
    h6 = torch.remainder(h, 1.0) * 6.0
    sector = torch.floor(h6)
    f = h6 - sector
    sector = sector.long() % 6
    p = v * (1.0 - s)
    q = v * (1.0 - s * f)
    t = v * (1.0 - s * (1.0 - f))
    table = torch.stack((v, q, p, p, t, v, t, v, v, q, p, p, p, p, t, v, v, q), dim=-3)  # r, g, b rows
    table = table.unflatten(-3, (3, 6))
    index = sector.unsqueeze(-3).unsqueeze(-3).expand(*table.shape[:-4], 3, 1, *table.shape[-2:])
    return table.gather(-3, index).squeeze(-3)


def apply_jitter(images: torch.Tensor, params: JitterParams) -> torch.Tensor:
    """Colour-jitter float RGB images ``(..., 3, H, W)`` in ``[0, 1]``; returns the same shape, clamped.

    Contrast blends each image with its own mean grey level, saturation with its grey version, as
    torchvision does.
    """
    out = images
    for step in params.order:
        if step == 0 and params.brightness != 1.0:
            out = (out * params.brightness).clamp(0.0, 1.0)
        elif step == 1 and params.contrast != 1.0:
            mean = _grey(out).mean(dim=(-3, -2, -1), keepdim=True)
            out = (params.contrast * out + (1.0 - params.contrast) * mean).clamp(0.0, 1.0)
        elif step == 2 and params.saturation != 1.0:
            out = (params.saturation * out + (1.0 - params.saturation) * _grey(out)).clamp(0.0, 1.0)
        elif step == 3 and params.hue != 0.0:
            hsv = _rgb_to_hsv(out)
            hsv = torch.cat((torch.remainder(hsv[..., :1, :, :] + params.hue, 1.0), hsv[..., 1:, :, :]), dim=-3)
            out = _hsv_to_rgb(hsv).clamp(0.0, 1.0)
    return out


def augment_pair(
    pair: torch.Tensor,
    *,
    horizontal_flip: bool = True,
    time_flip: bool = True,
    brightness: float = 0.1,
    contrast: float = 0.1,
    saturation: float = 0.1,
    hue: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Augment a pair ``(2, 3, H, W)`` float RGB in ``[0, 1]`` (source, driving) as the original did.

    Time flip (swap the two frames) and horizontal flip, each with probability 1/2, and one colour jitter
    draw: every random choice is the same for both frames.
    """
    if time_flip and float(torch.rand((), generator=generator)) < 0.5:
        pair = pair.flip(0)
    if horizontal_flip and float(torch.rand((), generator=generator)) < 0.5:
        pair = pair.flip(-1)
    if brightness or contrast or saturation or hue:
        pair = apply_jitter(pair, sample_jitter(brightness, contrast, saturation, hue, generator=generator))
    return pair


# --- data sets ----------------------------------------------------------------------------------------------


def _to_float(frames: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 -> ``(N, 3, H, W)`` float32 in ``[0, 1]``."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)


def face_landmarks(frames: torch.Tensor, landmarker: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``L`` face landmarks of each frame, in the keypoints' ``[-1, 1]`` coordinates.

    Args:
        frames: ``(N, 3, S, S)`` float RGB in ``[0, 1]``.
        landmarker: has ``points`` (``L``, default 5) and ``landmarks(image) -> (L, 2) pixel (x, y) | None`` for
            a ``(S, S, 3)`` uint8 RGB image (:class:`fomm.media.faces.YuNetLandmarker`,
            :class:`fomm.media.faces.FaceMeshParts`).

    Returns:
        ``(N, L, 2)`` float32 points (``2 * pixel / (S - 1) - 1``; zeros where no face) and ``(N,)`` bool found.
    """
    import numpy as np

    count = int(getattr(landmarker, "points", 5))
    images = frames.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    points = torch.zeros((len(images), count, 2), dtype=torch.float32)
    found = torch.zeros(len(images), dtype=torch.bool)
    for index, image in enumerate(images):
        marks = landmarker.landmarks(np.ascontiguousarray(image))
        if marks is not None:
            scale = torch.tensor([image.shape[1] - 1, image.shape[0] - 1], dtype=torch.float32)
            points[index] = torch.as_tensor(np.asarray(marks, np.float32)[:count, :2]) * 2.0 / scale - 1.0
            found[index] = True
    return points, found


class FramesDataset(Dataset[dict[str, Any]]):
    """Pairs of frames of one video, for training FOMM (the original ``FramesDataset`` + ``DatasetRepeater``).

    An item is ``{"source": (3, S, S), "driving": (3, S, S), "name": str}``: float32 RGB in ``[0, 1]`` and the
    video's file or folder name; with ``config.webcam_aug`` or ``config.occluders`` (training split, augmented)
    also ``"driving_input"`` ``(3, S, S)``, the keypoint detector's (degraded, occluded) copy of ``"driving"``;
    with ``config.landmarks`` also ``"landmarks"`` ``(2, L, 2)`` float32, the source's and the driving frame's
    landmarks in ``[-1, 1]`` (``x = 2 * column / (S - 1) - 1``, as :func:`face_landmarks`; ``L`` = 5 YuNet
    points, or 7 FaceMesh points with ``config.landmark_points="facemesh"``), and
    ``"landmarks_valid"`` ``(2,)`` bool (``False``: no face found; its points are 0).
    Training split: two distinct random frames of a video (in time order, then
    augmented: time flip, horizontal flip, colour jitter and, with ``config.shape_aug``, a face-shape warp, all the
    same for both frames; with ``config.tilt_aug``, a turn of the driving frame alone). Test split: frame 0
    and a frame chosen from the item index (reproducible), not augmented.

    The epoch has ``len(videos) * num_repeats`` items, or ``len(ids) * num_repeats`` with ``id_sampling`` in
    the training split (item ``k`` takes a random video of identity ``ids[k % len(ids)]``).

    Videos are decoded on first use (errors then name the file; :meth:`verify` decodes all of them up front)
    and cached per process up to ``config.cache_mb``.

    Raises:
        DatasetError: the root or its split folder is missing, or holds no videos.
    """

    def __init__(self, config: DatasetConfig) -> None:
        self.config = config
        self.videos: list[Path] = _find_videos(config.root, config.split)
        groups: dict[str, list[Path]] = {}
        for video in self.videos:
            groups.setdefault(video_id(video), []).append(video)
        self.groups = groups
        self.ids: list[str] = sorted(groups, key=_natural_key)
        self.is_train = config.split == "train"
        self.use_ids = self.is_train and config.id_sampling
        self._reader = _VideoReader(config.image_size, config.max_frames_per_video, config.cache_mb)
        self._landmarker: Any = None  # made on first use in each process (an OpenCV object does not pickle)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_landmarker"] = None
        return state

    def __len__(self) -> int:
        base = len(self.ids) if self.use_ids else len(self.videos)
        return base * self.config.num_repeats

    def video_for(self, index: int) -> Path:
        """The video of item ``index`` (a random one of its identity with ``id_sampling``)."""
        if self.use_ids:
            group = self.groups[self.ids[index % len(self.ids)]]
            return group[int(torch.randint(len(group), ()))] if len(group) > 1 else group[0]
        return self.videos[index % len(self.videos)]

    def frames(self, video: Path) -> np.ndarray:
        """All frames of ``video``: ``(T, S, S, 3)`` uint8 RGB (decoded once, then cached)."""
        return self._reader.load(video).frames

    def pair_indices(self, index: int, num_frames: int) -> tuple[int, int]:
        """Frame indices ``(source, driving)`` of item ``index`` in a video of ``num_frames`` frames."""
        if self.is_train:
            first = int(torch.randint(num_frames, ()))
            second = int(torch.randint(num_frames - 1, ()))
            second += second >= first
            return min(first, second), max(first, second)
        generator = torch.Generator().manual_seed(index)
        return 0, 1 + int(torch.randint(num_frames - 1, (), generator=generator))

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} of a data set of {len(self)}")
        video = self.video_for(index)
        frames = self.frames(video)
        i, j = self.pair_indices(index, len(frames))
        pair = _to_float(frames[[i, j]])
        if self.is_train and self.config.augment:
            c = self.config
            pair = augment_pair(
                pair,
                horizontal_flip=c.horizontal_flip,
                time_flip=c.time_flip,
                brightness=c.brightness,
                contrast=c.contrast,
                saturation=c.saturation,
                hue=c.hue,
            )
            if c.shape_aug > 0 and float(torch.rand(())) < c.shape_aug:
                from .augment import reshape_pair

                pair = reshape_pair(pair)
            if c.tilt_aug > 0 and float(torch.rand(())) < c.tilt_aug:
                from .augment import tilt_frame

                pair = torch.stack((pair[0], tilt_frame(pair[1])))
        item = {"source": pair[0].contiguous(), "driving": pair[1].contiguous(), "name": video.name}
        if self.is_train and self.config.augment and (self.config.webcam_aug > 0 or self.config.occluders > 0):
            item["driving_input"] = self.driving_input(item["driving"], frames)
        if self.config.landmarks:
            if self._landmarker is None:
                from ..media.faces import FaceMeshParts, YuNetLandmarker

                self._landmarker = FaceMeshParts() if self.config.landmark_points == "facemesh" else YuNetLandmarker()
            item["landmarks"], item["landmarks_valid"] = face_landmarks(pair, self._landmarker)
        return item

    def driving_input(self, driving: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """The keypoint detector's copy of a driving frame ``(3, S, S)``: with probability ``config.occluders``
        an occluder pasted over it (textured from a random frame of ``frames``, the item's own decoded video:
        no second decode), then with probability ``config.webcam_aug`` webcam-like degradations.
        Randomness from torch's default generator (seeded per item by the trainer)."""
        from .augment import degrade_webcam, paste_occluder

        out = driving
        if self.config.occluders > 0 and float(torch.rand(())) < self.config.occluders:
            texture = _to_float(frames[[int(torch.randint(len(frames), ()))]])[0]
            out = paste_occluder(out, texture=texture)
        if self.config.webcam_aug > 0 and float(torch.rand(())) < self.config.webcam_aug:
            out = degrade_webcam(out)
        return out.contiguous() if out is not driving else driving.clone()

    def probe(self) -> None:
        """Open every video file and decode its first frame (cheap: no full decode), so that a file that is no
        video at all is refused before training rather than when an epoch first reaches it. Folders of frames
        and strips are not read. A file that opens but is damaged further on still fails when decoded.

        Raises:
            DatasetError: the first video file that cannot be opened, one line naming it.
        """
        from fomm.media.errors import MediaError
        from fomm.media.video import open_frames

        for video in self.videos:
            if video.suffix.lower() not in VIDEO_FILE_SUFFIXES or not video.is_file():
                continue
            try:
                with open_frames(video, max_frames=1):
                    pass  # opening decodes the first frame: nothing more to read
            except MediaError as exc:
                raise DatasetError(f"cannot decode {str(video)!r}: {one_line(exc)}") from exc
            except OSError as exc:
                raise DatasetError(f"cannot read {str(video)!r}: {exc.strerror or one_line(exc)}") from exc

    def verify(self) -> dict[str, int]:
        """Decode every video now (filling the cache as far as it goes) and return frame counts by name.

        Raises:
            DatasetError: the first video that cannot be used.
        """
        return {video.name: len(self.frames(video)) for video in self.videos}


class VideoReconstructionDataset(Dataset[dict[str, Any]]):
    """Whole videos of a split, in order, for evaluation (reconstruction of each video from its frame 0).

    An item is ``{"video": (T, S, S, 3) uint8 RGB numpy array, "name": str, "fps": float}`` with all frames
    (up to ``max_frames_per_video``). Nothing is cached; iterate it directly (a DataLoader would turn the
    arrays into tensors).

    Raises:
        DatasetError: as :class:`FramesDataset`; while loading, a video that cannot be used.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        image_size: int = 256,
        split: str = "test",
        max_frames_per_video: int | None = None,
    ) -> None:
        config = DatasetConfig(
            root=Path(root), image_size=image_size, split=split, max_frames_per_video=max_frames_per_video
        )
        self.config = config
        self.videos: list[Path] = _find_videos(config.root, config.split)
        self._reader = _VideoReader(config.image_size, config.max_frames_per_video, 0)

    @classmethod
    def from_config(cls, config: DatasetConfig, *, split: str = "test") -> VideoReconstructionDataset:
        """The videos of ``split`` of a training configuration's data set, at its image size."""
        return cls(
            config.root, image_size=config.image_size, split=split, max_frames_per_video=config.max_frames_per_video
        )

    @property
    def names(self) -> Sequence[str]:
        return [video.name for video in self.videos]

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"video {index} of {len(self)}")
        video = self.videos[index]
        loaded = self._reader.load(video, cache=False)
        return {"video": loaded.frames, "name": video.name, "fps": loaded.fps}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index in range(len(self)):
            yield self[index]
