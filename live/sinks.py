"""Where the animated avatar goes: a virtual camera, a preview window, a video file.

Every sink takes one :class:`~live.types.View` per loop step through ``send`` and is closed with ``close``
(idempotent; sinks are also context managers). Only the preview window produces key presses
(``poll_keys``). Sinks open their device in the constructor and raise :class:`SinkError`, with one line
meant for the user, when they cannot.

Images are ``(H, W, 3)`` uint8 BGR (OpenCV order) everywhere here; conversions to RGB happen at the devices
that want it (the virtual camera, the video writer). OpenCV and pyvirtualcam are imported lazily.
"""

from __future__ import annotations

import abc
import ctypes
import ctypes.util
import logging
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from .overlay import compose_preview, import_cv2
from .types import View, counted

__all__ = [
    "FIT_MODES",
    "QUIT_KEY",
    "VCAM_INSTALL_HINT",
    "NullSink",
    "PreviewSink",
    "Sink",
    "SinkError",
    "SinkGroup",
    "VideoFileSink",
    "VirtualCameraSink",
    "has_display",
    "letterbox",
]

logger = logging.getLogger(__name__)

FitMode = Literal["letterbox", "scale", "crop"]
FIT_MODES: tuple[str, ...] = ("letterbox", "scale", "crop")

QUIT_KEY = ord("q")
"""The key code the preview reports when its window is closed (``live.controls`` maps it to quit)."""

VCAM_INSTALL_HINT = (
    "Linux: sudo apt install v4l2loopback-dkms && "
    'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="fomm-live"; '
    "Windows: install OBS Studio >= 26 and start its Virtual Camera once; "
    "macOS: install OBS Studio >= 30 and start its Virtual Camera once (allow the system extension)"
)
"""How to get a virtual camera device, per operating system (one line)."""


class SinkError(RuntimeError):
    """A sink that cannot be opened or written; the message is one line meant for the user."""


@runtime_checkable
class Sink(Protocol):
    """What the live loop sends its views to.

    Attributes:
        name: short name for logs (``"vcam"``, ``"preview"``, ``"file"``, ...).
    """

    name: str

    def send(self, view: View) -> None:
        """Show / write one step's view."""
        ...

    def poll_keys(self) -> list[int]:
        """Key codes pressed since the last call (cleared by the call); ``[]`` for sinks without a window."""
        ...

    def close(self) -> None:
        """Release the device; safe to call more than once."""
        ...


class _SinkBase(abc.ABC):
    """Context-manager support and a key-less ``poll_keys`` for the sinks here."""

    name = "sink"

    def poll_keys(self) -> list[int]:
        return []

    @abc.abstractmethod
    def send(self, view: View) -> None:
        """Show or record one view."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device or finish the file; safe to call more than once."""

    def __enter__(self) -> _SinkBase:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# --- geometry -----------------------------------------------------------------------------------------------------


def letterbox(image_bgr: np.ndarray, width: int, height: int, mode: FitMode | str = "letterbox") -> np.ndarray:
    """Fit an image into a ``width`` x ``height`` frame.

    Args:
        image_bgr: ``(H, W, 3)`` uint8 (any channel order; it is kept).
        width: output width in pixels.
        height: output height in pixels.
        mode: ``"letterbox"`` keeps the aspect ratio and centres the image between black bars;
            ``"scale"`` stretches it to the frame; ``"crop"`` keeps the aspect ratio, fills the frame and cuts
            the overflow evenly from both sides.

    Returns:
        ``(height, width, 3)`` uint8, C-contiguous (the input itself when it already has that size).
    """
    if mode not in FIT_MODES:
        raise ValueError(f"unknown fit mode {mode!r}; expected one of {', '.join(FIT_MODES)}")
    if width < 1 or height < 1:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ValueError(f"expected a (H, W, 3) uint8 image, got {image_bgr.dtype} {image_bgr.shape}")
    in_h, in_w = image_bgr.shape[:2]
    if (in_w, in_h) == (width, height):
        return np.ascontiguousarray(image_bgr)
    cv2 = import_cv2()

    def resize(w: int, h: int) -> np.ndarray:
        shrink = w * h < in_w * in_h
        return cv2.resize(image_bgr, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)

    if mode == "scale":
        return resize(width, height)
    if mode == "letterbox":
        factor = min(width / in_w, height / in_h)
        new_w = min(width, max(1, round(in_w * factor)))
        new_h = min(height, max(1, round(in_h * factor)))
        out = np.zeros((height, width, 3), np.uint8)
        x0, y0 = (width - new_w) // 2, (height - new_h) // 2
        out[y0 : y0 + new_h, x0 : x0 + new_w] = resize(new_w, new_h)
        return out
    factor = max(width / in_w, height / in_h)
    new_w = max(width, round(in_w * factor))
    new_h = max(height, round(in_h * factor))
    x0, y0 = (new_w - width) // 2, (new_h - height) // 2
    return np.ascontiguousarray(resize(new_w, new_h)[y0 : y0 + height, x0 : x0 + width])


