"""Video input and output: streaming frame readers (video file or image folder) and an mp4 writer.

Frames are ``(H, W, 3)`` uint8 RGB arrays in ``[0, 255]``. Nothing here holds a whole video in memory.
"""

from __future__ import annotations

import logging
import math
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ..cli_errors import one_line
from ._deps import have_av, import_av, import_cv2
from .errors import MediaError
from .image import IMAGE_SUFFIXES, load_image

__all__ = [
    "DEFAULT_FOLDER_FPS",
    "MAX_FRAME_RATE",
    "MIN_FRAME_RATE",
    "VIDEO_OUTPUT_SUFFIXES",
    "FrameSource",
    "VideoInfo",
    "VideoWriter",
    "check_video_output",
    "check_writable_file",
    "check_writable_folder",
    "list_image_files",
    "open_frames",
    "read_frame",
    "same_file",
]

logger = logging.getLogger(__name__)

#: Time base of the presentation times a timed :class:`VideoWriter` writes (milliseconds).
TIMED_TIME_BASE = Fraction(1, 1000)

DEFAULT_FOLDER_FPS = 25
#: The frame rates read and written (a folder's ``fps``, :class:`VideoWriter`'s): beyond them FFmpeg's
#: 32-bit time bases overflow, and no video is meant to be played that slowly or fast.
MIN_FRAME_RATE = Fraction(1, 100)
MAX_FRAME_RATE = Fraction(1000)


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a frame source before decoding it.

    Attributes:
        path: the video file or image folder.
        fps: frame rate; a ``Fraction`` when exact (PyAV's ``average_rate``, a folder's rate), else a float.
        frame_count: number of frames if the container says so (``None`` when unknown).
        width: frame width in pixels (of the first frame).
        height: frame height in pixels.
        has_audio: whether the file has an audio stream.
    """

    path: Path
    fps: Fraction | float
    frame_count: int | None
    width: int
    height: int
    has_audio: bool = False

    @property
    def duration(self) -> float | None:
        """Seconds, when the frame count is known."""
        return None if self.frame_count is None else self.frame_count / float(self.fps)


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_image_files(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, in natural order (``2.png`` before ``10.png``)."""
    files = [p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: _natural_key(p.name))


def _as_rate(fps: Fraction | float | int, what: str) -> Fraction:
    """``fps`` as an exact rate in ``[MIN_FRAME_RATE, MAX_FRAME_RATE]``.

    Raises:
        MediaError: not a finite number, or out of that range (FFmpeg's time bases are 32-bit fractions).
    """
    try:
        rate = fps if isinstance(fps, Fraction) else Fraction(fps)
    except (TypeError, ValueError, OverflowError) as exc:
        raise MediaError(f"{what} {fps!r} is not a finite number; expected frames per second") from exc
    if not rate > 0:
        raise MediaError(f"{what} must be > 0, got {fps!r}")
    if not MIN_FRAME_RATE <= rate <= MAX_FRAME_RATE:
        shown = f"{float(rate):g}" if rate < 10**300 else "above 1e300"
        raise MediaError(
            f"{what} {shown} is out of range; expected {float(MIN_FRAME_RATE):g} to "
            f"{float(MAX_FRAME_RATE):g} frames per second"
        )
    return rate.limit_denominator(1_000_000)


class FrameSource:
    """An open stream of frames; iterate it once (frames are decoded lazily). Use as a context manager.

    Made by :func:`open_frames`; ``info`` describes the stream.
    """

    def __init__(self, info: VideoInfo, frames: Iterator[np.ndarray], closer: Any = None) -> None:
        self.info = info
        self._frames = frames
        self._closer = closer
        self._started = False

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._started:
            raise RuntimeError(f"frames of {self.info.path} can be iterated only once; open them again")
        self._started = True
        try:
            yield from self._frames
        finally:
            self.close()

    def close(self) -> None:
        closer, self._closer = self._closer, None
        if closer is not None:
            try:
                closer()
            except Exception as exc:  # closing a broken container must not hide the real error
                logger.debug("closing %s: %s", self.info.path, exc)

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _limit(frames: Iterator[np.ndarray], max_frames: int | None) -> Iterator[np.ndarray]:
    for index, frame in enumerate(frames):
        if max_frames is not None and index >= max_frames:
            return
        yield frame


