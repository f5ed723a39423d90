"""Checks of the live tool's inputs before the model loads, and of the remembered settings.

A typo in a flag should cost a second, not the model's load time: :func:`check_inputs` looks at the output
file, the statistics file, the camera and the avatar first. A remembered value that no longer works (a deleted
avatar, a camera that is gone, a device name this machine does not have) is not the user's flag:
:func:`usable_settings` reports it naming the settings file and the key, and that key falls back to its
default while the run goes on.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from fomm.cli_errors import onnx_dir_problem

from .config import FITS, LiveConfigError

if TYPE_CHECKING:
    from .config import LiveConfig
    from .settings import Settings

__all__ = ["check_inputs", "device_problem", "usable_settings"]

logger = logging.getLogger(__name__)

_DEVICE = re.compile(r"^(cpu|cuda|mps)(:(\d+))?$")
#: camera sources that opened in this process (a remembered camera is probed once, not again by check_inputs)
_opened: set[str] = set()


def device_problem(text: str) -> str | None:
    """What is wrong with the device name ``text`` on this machine, as the end of a sentence; ``None`` if usable.

    Only ``cuda``/``mps`` names import torch (to ask whether the device exists).
    """
    match = _DEVICE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        return "is not a device; expected cpu, cuda or cuda:N"
    kind, index = match.group(1), match.group(3)
    if kind == "cpu":
        return None
    import torch

    if kind == "cuda":
        if not torch.cuda.is_available():
            return "needs CUDA, which is not available on this machine"
        count = torch.cuda.device_count()
        if index is not None and int(index) >= count:
            return f"names a GPU that does not exist ({count} visible)"
        return None
    if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        return "needs MPS, which is not available on this machine"
    return None


class _OnlyWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def _probe_camera(camera: str) -> None:
    """Open the webcam or video file ``camera`` once and close it (streams are only parsed: opening one can take
    its whole timeout, and the capture reconnects anyway).

    Raises:
        CaptureError: it cannot be used (the message names it; for a webcam it lists those that open).
    """
    from .capture import CaptureSource, LatestFrameCapture

    source = CaptureSource.parse(camera)
    if source.kind == "stream" or camera in _opened:
        return
    capture = LatestFrameCapture(source, realtime=False)
    quiet = _OnlyWarnings()
    capture_logger = logging.getLogger(LatestFrameCapture.__module__)
    capture_logger.addFilter(quiet)  # "capturing ..." is said once, by the real capture
    try:
        capture.start()
    finally:
        capture.close()
        capture_logger.removeFilter(quiet)
    _opened.add(camera)


def _check_avatar(path: Path) -> None:
    """Raises ``SettingsError`` / ``MediaError`` (naming the file) when the avatar cannot be read."""
    from fomm.media.image import load_image

    from .controls import AvatarList

    load_image(AvatarList(path).current)


def check_inputs(config: LiveConfig, *, fallback_output: Path | None = None) -> None:
    """Check what a run will write and read, before the model loads (one line per problem, the first raised).

    Args:
        config: the run's configuration.
        fallback_output: the recording made when nothing can show the avatar (checked only when it will be used).

    Raises:
        LiveConfigError: an output or statistics file that cannot be written.
        CaptureError: a camera index that does not open, a missing or unreadable video file.
        SettingsError, MediaError: an avatar that does not exist or cannot be read.
    """
    from fomm.media.errors import MediaError
    from fomm.media.video import check_video_output, check_writable_file

    try:
        if config.output is not None:
            check_video_output(config.output)
    except MediaError as exc:
        raise LiveConfigError(f"--output: {exc}") from None
    recording = config.output
    if config.output is None and not config.vcam and fallback_output is not None:
        from .sinks import has_display

        if not (config.preview if config.preview is not None else has_display()):
            recording = fallback_output
            try:
                check_video_output(fallback_output)
            except MediaError as exc:
                raise LiveConfigError(f"no display and no --vcam, so the avatar is recorded, but: {exc}") from None
    try:
        if config.stats is not None:
            check_writable_file(config.stats, "statistics file")
    except MediaError as exc:
        raise LiveConfigError(f"--stats: {exc}") from None
    problem = onnx_dir_problem(config.onnx_dir, config.backend)  # the backend rule: checked by the config
    if problem is not None:
        raise LiveConfigError(problem)
    if config.camera != "auto":
        _probe_camera(config.camera)
    if config.avatar is not None:
        _check_avatar(config.avatar)
    _check_overwrites(config, recording)


def _check_overwrites(config: LiveConfig, recording: Path | None) -> None:
    """Refuse outputs that would destroy an input (the camera video, an avatar image) or each other.

    Args:
        config: the run's configuration (its camera and avatar already checked).
        recording: the video file the run writes (``--output`` or the fallback recording), if any.
    """
    from fomm.media.assets import DEFAULT_AVATAR, DEFAULT_DRIVING
    from fomm.media.video import same_file

    from .capture import CaptureSource
    from .controls import AvatarList

    if config.camera == "auto":  # no webcam: the bundled clip drives
        inputs = [(DEFAULT_DRIVING, "the bundled driving clip (the camera when no webcam opens)")]
    else:
        source = CaptureSource.parse(config.camera)
        inputs = [(Path(source.value), "the --camera video itself")] if source.kind == "file" else []
    avatars = AvatarList(config.avatar or DEFAULT_AVATAR).paths
    inputs += [(path, f"the avatar image {str(path)!r}") for path in avatars]
    outputs = [(config.output, "--output"), (config.stats, "--stats")]
    for output, flag in outputs:
        for path, what in inputs:
            if output is not None and same_file(output, path):
                raise LiveConfigError(f"{flag} {str(output)!r} is {what}; expected a new file name")
    if config.stats is not None and recording is not None and same_file(config.stats, recording):
        raise LiveConfigError(
            f"--stats {str(config.stats)!r} is also the recorded video; expected another file name (e.g. stats.json)"
        )


# --- remembered settings --------------------------------------------------------------------------------------


def _camera_problem(value: str) -> str | None:
    try:
        _probe_camera(value)
    except Exception as exc:  # CaptureError, or an OpenCV failure: the remembered camera is not usable
        return f"cannot be used ({' '.join(str(exc).split())})"
    return None


def _avatar_problem(value: str) -> str | None:
    try:
        _check_avatar(Path(value))
    except Exception as exc:  # SettingsError, MediaError
        return f"cannot be used ({' '.join(str(exc).split())})"
    return None


def _checkpoint_problem(value: str) -> str | None:
    path = Path(value).expanduser()
    if not path.exists():
        return "does not exist"
    return None if path.is_file() else "is not a file"


def _config_problem(value: str) -> str | None:
    from fomm.config import ConfigError, preset

    path = Path(value).expanduser()
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        return None if path.is_file() else "does not exist"
    try:
        preset(value)
    except ConfigError as exc:
        return f"is not usable ({exc})"
    return None


def _fit_problem(value: str) -> str | None:
    return None if value in FITS else f"is not one of {', '.join(FITS)}"


def _vcam_device_problem(value: str) -> str | None:
    return "does not exist" if value.startswith("/dev/") and not Path(value).exists() else None


_CHECKS = {
    "device": device_problem,
    "config": _config_problem,
    "checkpoint": _checkpoint_problem,
    "avatar": _avatar_problem,
    "camera": _camera_problem,
    "vcam_fit": _fit_problem,
    "vcam_device": _vcam_device_problem,
}


def usable_settings(saved: Settings, path: Path, given: Settings) -> Settings:
    """``saved`` without the remembered values that cannot be used now, each reported in one warning naming the
    settings file and the key ("settings file X: key 'device' = 'tpu' is not a device; ...; using the default").

    Keys that ``given`` (the flags) sets are not checked: the flag wins, and its own errors are the flag's.
    """
    changes = {}
    for key, problem_of in _CHECKS.items():
        value = getattr(saved, key)
        if value is None or getattr(given, key) is not None:
            continue
        problem = problem_of(value)
        if problem is not None:
            logger.warning("settings file %s: key %r = %r %s; using the default", path, key, value, problem)
            changes[key] = None
    return replace(saved, **changes) if changes else saved