def _check_fit(fit: str) -> None:
    if fit not in FIT_MODES:
        raise SinkError(f"unknown fit mode {fit!r}; expected one of {', '.join(FIT_MODES)}")


# --- virtual camera -----------------------------------------------------------------------------------------------


def _import_pyvirtualcam() -> ModuleType:
    try:
        import pyvirtualcam
    except ImportError as exc:
        raise SinkError(
            f"the virtual camera needs pyvirtualcam, which cannot be imported ({exc}); "
            "install it with: pip install pyvirtualcam (or pip install -e '.[live]')"
        ) from exc
    return pyvirtualcam


class VirtualCameraSink(_SinkBase):
    """Send the avatar to a virtual webcam (v4l2loopback on Linux, OBS Virtual Camera on Windows/macOS) that
    video-call apps can pick.

    Sends ``view.output`` (``view.camera`` when ``view.passthrough``), fitted to ``width`` x ``height`` and
    converted to RGB. ``send`` never sleeps: the loop sets the pace.

    Args:
        width: camera frame width (640 or 1280 are what call apps expect).
        height: camera frame height.
        fps: the frame rate announced to the device (a hint; the loop's real rate may differ).
        device: a specific device (``/dev/video4``, ``OBS Virtual Camera``), else the first free one.
        backend: a pyvirtualcam backend name (``v4l2loopback``, ``obs``, ``unitycapture``), else all are tried.
        fit: how the square avatar fills the frame: ``letterbox`` (black bars), ``scale`` (stretch) or ``crop``.
        print_fps: log the rate frames reach the device at, about once a second (INFO).

    Attributes:
        device_name: the device in use (e.g. ``/dev/video4``).
        backend_name: the pyvirtualcam backend in use.
        frames_sent: frames sent so far.

    Raises:
        SinkError: pyvirtualcam is missing, or no virtual camera device is available (the message says how to
            install one on each operating system).
    """

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        fps: float = 30,
        *,
        device: str | None = None,
        backend: str | None = None,
        fit: FitMode | str = "letterbox",
        print_fps: bool = False,
    ) -> None:
        _check_fit(fit)
        if width < 1 or height < 1:
            raise SinkError(f"virtual camera size must be positive, got {width}x{height}")
        if not fps > 0:
            raise SinkError(f"virtual camera frame rate must be > 0, got {fps}")
        self.name = "vcam"
        self.width, self.height, self.fps, self.fit = int(width), int(height), float(fps), fit
        self.print_fps = print_fps
        self.frames_sent = 0
        self._last_report = time.perf_counter()
        self._reported_frames = 0
        pyvirtualcam = _import_pyvirtualcam()
        registered = getattr(getattr(pyvirtualcam, "camera", None), "BACKENDS", None)
        if backend is not None and registered is not None and backend not in registered:
            known = ", ".join(sorted(registered)) or "none"
            raise SinkError(
                f"unknown virtual camera backend {backend!r} (available here: {known}); {VCAM_INSTALL_HINT}"
            )
        try:
            self._camera: Any = pyvirtualcam.Camera(
                self.width, self.height, self.fps, fmt=pyvirtualcam.PixelFormat.RGB, device=device, backend=backend
            )
        except RuntimeError as exc:
            reasons = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            what = f"virtual camera device {device!r} is not available" if device else "no virtual camera available"
            reasons = reasons or "no virtual camera backend for this system"
            raise SinkError(f"{what} ({reasons}). To get one: {VCAM_INSTALL_HINT}") from exc
        self.device_name: str = str(self._camera.device)
        self.backend_name: str = str(self._camera.backend)
        logger.info(
            "virtual camera %s (%s backend): %dx%d at %g fps, fit %s",
            self.device_name,
            self.backend_name,
            self.width,
            self.height,
            self.fps,
            self.fit,
        )

    def send(self, view: View) -> None:
        """Send one frame: the avatar, or the real camera while ``view.passthrough`` (status refreshes,
        ``view.waiting``, are not sent)."""
        if self._camera is None:
            raise SinkError(f"virtual camera {self.device_name} is closed")
        if view.waiting:  # a status refresh for the preview: the meeting keeps the last real frame
            return
        cv2 = import_cv2()
        image = view.camera if view.passthrough else view.output
        rgb = cv2.cvtColor(letterbox(image, self.width, self.height, self.fit), cv2.COLOR_BGR2RGB)
        try:
            self._camera.send(rgb)
        except (OSError, RuntimeError) as exc:
            raise SinkError(f"virtual camera {self.device_name} stopped accepting frames: {exc}") from exc
        self.frames_sent += 1
        if self.print_fps:
            now = time.perf_counter()
            if now - self._last_report >= 1.0:
                rate = (self.frames_sent - self._reported_frames) / (now - self._last_report)
                logger.info("virtual camera %s: %.1f fps", self.device_name, rate)
                self._last_report, self._reported_frames = now, self.frames_sent

    def close(self) -> None:
        """Release the device (once; later calls do nothing)."""
        camera, self._camera = getattr(self, "_camera", None), None
        if camera is not None:
            camera.close()
            logger.info("virtual camera %s closed after %s", self.device_name, counted(self.frames_sent, "frame"))