def _open_folder(path: Path, fps: Fraction | float | int | None) -> FrameSource:
    files = list_image_files(path)
    if not files:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise MediaError(f"folder {str(path)!r} holds no image frames (expected files ending in {suffixes})")
    rate = _as_rate(fps if fps is not None else DEFAULT_FOLDER_FPS, "frame rate")
    first = load_image(files[0])

    def frames() -> Iterator[np.ndarray]:
        yield first
        for file in files[1:]:
            yield load_image(file)

    info = VideoInfo(path, rate, len(files), first.shape[1], first.shape[0], False)
    return FrameSource(info, frames())


def _upright(image: np.ndarray, rotation: float) -> np.ndarray:
    """``image`` as a player shows it: turned counterclockwise by ``rotation`` degrees, the angle of the stream's
    display matrix (PyAV's ``VideoFrame.rotation``; phones record sideways and set it), to the nearest quarter
    turn. FFmpeg and OpenCV apply it when they decode; PyAV leaves it to the caller."""
    quarters = round((rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(image, quarters)) if quarters else image


def _open_pyav(path: Path) -> FrameSource:
    av = import_av()
    name = str(path)
    try:
        container = av.open(name, mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"video {name!r} is not a readable video file: {_reason(exc)}") from exc
    try:
        if not container.streams.video:
            raise MediaError(f"video {name!r} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            logger.warning("video %s does not state its frame rate: assuming %d fps", name, DEFAULT_FOLDER_FPS)
            rate = Fraction(DEFAULT_FOLDER_FPS)
        count = int(stream.frames) if stream.frames else None
        has_audio = len(container.streams.audio) > 0
        decoded = container.decode(stream)

        def next_frame(index: int) -> np.ndarray | None:
            try:
                frame = next(decoded)
            except StopIteration:
                return None
            except av.error.FFmpegError as exc:
                raise MediaError(f"video {name!r} cannot be decoded at frame {index}: {_reason(exc)}") from exc
            return _upright(frame.to_ndarray(format="rgb24"), getattr(frame, "rotation", 0))

        first = next_frame(0)
        if first is None:
            raise MediaError(f"video {name!r} has no frames")
    except BaseException:
        container.close()
        raise

    def frames() -> Iterator[np.ndarray]:
        yield first
        index = 1
        while (frame := next_frame(index)) is not None:
            yield frame
            index += 1

    info = VideoInfo(path, Fraction(rate), count, first.shape[1], first.shape[0], has_audio)
    return FrameSource(info, frames(), container.close)


def _open_cv2(path: Path) -> FrameSource:
    cv2 = import_cv2()
    name = str(path)
    capture = cv2.VideoCapture(name)
    if not capture.isOpened():
        capture.release()
        raise MediaError(f"video {name!r} is not a readable video file")
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    if not fps > 0:
        logger.warning("video %s does not state its frame rate: assuming %d fps", name, DEFAULT_FOLDER_FPS)
        fps = float(DEFAULT_FOLDER_FPS)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) or None
    ok, bgr = capture.read()
    if not ok or bgr is None:
        capture.release()
        raise MediaError(f"video {name!r} has no frames (or no video stream OpenCV can decode)")
    first = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def frames() -> Iterator[np.ndarray]:
        yield first
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    info = VideoInfo(path, fps, count, first.shape[1], first.shape[0], False)
    return FrameSource(info, frames(), capture.release)


def _reason(exc: BaseException) -> str:
    strerror = getattr(exc, "strerror", None)
    if isinstance(strerror, str) and strerror:
        return strerror
    return one_line(exc)


def open_frames(
    path: str | Path,
    *,
    fps: Fraction | float | int | None = None,
    max_frames: int | None = None,
    backend: str = "auto",
) -> FrameSource:
    """Open a video file or a folder of images as a stream of ``(H, W, 3)`` uint8 RGB frames.

    Video files are decoded with PyAV (``backend="pyav"``) or, when PyAV is missing, OpenCV
    (``backend="cv2"``). A folder's images (PNG, JPEG, ...) are taken in natural order at ``fps`` (default 25);
    ``fps`` is ignored for video files. The first frame is decoded here, so an empty input fails early.

    Args:
        path: video file or folder.
        fps: frame rate of a folder of images.
        max_frames: stop after this many frames (``info.frame_count`` is capped to it).
        backend: ``"auto"``, ``"pyav"`` or ``"cv2"`` for video files.

    Raises:
        MediaError: missing path, unreadable file, no video stream, or no frames.
    """
    path = Path(path)
    if max_frames is not None and max_frames < 1:
        raise MediaError(f"max_frames must be >= 1, got {max_frames}")
    if not path.exists():
        raise MediaError(f"{str(path)!r} does not exist (expected a video file or a folder of frames)")
    if path.is_dir():
        source = _open_folder(path, fps)
    elif backend == "cv2" or (backend == "auto" and not have_av()):
        source = _open_cv2(path)
    elif backend in ("auto", "pyav"):
        source = _open_pyav(path)
    else:
        raise ValueError(f"unknown backend {backend!r}; expected 'auto', 'pyav' or 'cv2'")
    if max_frames is not None:
        info = source.info
        count = max_frames if info.frame_count is None else min(info.frame_count, max_frames)
        source.info = replace(info, frame_count=count)
        source._frames = _limit(source._frames, max_frames)
    return source


def read_frame(path: str | Path, index: int, *, fps: Fraction | float | int | None = None) -> np.ndarray:
    """Frame ``index`` (0-based) of a video or folder, decoding the frames before it.

    Raises:
        MediaError: the input has at most ``index`` frames (or cannot be read).
    """
    if index < 0:
        raise MediaError(f"frame index must be >= 0, got {index}")
    with open_frames(path, fps=fps) as source:
        for i, frame in enumerate(source):
            if i == index:
                return frame
        count = i + 1
    raise MediaError(f"video {str(path)!r} has {count} frames: there is no frame {index}")


# --- writing ------------------------------------------------------------------------------------------------------

#: Containers :class:`VideoWriter` writes (H.264 or MPEG-4 video, AAC audio); ``.webm`` would need VP8/VP9.
VIDEO_OUTPUT_SUFFIXES: tuple[str, ...] = (".mp4", ".m4v", ".mov", ".mkv", ".avi")


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name the same file, however written (``~``, ``..``, symbolic or hard links):
    writing one would destroy the other. A path that does not exist yet is compared by where it resolves to."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return a.resolve() == b.resolve()


def check_writable_file(path: str | Path, what: str = "output file") -> Path:
    """Check, before any work is done, that ``path`` can be written: not a folder, its folder exists and accepts
    new files (tested by creating and removing a temporary file there). Returns ``path``.

    Raises:
        MediaError: one line naming ``path`` and the problem.
    """
    path = Path(path).expanduser()
    text = str(path)
    if path.is_dir() or text.endswith(("/", os.sep)):
        raise MediaError(f"{what} {text!r} is a folder; expected a file name")
    parent = path.parent
    if not parent.exists():
        raise MediaError(f"{what} {text!r}: the folder {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise MediaError(f"{what} {text!r}: {str(parent)!r} is not a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise MediaError(f"{what} {text!r} exists and cannot be overwritten (permission denied)")
    _probe_folder(parent, f"{what} {text!r}")
    return path


def _probe_folder(folder: Path, named: str) -> None:
    """Create and remove a temporary file in ``folder``; :class:`MediaError` (``named: ...``) when it cannot."""
    probe = folder / f".fomm-write-check.{uuid.uuid4().hex[:8]}.probe"
    try:
        probe.touch(exist_ok=False)
    except OSError as exc:
        raise MediaError(f"{named}: the folder {str(folder)!r} is not writable ({exc.strerror})") from None
    probe.unlink(missing_ok=True)


def check_writable_folder(path: str | Path, what: str = "output folder") -> Path:
    """Check, before any work is done, that the folder ``path`` can be written or created: not a file, and the
    folder (or, when absent, the nearest folder above it that exists) accepts new files (tested by creating and
    removing a temporary file there). Returns ``path``.

    Raises:
        MediaError: one line naming ``what``, ``path`` and the problem.
    """
    path = Path(path).expanduser()
    text = str(path)
    if not text:
        raise MediaError(f"{what}: empty path; expected a folder")
    if path.exists() and not path.is_dir():
        raise MediaError(f"{what} {text!r} is a file; expected a folder")
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise MediaError(f"{what} {text!r}: {str(existing)!r} is a file, not a folder")
    _probe_folder(existing, f"{what} {text!r}")
    return path


def check_video_output(path: str | Path) -> Path:
    """Check that :class:`VideoWriter` can write ``path``: a known container suffix
    (:data:`VIDEO_OUTPUT_SUFFIXES`) and a writable location (:func:`check_writable_file`). Returns ``path``.

    Raises:
        MediaError: one line naming ``path`` and what was expected.
    """
    path = Path(path).expanduser()
    expected = "/".join(VIDEO_OUTPUT_SUFFIXES)
    if path.is_dir() or str(path).endswith(("/", os.sep)):
        raise MediaError(f"video {str(path)!r} is a folder; expected a file name ending in {expected}")
    suffix = path.suffix.lower()
    if suffix not in VIDEO_OUTPUT_SUFFIXES:
        found = f"ends in {suffix!r}" if suffix else "has no extension"
        raise MediaError(f"video {str(path)!r} {found}; expected a file name ending in {expected}")
    return check_writable_file(path, "video")


def _has_encoder(av: Any, name: str) -> bool:
    try:
        av.Codec(name, "w")
    except Exception:
        return False
    return True


class _AudioTranscoder:
    """Decodes the first audio track of a file and encodes it as AAC into an output container, a little at
    a time so that audio and video packets stay interleaved."""

    def __init__(self, av: Any, source: Path, output: Any) -> None:
        self._av = av
        self.input = av.open(str(source), mode="r")
        try:
            self.in_stream = self.input.streams.audio[0]
            codec = self.in_stream.codec_context
            rate = codec.sample_rate or 48000
            self.stream = output.add_stream("aac", rate=rate)
            layout = codec.layout.name if codec.layout is not None else "stereo"
            channels = codec.channels or 2
            self.stream.layout = layout if channels <= 2 else "stereo"
            self.stream.bit_rate = 128_000 if channels > 1 else 96_000
            self.resampler = av.AudioResampler(format="fltp", layout=self.stream.layout, rate=rate)
            self._frames = self.input.decode(self.in_stream)
            self._start: float | None = None
            self._pending: Any = None
            self._done = False
        except BaseException:
            self.input.close()
            raise

    def _next(self) -> Any:
        try:
            return next(self._frames)
        except StopIteration:
            return None
        except self._av.error.FFmpegError as exc:
            logger.warning("audio of %s cannot be decoded further (%s): the rest is dropped", self.input.name, exc)
            return None

    def pump(self, output: Any, until: float) -> None:
        """Encode the source's audio up to ``until`` seconds (from its first sample)."""
        while not self._done:
            frame = self._pending or self._next()
            self._pending = None
            if frame is None:
                self._done = True
                return
            t = float(frame.time) if frame.time is not None else 0.0
            if self._start is None:
                self._start = t
            if t - self._start >= until:
                self._pending = frame
                return
            for converted in self.resampler.resample(frame):
                converted.pts = None
                for packet in self.stream.encode(converted):
                    output.mux(packet)

    def finish(self, output: Any, duration: float) -> None:
        """Encode the audio up to ``duration`` seconds, flush the encoder, close the input."""
        try:
            self.pump(output, duration)
            for converted in self.resampler.resample(None):
                converted.pts = None
                for packet in self.stream.encode(converted):
                    output.mux(packet)
            for packet in self.stream.encode(None):
                output.mux(packet)
        finally:
            self.input.close()

    def close(self) -> None:
        self.input.close()


class VideoWriter:
    """Write uint8 RGB frames to a video file (normally mp4) at an exact frame rate.

    H.264 (``libx264`` through PyAV, ``yuv420p``) when that encoder exists; else MPEG-4 part 2 through PyAV;
    else ``mp4v`` through OpenCV (no audio). Frames with an odd width or height get their last column/row
    repeated (4:2:0 needs even sizes). With ``audio_from``, the first audio track of that file is encoded as
    AAC into the output (cut at the video's duration), e.g. to keep a driving video's sound.

    Everything is written to a hidden temporary file beside ``path``, renamed to ``path`` by :meth:`close`;
    an error or ``KeyboardInterrupt`` inside the ``with`` block removes it, so no half-written file is ever
    left at ``path``.

    Args:
        path: destination file; its suffix picks the container (``.mp4``, ``.mov``, ``.mkv``, ``.avi``).
        fps: frame rate; pass the driving video's ``Fraction`` (``average_rate``) to keep it exactly.
        codec: ``"auto"``, ``"h264"``, ``"mpeg4"`` (both PyAV) or ``"mp4v"`` (OpenCV).
        crf: H.264 constant rate factor (lower is better; 18 is visually lossless-ish).
        audio_from: a media file whose first audio track is copied into the output (transcoded to AAC).
        timed: frames carry their own times (``write(frame, time=seconds)``), so the file plays for as long as
            they took: PyAV writes them as variable-frame-rate presentation times (millisecond precision, no
            B-frames); OpenCV's writer, which has a fixed rate, repeats or drops frames to ``fps``.
    """

    def __init__(
        self,
        path: str | Path,
        fps: Fraction | float | int,
        *,
        codec: str = "auto",
        crf: int = 18,
        audio_from: str | Path | None = None,
        timed: bool = False,
    ) -> None:
        if codec not in ("auto", "h264", "mpeg4", "mp4v"):
            raise ValueError(f"unknown codec {codec!r}; expected 'auto', 'h264', 'mpeg4' or 'mp4v'")
        self.path = Path(path)
        self.rate = _as_rate(fps, "frame rate")
        self.codec = codec
        self.crf = crf
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.frames_written = 0
        self.backend: str | None = None
        self.has_audio = False
        self._tmp = self.path.with_name(f".{self.path.stem}.{uuid.uuid4().hex[:8]}.partial{self.path.suffix}")
        self._size: tuple[int, int] | None = None  # (width, height) as given
        self._container: Any = None
        self._stream: Any = None
        self._audio: _AudioTranscoder | None = None
        self._cv2_writer: Any = None
        self._closed = False
        self.timed = timed
        self._t0: float | None = None  # time of the first frame (timed)
        self._last_pts = -1  # last presentation time written, in _time_base units (timed)
        self._slots = 0  # fixed-rate slots filled (timed, OpenCV)
        self._duration = 0.0  # seconds covered so far (timed)

    # -- setup

    def _choose_backend(self) -> str:
        if self.codec == "mp4v":
            return "cv2-mp4v"
        if not have_av():
            if self.codec != "auto":
                import_av()  # raises MediaError with the install hint
            return "cv2-mp4v"
        av = import_av()
        if self.codec in ("auto", "h264") and _has_encoder(av, "libx264"):
            return "pyav-libx264"
        if self.codec == "h264":
            raise MediaError(f"video {str(self.path)!r}: this PyAV build has no libx264 (H.264) encoder")
        if _has_encoder(av, "mpeg4"):
            return "pyav-mpeg4"
        return "cv2-mp4v"

    def _open(self, width: int, height: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.backend = self._choose_backend()
        even_w, even_h = width + width % 2, height + height % 2
        if self.backend.startswith("pyav"):
            av = import_av()
            self._container = av.open(str(self._tmp), mode="w")
            try:
                name = "libx264" if self.backend == "pyav-libx264" else "mpeg4"
                stream = self._container.add_stream(name, rate=self.rate)
                stream.width, stream.height = even_w, even_h
                stream.pix_fmt = "yuv420p"
                stream.codec_context.time_base = TIMED_TIME_BASE if self.timed else 1 / self.rate
                if name == "libx264":
                    stream.options = {"crf": str(self.crf), "preset": "medium"}
                    if self.timed:  # B-frames make the mp4 report a stream duration short of the real one
                        stream.options = {**stream.options, "bf": "0"}
                else:
                    stream.bit_rate = max(1_000_000, int(even_w * even_h * float(self.rate) * 0.25))
                self._stream = stream
                if self.audio_from is not None:
                    self._add_audio(av)
            except BaseException:
                self._container.close()
                raise
        else:
            cv2 = import_cv2()
            if self.audio_from is not None:
                logger.warning("OpenCV's writer cannot write audio: the output %s has no sound", self.path)
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._cv2_writer = cv2.VideoWriter(str(self._tmp), fourcc, float(self.rate), (even_w, even_h))
            if not self._cv2_writer.isOpened():
                raise MediaError(f"video {str(self.path)!r} cannot be written by OpenCV (mp4v)")
        logger.debug("writing %s with %s at %s fps", self.path, self.backend, self.rate)

    def _add_audio(self, av: Any) -> None:
        assert self.audio_from is not None
        try:
            probe = av.open(str(self.audio_from), mode="r")
        except (av.error.FFmpegError, OSError) as exc:
            logger.warning("cannot read audio from %s (%s): the output has no sound", self.audio_from, exc)
            return
        with probe:
            has_audio = len(probe.streams.audio) > 0
        if not has_audio:
            logger.info("%s has no audio track: the output has no sound", self.audio_from)
            return
        try:
            self._audio = _AudioTranscoder(av, self.audio_from, self._container)
        except (av.error.FFmpegError, ValueError) as exc:
            logger.warning("cannot transcode the audio of %s (%s): the output has no sound", self.audio_from, exc)
            self._audio = None
            return
        self.has_audio = True

    # -- writing

    def write(self, frames: np.ndarray, *, time: float | None = None) -> None:
        """Append one ``(H, W, 3)`` frame or a batch ``(N, H, W, 3)``; uint8 RGB, all of the same size.

        Args:
            frames: the frame(s).
            time: (``timed`` writers, one frame) its time in seconds, on any clock (the first frame's time is the
                file's start); times that do not increase are moved just after the previous frame.

        Raises:
            ValueError: bad frames, or ``time`` missing/given where it does not belong.
        """
        if self._closed:
            raise RuntimeError("the writer is closed")
        if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or frames.shape[-1] != 3:
            raise ValueError(f"expected uint8 RGB (H, W, 3) or (N, H, W, 3) frames, got {frames.dtype} {frames.shape}")
        if self.timed != (time is not None):
            raise ValueError("a timed writer needs time= for each frame" if self.timed else "time= needs timed=True")
        if time is not None and (frames.ndim != 3 or not math.isfinite(time)):
            raise ValueError(f"time= goes with one (H, W, 3) frame and a finite number of seconds, got {time!r}")
        batch = frames[None] if frames.ndim == 3 else frames
        height, width = batch.shape[1:3]
        if self._size is None:
            self._size = (width, height)
            self._open(width, height)
        elif self._size != (width, height):
            raise ValueError(f"frame size changed from {self._size} to {(width, height)}")
        if width % 2 or height % 2:
            batch = np.pad(batch, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        for frame in batch:
            self._write_one(np.ascontiguousarray(frame), time)

    def _write_one(self, frame: np.ndarray, time: float | None = None) -> None:
        if time is not None:
            if self._t0 is None:
                self._t0 = time
            time = max(0.0, time - self._t0)
        if self._cv2_writer is not None:
            cv2 = import_cv2()
            bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            # fixed rate: fill the slots up to this frame's time with it (none when it comes too early)
            copies = 1 if time is None else max(0, round(time * float(self.rate)) + 1 - self._slots)
            for _ in range(copies):
                self._cv2_writer.write(bgr)
            self._slots += copies
            if time is not None:
                self._duration = self._slots / float(self.rate)
        else:
            av = import_av()
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            if time is None:
                video_frame.pts = self.frames_written
                video_frame.time_base = 1 / self.rate
                end = float((self.frames_written + 1) / self.rate)
            else:
                pts = max(round(time / TIMED_TIME_BASE), self._last_pts + 1)
                self._last_pts = pts
                video_frame.pts = pts
                video_frame.time_base = TIMED_TIME_BASE
                end = float(pts * TIMED_TIME_BASE) + float(1 / self.rate)
                self._duration = end
            for packet in self._stream.encode(video_frame):
                self._container.mux(packet)
            if self._audio is not None:
                self._audio.pump(self._container, end)
        self.frames_written += 1

    # -- finishing

    def close(self) -> Path:
        """Finish the file and move it to ``path``. Returns ``path``.

        Raises:
            MediaError: no frame was written.
        """
        if self._closed:
            return self.path
        self._closed = True
        if self.frames_written == 0:
            self._discard()
            raise MediaError(f"no frames were written to video {str(self.path)!r}")
        try:
            if self._cv2_writer is not None:
                self._cv2_writer.release()
            else:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
                if self._audio is not None:
                    end = self._duration if self.timed else float(self.frames_written / self.rate)
                    self._audio.finish(self._container, end)
                self._container.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self._discard()
            raise
        return self.path

    def abort(self) -> None:
        """Stop writing and delete the partial file (the destination is left untouched)."""
        if not self._closed:
            self._closed = True
            self._discard()

    def _discard(self) -> None:
        for close in (
            getattr(self._audio, "close", None),
            getattr(self._container, "close", None),
            getattr(self._cv2_writer, "release", None),
        ):
            if close is not None:
                try:
                    close()
                except Exception as exc:
                    logger.debug("closing a partial video: %s", exc)
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
