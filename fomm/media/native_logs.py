"""Keep the native libraries' log lines (OpenCV, its bundled FFmpeg, PyAV's FFmpeg) out of the terminal.

OpenCV and the FFmpeg inside it print to stderr from C++ (``[ WARN:0@0.04] global cap_v4l.cpp ... can't open
camera by index``, ``moov atom not found``); there is no Python callback for them, so they are silenced (the
tool reports the failure itself, in one line). PyAV's FFmpeg is silent by default; with ``verbose`` its messages
are routed to Python logging at debug level (logger ``fomm.native``). Called by the entry points, not on import:
a library user keeps the native defaults.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["NATIVE_LOGGER", "route_native_logs"]

NATIVE_LOGGER = "fomm.native"

#: Environment read by OpenCV when it loads (log level) and when its FFmpeg backend starts (FFmpeg's level:
#: -8 is AV_LOG_QUIET, 24 AV_LOG_WARNING). Values the user set are kept.
_QUIET_ENV = {"OPENCV_LOG_LEVEL": "SILENT", "OPENCV_FFMPEG_LOGLEVEL": "-8", "OPENCV_VIDEOIO_DEBUG": "0"}
_VERBOSE_ENV = {"OPENCV_LOG_LEVEL": "WARNING", "OPENCV_FFMPEG_LOGLEVEL": "24", "OPENCV_VIDEOIO_DEBUG": "0"}


class _ToDebug(logging.Handler):
    """Re-logs PyAV's ``libav.*`` records at debug level on :data:`NATIVE_LOGGER`."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(NATIVE_LOGGER).debug("%s: %s", record.name, record.getMessage())


def route_native_logs(verbose: bool = False) -> None:
    """Silence OpenCV's and FFmpeg's native log output; with ``verbose``, OpenCV keeps its warnings and PyAV's
    FFmpeg messages reach Python logging at debug level. Call it early (before the first capture opens: OpenCV's
    FFmpeg reads its level once); calling it again is harmless."""
    for name, value in (_VERBOSE_ENV if verbose else _QUIET_ENV).items():
        os.environ.setdefault(name, value)
    cv2 = sys.modules.get("cv2")  # already loaded: its log level is set directly (the env var is read at load)
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is not None and hasattr(log, "setLogLevel") and os.environ.get("OPENCV_LOG_LEVEL") == "SILENT":
        log.setLogLevel(log.LOG_LEVEL_SILENT)
    libav = logging.getLogger("libav")
    libav.propagate = False
    if not any(isinstance(h, _ToDebug) for h in libav.handlers):
        libav.addHandler(_ToDebug())
    if not verbose:
        av = sys.modules.get("av")
        if av is not None:  # PyAV's default, unless something turned its callback on
            av.logging.set_level(None)
        return
    try:
        import av.logging
    except ImportError:
        return
    libav.setLevel(logging.DEBUG)
    av.logging.set_level(av.logging.VERBOSE)