# --- preview window -----------------------------------------------------------------------------------------------


def _x_display_connects(name: str) -> bool | None:
    """Whether the X display ``name`` accepts a connection; ``None`` when this cannot be checked."""
    library = ctypes.util.find_library("X11") or "libX11.so.6"
    try:
        xlib = ctypes.CDLL(library)
    except OSError:
        xlib = None
    if xlib is not None:
        xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        xlib.XOpenDisplay.restype = ctypes.c_void_p
        xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
        handle = xlib.XOpenDisplay(name.encode())
        if not handle:
            return False
        xlib.XCloseDisplay(handle)
        return True
    xdpyinfo = shutil.which("xdpyinfo")
    if xdpyinfo is not None:
        try:
            done = subprocess.run([xdpyinfo, "-display", name], capture_output=True, timeout=5, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0
    return None


def _wayland_socket_exists(name: str) -> bool:
    path = Path(name)
    if not path.is_absolute():
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        if not runtime:
            return False
        path = Path(runtime) / name
    return path.exists()


def has_display() -> bool:
    """Whether a window can be opened here, checked without opening one (never aborts the process).

    macOS and Windows: True. Linux and other Unix: True when ``DISPLAY`` names an X server that accepts a
    connection (checked with libX11's ``XOpenDisplay``, or ``xdpyinfo``), or ``WAYLAND_DISPLAY`` names an
    existing Wayland socket. Without this check, ``cv2.imshow`` on a machine without a display kills the
    process (Qt aborts).
    """
    if platform.system() in ("Windows", "Darwin"):
        return True
    x_name = os.environ.get("DISPLAY")
    if x_name:
        connects = _x_display_connects(x_name)
        if connects:
            return True
        if connects is None:
            logger.debug("cannot check X display %s (no libX11, no xdpyinfo): treating it as unavailable", x_name)
        else:
            logger.debug("X display %s does not accept connections", x_name)
    wayland = os.environ.get("WAYLAND_DISPLAY")
    return bool(wayland) and _wayland_socket_exists(wayland)


class PreviewSink(_SinkBase):
    """An OpenCV window: driver crop with keypoints | avatar, with the overlay text (see
    :func:`live.overlay.compose_preview`). The only sink that reads the keyboard.

    ``send`` shows the frame and pumps the window's events (``cv2.waitKey(1)``, about a millisecond); the keys
    pressed are kept for :meth:`poll_keys`. Closing the window reports :data:`QUIT_KEY`. On macOS, windows
    work only from the main thread.

    Args:
        title: window title.
        scale: size factor of the window's image (e.g. 2.0 for a 256-pixel model on a large screen).

    Raises:
        SinkError: no display (e.g. over SSH, in a container), or an OpenCV build without GUI support.
    """

    def __init__(self, title: str = "fomm-live", scale: float = 1.0) -> None:
        if not scale > 0:
            raise SinkError(f"preview scale must be > 0, got {scale}")
        self.name = "preview"
        self.title = title
        self.scale = float(scale)
        self.frames_shown = 0
        self._keys: list[int] = []
        self._open = False
        self._created = False
        if not has_display():
            raise SinkError(
                "no display for the preview window (DISPLAY/WAYLAND_DISPLAY unset or not reachable); "
                "run it from a desktop session, or use only the virtual camera / a video file"
            )
        cv2 = import_cv2()
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE)
        except cv2.error as exc:
            raise SinkError(
                f"OpenCV cannot open a window ({str(exc).strip().splitlines()[-1]}); a GUI build is needed: "
                "pip uninstall -y opencv-python-headless && pip install --force-reinstall 'opencv-python>=4.10,<5'"
            ) from exc
        self._created = self._open = True

    def send(self, view: View) -> None:
        """Show the composed preview and collect the keys pressed since the last frame."""
        if not self._open:
            return
        cv2 = import_cv2()
        if self.frames_shown and not self._visible(cv2):  # closed by the user: imshow would reopen it
            return
        image = compose_preview(view)
        if self.scale != 1.0:
            height, width = image.shape[:2]
            size = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR)
        cv2.imshow(self.title, image)
        self.frames_shown += 1
        key = cv2.waitKey(1)
        if key != -1:
            self._keys.append(int(key))
        self._visible(cv2)

    def _visible(self, cv2: ModuleType) -> bool:
        """Whether the window is still open; reports :data:`QUIT_KEY` (once) when it is not."""
        try:
            visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            visible = False
        if not visible and self._open:
            logger.info("preview window closed")
            self._keys.append(QUIT_KEY)
            self._open = False
        return visible

    def poll_keys(self) -> list[int]:
        """Key codes (``cv2.waitKey`` values) since the last call; :data:`QUIT_KEY` once the window was closed."""
        keys, self._keys = self._keys, []
        return keys

    def close(self) -> None:
        """Close the window (idempotent)."""
        self._open = False
        if not getattr(self, "_created", False):
            return
        self._created = False
        cv2 = import_cv2()
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error as exc:  # already gone (closed by the user)
            logger.debug("closing the preview window: %s", exc)


