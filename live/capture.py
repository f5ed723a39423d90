"""Threaded frame capture that always hands out the newest frame (webcam, video file or network stream).

A daemon thread reads frames with ``cv2.VideoCapture`` into a one-slot buffer; a frame that is not read before
the next one arrives is dropped, never queued, so a slow consumer always works on the freshest frame and the
glass-to-glass latency stays bounded. Every frame is a :class:`live.types.Frame`: ``(H, W, 3)`` uint8 BGR, a
sequence ``index`` (gaps are dropped frames), ``timestamp = time.perf_counter()`` at grab and, for video files,
``media_time = index / fps`` (the file's own timeline, so offline runs are reproducible).

- **Webcams** (an index): read as fast as the camera delivers; width, height and frame rate are requested
  when given.
- **Video files**: paced at their own frame rate as a camera would be (``realtime=True``): frames are produced
  on time whether or not anyone reads them. ``realtime=False`` hands every frame out exactly once instead (the
  reader waits until the previous frame was consumed), for tests and offline runs. ``loop=True`` rewinds at
  the end; indices keep increasing.
- **Streams** (a URL such as ``rtsp://``, ``http://``, ``tcp://``, ``udp://``): when a read fails the stream is
  reopened up to ``reconnect_attempts`` times, ``reconnect_delay`` seconds apart, or, with ``reconnect_seconds``,
  for that long with exponential backoff (``reconnect_delay``, doubled after every failed try up to
  :data:`MAX_RECONNECT_DELAY`); then the capture ends cleanly (``ended``, ``lost``, ``read()`` returns ``None``,
  ``last_error`` says why). A webcam that stops delivering is treated the same way (reopened, then ended).

Example::

    with LatestFrameCapture(0, width=640, height=480) as capture:
        while (frame := capture.read(timeout=1.0)) is not None:
            ...  # frame.image (H, W, 3) uint8 BGR
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from fomm.media._deps import import_cv2

from .types import Frame, counted

__all__ = ["CameraInfo", "CaptureError", "CaptureSource", "LatestFrameCapture", "list_cameras"]

logger = logging.getLogger(__name__)

DEFAULT_FILE_FPS = 25.0
"""Pacing rate (frames per second) for a video file that does not state a usable frame rate."""

_FAILED_READ_BACKOFF = (0.01, 0.5)  # seconds: first and largest pause after a failed read (never spin)
MAX_RECONNECT_DELAY = 4.0
"""Longest pause, seconds, between two reopen tries of a ``reconnect_seconds`` window."""


class CaptureError(RuntimeError):
    """A capture source that cannot be used (bad source string, missing file, camera or stream that does not
    open, a reader thread that failed). The message is one line meant for the user."""


# --- quiet OpenCV ---------------------------------------------------------------------------------------------

_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: int | None = None


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log (e.g. ``can't open camera by index``) inside the block, then restore it.

    OpenCV's log level is process-wide; nested or concurrent blocks (the reader thread reconnecting while the
    main thread lists cameras) share one saved level, restored when the last block ends.
    """
    global _quiet_depth, _quiet_saved
    cv2 = import_cv2()
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is None or not hasattr(log, "setLogLevel") or not hasattr(log, "getLogLevel"):
        yield
        return
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_saved = log.getLogLevel()
            log.setLogLevel(log.LOG_LEVEL_SILENT)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _quiet_saved is not None:
                log.setLogLevel(_quiet_saved)
                _quiet_saved = None


# --- sources --------------------------------------------------------------------------------------------------

SourceKind = Literal["camera", "file", "stream"]