# --- video file ---------------------------------------------------------------------------------------------------


class VideoFileSink(_SinkBase):
    """Record the avatar (or the whole preview) to a video file through :class:`fomm.media.video.VideoWriter`.

    One frame is written per ``send``, at the view's own time (:attr:`View.time`, else its capture
    ``timestamp``): the file plays for as long as the frames took to come (variable frame rate), whatever rate
    the loop reached. Status refreshes (``view.waiting``) are not recorded. The file appears at ``path`` only
    when :meth:`close` finishes it.

    Args:
        path: output file (``.mp4``; the suffix picks the container).
        fps: nominal frame rate of the file (the rate OpenCV's fixed-rate fallback writer resamples to).
        size: ``(width, height)`` of the file; default the first written frame's size. Frames of another size
            (e.g. the preview while passthrough is toggled) are letterboxed into it.
        include_preview: write the composed preview (crop | avatar | overlay) instead of ``view.output``.
        codec: see :class:`~fomm.media.video.VideoWriter` (``auto`` = H.264 when available).

    Raises:
        SinkError: a bad frame rate or size, or the file cannot be written.
    """

    def __init__(
        self,
        path: str | Path,
        fps: Fraction | float | int,
        *,
        size: tuple[int, int] | None = None,
        include_preview: bool = False,
        codec: str = "auto",
    ) -> None:
        from fomm.media.errors import MediaError
        from fomm.media.video import VideoWriter

        if size is not None and (len(size) != 2 or min(size) < 1):
            raise SinkError(f"video size must be (width, height) > 0, got {size!r}")
        self.name = "file"
        self.path = Path(path)
        self.include_preview = include_preview
        self.frames = 0
        self._size = None if size is None else (int(size[0]), int(size[1]))
        try:
            self._writer: Any = VideoWriter(self.path, fps, codec=codec, timed=True)
        except (MediaError, ValueError) as exc:
            raise SinkError(f"cannot record to {str(self.path)!r}: {exc}") from exc

    @property
    def size(self) -> tuple[int, int] | None:
        """``(width, height)`` of the file, known after the first frame unless given."""
        return self._size

    def send(self, view: View) -> None:
        """Append one frame (``view.output``, or the composed preview)."""
        from fomm.media.errors import MediaError

        if self._writer is None:
            raise SinkError(f"the recording {str(self.path)!r} is closed")
        if view.waiting:
            return
        cv2 = import_cv2()
        image = compose_preview(view) if self.include_preview else view.output
        if self._size is None:
            self._size = (int(image.shape[1]), int(image.shape[0]))
        rgb = cv2.cvtColor(letterbox(image, *self._size), cv2.COLOR_BGR2RGB)
        try:
            self._writer.write(rgb, time=view.timestamp if view.time is None else view.time)
        except (MediaError, OSError) as exc:
            raise SinkError(f"cannot record to {str(self.path)!r}: {exc}") from exc
        self.frames += 1

    def close(self) -> None:
        """Finish the file (idempotent). With no frame sent, nothing is written."""
        from fomm.media.errors import MediaError

        writer, self._writer = getattr(self, "_writer", None), None
        if writer is None:
            return
        if self.frames == 0:
            writer.abort()
            logger.warning("no frames were recorded: %s was not written", self.path)
            return
        try:
            writer.close()
        except (MediaError, OSError) as exc:
            raise SinkError(f"cannot finish the recording {str(self.path)!r}: {exc}") from exc
        logger.info("recorded %s to %s", counted(self.frames, "frame"), self.path)

    def abort(self) -> None:
        """Stop recording and delete the partial file."""
        writer, self._writer = getattr(self, "_writer", None), None
        if writer is not None:
            writer.abort()