def _redact(url: str) -> str:
    """``url`` with a password replaced by ``***`` (for logs and messages)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:
        return url


@dataclass(frozen=True)
class CaptureSource:
    """Where frames come from, parsed from what a user typed.

    Attributes:
        kind: ``"camera"`` (a webcam index), ``"file"`` (an existing video file) or ``"stream"`` (a URL).
        value: the camera index (int), the file path (str) or the URL (str).
    """

    kind: SourceKind
    value: int | str

    @classmethod
    def parse(cls, source: int | str | os.PathLike[str] | CaptureSource) -> CaptureSource:
        """Parse ``source``: an int or digit string is a webcam index; a string containing ``://`` is a stream
        URL (rtsp, http, tcp, udp, ...); an existing file path is a video file.

        Raises:
            CaptureError: anything else (one line naming the input and what was expected).
        """
        if isinstance(source, CaptureSource):
            return source
        expected = "expected a camera index (0, 1, ...), an existing video file or a stream URL (rtsp://...)"
        if isinstance(source, bool):
            raise CaptureError(f"capture source {source!r} is not usable: {expected}")
        if isinstance(source, int):
            if source < 0:
                raise CaptureError(f"camera index {source} is negative: {expected}")
            return cls("camera", source)
        if isinstance(source, os.PathLike):  # a path is a file, even when its name is a number
            path = Path(source).expanduser()
            if path.is_file():
                return cls("file", str(path))
            source = str(source)
            if Path(source).is_dir():
                raise CaptureError(f"capture source {source!r} is a folder, not a video file: {expected}")
            raise CaptureError(f"video file {source!r} does not exist: {expected}")
        if not isinstance(source, str):
            raise CaptureError(f"capture source {source!r} ({type(source).__name__}) is not usable: {expected}")
        text = source.strip()
        if text.isdigit() and text.isascii():
            return cls("camera", int(text))
        if "://" in text:
            scheme = text.split("://", 1)[0]
            if not scheme or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
                raise CaptureError(f"capture source {_redact(text)!r} is not a valid URL: {expected}")
            return cls("stream", text)
        if not text:
            raise CaptureError(f"capture source is empty: {expected}")
        path = Path(text).expanduser()
        if path.is_file():
            return cls("file", str(path))
        if path.is_dir():
            raise CaptureError(f"capture source {text!r} is a folder, not a video file: {expected}")
        raise CaptureError(f"capture source {text!r} is not a camera index, an existing file or a URL: {expected}")

    @property
    def description(self) -> str:
        """Human-readable name, e.g. ``camera 0``, ``video file 'clip.mp4'``, ``stream 'rtsp://cam/1'``."""
        if self.kind == "camera":
            return f"camera {self.value}"
        if self.kind == "file":
            return f"video file {self.value!r}"
        return f"stream {_redact(str(self.value))!r}"


@dataclass(frozen=True)
class CameraInfo:
    """A webcam that opens and delivers frames.

    Attributes:
        index: the OpenCV camera index.
        width: frame width in pixels (of the first frame read).
        height: frame height in pixels.
    """

    index: int
    width: int
    height: int


def _backend_id(backend: int | str | None, default: int) -> int:
    """An OpenCV ``CAP_*`` API id from an int, a name (``"ffmpeg"``, ``"v4l2"``, ``"dshow"``, ...) or ``None``."""
    if backend is None:
        return default
    cv2 = import_cv2()
    if isinstance(backend, int) and not isinstance(backend, bool):
        return backend
    if isinstance(backend, str):
        name = backend.strip().upper()
        value = getattr(cv2, f"CAP_{name}", None)
        if isinstance(value, int):
            return value
    raise CaptureError(
        f"capture backend {backend!r} is not an OpenCV backend (e.g. 'any', 'ffmpeg', 'v4l2', 'dshow', 'msmf', "
        "'avfoundation', 'gstreamer', or a cv2.CAP_* number)"
    )


def list_cameras(max_index: int = 8, *, backend: int | str | None = None) -> list[CameraInfo]:
    """The webcams among indices ``0 .. max_index - 1`` that open and deliver a frame, probed quietly
    (OpenCV's warnings about indices that do not open are silenced and the log level restored after).

    Args:
        max_index: how many indices to probe.
        backend: OpenCV backend (``None``: any).
    """
    cv2 = import_cv2()
    api = _backend_id(backend, cv2.CAP_ANY)
    found: list[CameraInfo] = []
    with _quiet_opencv():
        for index in range(max(0, max_index)):
            cap = None
            try:
                cap = cv2.VideoCapture(index, api)
                if not cap.isOpened():
                    continue
                ok, image = cap.read()
                if ok and image is not None and image.size:
                    found.append(CameraInfo(index, int(image.shape[1]), int(image.shape[0])))
            except cv2.error as exc:
                logger.debug("camera %d: %s", index, exc)
            finally:
                if cap is not None:
                    cap.release()
    return found


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR from what a capture returned (gray or BGRA converted, other depths scaled)."""
    cv2 = import_cv2()
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim != 3 or image.shape[2] != 3:
        raise CaptureError(f"the capture returned an image of shape {image.shape}, expected (H, W, 3)")
    return image


# --- the capture ----------------------------------------------------------------------------------------------


class LatestFrameCapture:
    """Reads a camera, video file or stream on a daemon thread and hands out the newest frame.

    Args:
        source: camera index, video file path or stream URL (see :meth:`CaptureSource.parse`).
        width: requested camera frame width in pixels (webcams only; the camera may pick another size).
        height: requested camera frame height in pixels (webcams only).
        fps: requested camera frame rate (webcams only).
        loop: video files: rewind at the end and keep going (indices keep increasing).
        realtime: ``True``: video files are paced at their frame rate and frames not read in time are dropped;
            ``False``: every frame is handed out exactly once (the reader waits for the consumer, so ``read``'s
            ``after_index`` must not skip ahead), any source.
        reconnect_attempts: streams and webcams: reopen tries after a failed read before the capture ends.
        reconnect_delay: seconds before each reopen try (with ``reconnect_seconds``: before the first, doubled
            after each failed try, at most :data:`MAX_RECONNECT_DELAY`).
        reconnect_seconds: streams and webcams: keep trying to reopen for this many seconds (exponential
            backoff) instead of ``reconnect_attempts`` tries; ``None``: count tries.
        backend: OpenCV backend, a ``cv2.CAP_*`` number or name (``"ffmpeg"``, ``"v4l2"``, ...); ``None``: FFmpeg
            for files and streams, any for webcams.
        timeout: streams: seconds that opening or reading may block before it counts as failed.

    Raises:
        CaptureError: the source string is not usable or an argument is out of range.

    ``start()`` opens the source (or use the capture as a context manager), ``read()`` gets frames,
    ``close()`` stops the thread and releases the device. Frames are handed out once in total, whoever reads.
    """

    def __init__(
        self,
        source: int | str | os.PathLike[str] | CaptureSource,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        loop: bool = False,
        realtime: bool = True,
        reconnect_attempts: int = 3,
        reconnect_delay: float = 0.5,
        reconnect_seconds: float | None = None,
        backend: int | str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.source = CaptureSource.parse(source)
        for name, value in (("width", width), ("height", height)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise CaptureError(f"capture {name} must be a positive integer, got {value!r}")
        if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise CaptureError(f"capture fps must be a positive number, got {fps!r}")
        if isinstance(reconnect_attempts, bool) or not isinstance(reconnect_attempts, int) or reconnect_attempts < 0:
            raise CaptureError(f"reconnect attempts must be an integer >= 0, got {reconnect_attempts!r}")
        if not (isinstance(reconnect_delay, (int, float)) and math.isfinite(reconnect_delay) and reconnect_delay >= 0):
            raise CaptureError(f"reconnect delay must be a number of seconds >= 0, got {reconnect_delay!r}")
        if reconnect_seconds is not None and not (
            isinstance(reconnect_seconds, (int, float))
            and not isinstance(reconnect_seconds, bool)
            and math.isfinite(reconnect_seconds)
            and reconnect_seconds >= 0
        ):
            raise CaptureError(f"reconnect window must be a number of seconds >= 0, got {reconnect_seconds!r}")
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise CaptureError(f"capture timeout must be a number of seconds > 0, got {timeout!r}")
        if self.source.kind != "camera" and (width is not None or height is not None or fps is not None):
            logger.warning("%s: width, height and fps apply to webcams only and are ignored", self.description)
        self.width = width
        self.height = height
        self.requested_fps = fps
        self.loop = loop
        self.realtime = realtime
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_delay = float(reconnect_delay)
        self.reconnect_seconds = None if reconnect_seconds is None else float(reconnect_seconds)
        self.timeout = float(timeout)
        self._backend = backend

        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cap: Any = None
        self._started = False
        self._closed = False
        # guarded by _cond
        self._slot: Frame | None = None  # the newest frame
        self._last_delivered = -1  # index of the last frame handed out
        self._frames_read = 0
        self._frames_delivered = 0
        self._ended = False
        self._lost = False
        self._reconnecting = False
        self._reconnects = 0
        self._exception: BaseException | None = None
        self._last_error: str | None = None
        self._fps: float | None = None
        self._size: tuple[int, int] | None = None

    # -- properties

    @property
    def description(self) -> str:
        """The source in words, e.g. ``camera 0`` or ``video file 'clip.mp4'`` (passwords in URLs hidden)."""
        return self.source.description

    @property
    def frames_read(self) -> int:
        """Frames grabbed from the source so far."""
        with self._cond:
            return self._frames_read

    @property
    def frames_delivered(self) -> int:
        """Frames handed out by :meth:`read`."""
        with self._cond:
            return self._frames_delivered

    @property
    def dropped(self) -> int:
        """Frames grabbed but never delivered: replaced by a newer frame before anyone read them, plus the
        last frame when the capture was closed without reading it."""
        with self._cond:
            pending = self._slot is not None and self._slot.index > self._last_delivered and not self._closed
            return self._frames_read - self._frames_delivered - int(pending)

    @property
    def ended(self) -> bool:
        """Whether the source has ended (end of file without ``loop``, stream lost, error, or closed)."""
        with self._cond:
            return self._ended

    @property
    def lost(self) -> bool:
        """Whether the source was lost for good: a stream or webcam that stopped delivering and did not come
        back within the reconnect tries (not the normal end of a video file, nor :meth:`close`)."""
        with self._cond:
            return self._lost

    @property
    def reconnecting(self) -> bool:
        """Whether the reader is trying to reopen a stream or webcam right now."""
        with self._cond:
            return self._reconnecting

    @property
    def reconnects(self) -> int:
        """Reopen attempts made so far (successful or not), over the capture's life."""
        with self._cond:
            return self._reconnects

    @property
    def last_error(self) -> str | None:
        """Why the source ended early (stream lost, reader thread failed), or ``None``."""
        with self._cond:
            return self._last_error

    @property
    def fps(self) -> float | None:
        """The source's frame rate (frames per second) as OpenCV reports it, ``None`` when unknown."""
        return self._fps

    @property
    def size(self) -> tuple[int, int] | None:
        """``(width, height)`` in pixels of the frames (the last frame read; before it, what OpenCV reports)."""
        return self._size

    # -- opening

    def _api(self) -> int:
        cv2 = import_cv2()
        default = cv2.CAP_ANY if self.source.kind == "camera" else cv2.CAP_FFMPEG
        return _backend_id(self._backend, default)

    def _open(self) -> Any:
        """A new ``cv2.VideoCapture`` on the source, or ``None`` when it does not open."""
        cv2 = import_cv2()
        api = self._api()
        if self.source.kind == "camera":
            cap = cv2.VideoCapture(int(self.source.value), api)
            if cap.isOpened():
                for prop, value in (
                    (cv2.CAP_PROP_FRAME_WIDTH, self.width),
                    (cv2.CAP_PROP_FRAME_HEIGHT, self.height),
                    (cv2.CAP_PROP_FPS, self.requested_fps),
                ):
                    if value is not None and not cap.set(prop, float(value)):
                        logger.debug("%s: property %d=%s not accepted", self.description, prop, value)
        elif self.source.kind == "stream":
            ms = int(self.timeout * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            try:
                cap = cv2.VideoCapture(str(self.source.value), api, params)
            except cv2.error as exc:  # a backend without timeout properties
                logger.debug("%s: opening with timeouts failed (%s); opening without", self.description, exc)
                cap = cv2.VideoCapture(str(self.source.value), api)
        else:
            cap = cv2.VideoCapture(str(self.source.value), api)
        if not cap.isOpened():
            cap.release()
            return None
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._fps = fps if math.isfinite(fps) and 0 < fps <= 1000 else None
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if width > 0 and height > 0:
            self._size = (width, height)
        return cap

    def start(self) -> LatestFrameCapture:
        """Open the source and start the reader thread (does nothing when already started). Returns ``self``.

        Raises:
            CaptureError: the source cannot be opened (for a webcam the message lists the cameras that open),
                or the capture was closed.
        """
        if self._closed:
            raise CaptureError(f"the capture of {self.description} is closed; make a new one")
        if self._started:
            return self
        cv2 = import_cv2()
        try:
            with _quiet_opencv():
                cap = self._open()
        except cv2.error as exc:
            raise CaptureError(f"{self.description} cannot be opened: {str(exc).strip().splitlines()[-1]}") from exc
        if cap is None:
            raise CaptureError(self._open_failure())
        self._cap = cap
        self._started = True
        fps = f"{self._fps:g} fps" if self._fps else "unknown fps"
        size = f"{self._size[0]}x{self._size[1]}" if self._size else "unknown size"
        logger.info("capturing %s (%s, %s)", self.description, size, fps)
        requested = (self.width or 0, self.height or 0)
        if self._size is not None and any(r and r != got for r, got in zip(requested, self._size, strict=True)):
            logger.info("%s gives %dx%d frames, not the requested size", self.description, *self._size)
        self._thread = threading.Thread(target=self._run, name=f"capture {self.description}", daemon=True)
        self._thread.start()
        return self

    def _open_failure(self) -> str:
        if self.source.kind == "camera":
            cameras = list_cameras(backend=self._backend)
            names = ", ".join(f"{c.index} ({c.width}x{c.height})" for c in cameras) or "none"
            return f"camera {self.source.value} cannot be opened; cameras that open: {names}"
        if self.source.kind == "file":
            return (
                f"video file {self.source.value!r} cannot be opened by OpenCV "
                "(not a video, or a codec this OpenCV build cannot decode)"
            )
        return (
            f"{self.description} cannot be opened within {self.timeout:g} s "
            "(server down, wrong address or port, or a format OpenCV cannot read)"
        )

    # -- the reader thread

    def _run(self) -> None:
        paced = self.realtime and self.source.kind == "file"
        period = 1.0 / (self._fps or DEFAULT_FILE_FPS)
        if paced and self._fps is None:
            logger.warning("%s does not state its frame rate: pacing at %g fps", self.description, DEFAULT_FILE_FPS)
        next_due: float | None = None
        try:
            while not self._stop.is_set():
                if not self.realtime and not self._wait_consumed():
                    break
                image = self._grab()
                if image is None:
                    break
                if paced:
                    now = time.perf_counter()
                    if next_due is None or now > next_due + period:
                        next_due = now  # first frame, or fell behind: re-anchor instead of bursting
                    elif self._stop.wait(max(0.0, next_due - now)):
                        break
                    next_due += period
                self._publish(image)
        except Exception as exc:
            logger.error("%s: the capture thread failed: %s", self.description, exc)
            with self._cond:
                self._exception = exc
                self._last_error = f"the capture thread failed: {type(exc).__name__}: {exc}"
        finally:
            cap, self._cap = self._cap, None
            if cap is not None:
                cap.release()
            with self._cond:
                self._ended = True
                self._cond.notify_all()
            logger.debug("%s: capture thread stopped", self.description)

    def _wait_consumed(self) -> bool:
        """``realtime=False``: wait until the slot's frame was handed out. ``False`` when stopping."""
        with self._cond:
            while self._slot is not None and self._slot.index > self._last_delivered and not self._stop.is_set():
                self._cond.wait(0.5)
            return not self._stop.is_set()

    def _read_once(self) -> np.ndarray | None:
        ok, image = self._cap.read()
        if not ok or image is None or image.size == 0:
            return None
        return _as_bgr(image)

    def _grab(self) -> np.ndarray | None:
        """The next image from the source (rewinding or reconnecting as configured), ``None`` at its end."""
        image = self._read_once()
        if image is not None:
            return image
        if self.source.kind == "file":
            if not self.loop:
                logger.info("%s ended after %s", self.description, counted(self._frames_read, "frame"))
                return None
            return self._rewind()
        return self._reconnect()

    def _rewind(self) -> np.ndarray | None:
        cv2 = import_cv2()
        logger.debug("%s: end reached, rewinding", self.description)
        image = None
        if self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0):
            image = self._read_once()
        if image is None:  # a container that cannot seek: open it again
            self._cap.release()
            self._cap = self._open()
            image = self._read_once() if self._cap is not None else None
        if image is None:
            with self._cond:
                self._last_error = f"{self.description} cannot be read again from its start"
            logger.warning("%s", self._last_error)
        return image

    def _reconnect(self) -> np.ndarray | None:
        """Reopen a stream or webcam after a failed read; the image read after a successful reopen, or ``None``
        when the tries are used up (``lost``) or when stopping. Each outage gets the full tries / window."""
        if self._stop.is_set():
            return None
        if self.reconnect_attempts == 0 and self.reconnect_seconds is None:
            self._give_up(f"{self.description} stopped delivering frames (reconnecting is off)")
            return None
        with self._cond:
            self._reconnecting = True
        try:
            image = self._reconnect_tries()
        finally:
            with self._cond:
                self._reconnecting = False
        return image

    def _reconnect_tries(self) -> np.ndarray | None:
        cv2 = import_cv2()
        window = self.reconnect_seconds
        deadline = None if window is None else time.perf_counter() + window
        backoff = _FAILED_READ_BACKOFF[0]
        delay = self.reconnect_delay
        attempt = 0
        while True:
            if deadline is None:
                if attempt >= self.reconnect_attempts:
                    break
                pause = max(self.reconnect_delay, backoff)  # never spin, even with reconnect_delay=0
                backoff = min(backoff * 2, _FAILED_READ_BACKOFF[1])
                plan = f"attempt {attempt + 1} of {self.reconnect_attempts}"
            else:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                pause = min(max(delay, _FAILED_READ_BACKOFF[0]), left)
                delay = min(max(delay, _FAILED_READ_BACKOFF[0]) * 2, MAX_RECONNECT_DELAY)
                plan = f"attempt {attempt + 1}, {left:.1f} s left"
            attempt += 1
            with self._cond:
                self._reconnects += 1
            logger.warning("%s: no frame; reconnecting in %.3g s (%s)", self.description, pause, plan)
            if self._stop.wait(pause):
                return None
            if self._cap is not None:
                self._cap.release()
                self._cap = None
            try:
                with _quiet_opencv():
                    self._cap = self._open()
            except cv2.error as exc:
                logger.debug("%s: reopening failed: %s", self.description, exc)
                continue
            if self._cap is None:
                continue
            image = self._read_once()
            if image is not None:
                logger.info("%s: reconnected", self.description)
                return image
        if window is None:
            self._give_up(
                f"{self.description} was lost: no frame after {self.reconnect_attempts} reconnect attempts "
                f"{self.reconnect_delay:g} s apart"
            )
        else:
            self._give_up(f"{self.description} was lost: no frame for {window:g} s of reconnect attempts")
        return None

    def _give_up(self, message: str) -> None:
        with self._cond:
            self._last_error = message
            self._lost = True
        logger.warning("%s", message)

    def _publish(self, image: np.ndarray) -> None:
        with self._cond:
            index = self._frames_read
            media_time = index / (self._fps or DEFAULT_FILE_FPS) if self.source.kind == "file" else None
            self._slot = Frame(image=image, index=index, timestamp=time.perf_counter(), media_time=media_time)
            self._frames_read += 1
            self._size = (int(image.shape[1]), int(image.shape[0]))
            self._cond.notify_all()

    # -- consuming

    def read(self, timeout: float | None = None, after_index: int = -1) -> Frame | None:
        """The newest frame not handed out before whose index is greater than ``after_index``, waiting for it.

        Args:
            timeout: seconds to wait at most (``None``: until a frame comes or the source ends).
            after_index: only a frame with a greater index is returned (e.g. the index of the frame the caller
                last processed); frames already handed out are never returned again in any case.

        Returns:
            The frame, or ``None`` on timeout, when the source has ended and no newer frame will come, or after
            :meth:`close`.

        Raises:
            CaptureError: the capture was not started, or the reader thread failed (once the frames read before
                the failure were handed out).
        """
        if not self._started and not self._closed:
            raise CaptureError(f"the capture of {self.description} is not started; call start() or use 'with'")
        deadline = None if timeout is None else time.perf_counter() + max(0.0, timeout)
        with self._cond:
            while True:
                if self._closed:
                    return None
                frame = self._slot
                if frame is not None and frame.index > max(after_index, self._last_delivered):
                    self._last_delivered = frame.index
                    self._frames_delivered += 1
                    self._cond.notify_all()  # realtime=False: the reader may go on
                    return frame
                if self._exception is not None:
                    raise CaptureError(f"{self.description}: {self._last_error}") from self._exception
                if self._ended:
                    return None
                if deadline is None:
                    self._cond.wait()
                else:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        return None
                    self._cond.wait(remaining)

    def __iter__(self) -> Iterator[Frame]:
        """Frames until the source ends (starts the capture if needed)."""
        self.start()
        while (frame := self.read()) is not None:
            yield frame

    # -- closing

    def close(self, timeout: float | None = None) -> None:
        """Stop the reader thread and release the source (idempotent).

        Args:
            timeout: seconds to wait for the thread (``None``: the stream timeout plus a second; a thread
                blocked inside OpenCV cannot be interrupted, only waited for).
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            self._cond.notify_all()
        thread = self._thread
        if thread is threading.current_thread():
            return  # called from the reader itself: it stops and releases the source on its way out
        if thread is not None:
            thread.join(self.timeout + 1.0 if timeout is None else timeout)
            if thread.is_alive():
                logger.warning("%s: the capture thread is still blocked in OpenCV; leaving it", self.description)
                return
        elif self._cap is not None:
            self._cap.release()
            self._cap = None
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    @property
    def running(self) -> bool:
        """Whether the reader thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> LatestFrameCapture:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "ended" if self._ended else "running" if self._started else "new"
        return f"LatestFrameCapture({self.description}, {state}, read={self._frames_read})"