# --- helpers ------------------------------------------------------------------------------------------------------


class NullSink(_SinkBase):
    """Counts the views it gets and keeps nothing (benchmarks, headless runs).

    Attributes:
        frames: views received.
        last_timestamp: ``view.timestamp`` of the last view (0.0 before the first).
    """

    def __init__(self) -> None:
        self.name = "null"
        self.frames = 0
        self.last_timestamp = 0.0
        self.closed = False

    def send(self, view: View) -> None:
        self.frames += 1
        self.last_timestamp = view.timestamp

    def close(self) -> None:
        self.closed = True


class SinkGroup(_SinkBase):
    """Several sinks used as one.

    ``send`` and ``close`` go to every sink even when one fails: the failures are logged and the first is
    re-raised after all sinks had their turn. ``poll_keys`` gathers every sink's keys in order.
    """

    def __init__(self, sinks: Iterable[Sink]) -> None:
        self.sinks: list[Sink] = list(sinks)
        self.name = "+".join(sink.name for sink in self.sinks) or "none"

    def __len__(self) -> int:
        return len(self.sinks)

    def _each(self, what: str, call: Any) -> None:
        first: BaseException | None = None
        for sink in self.sinks:
            try:
                call(sink)
            except Exception as exc:
                logger.error("%s sink %s failed: %s", what, sink.name, exc)
                if first is None:
                    first = exc
        if first is not None:
            raise first

    def send(self, view: View) -> None:
        self._each("sending to", lambda sink: sink.send(view))

    def poll_keys(self) -> list[int]:
        keys: list[int] = []
        for sink in self.sinks:
            keys.extend(sink.poll_keys())
        return keys

    def close(self) -> None:
        self._each("closing", lambda sink: sink.close())
