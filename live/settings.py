"""The user's remembered choices (camera, avatar, checkpoint, modes), kept in a small JSON file.

Location: ``$FOMM_LIVE_SETTINGS`` when set, else ``$XDG_CONFIG_HOME/fomm-live/settings.json`` (default
``~/.config/fomm-live/settings.json``; ``%APPDATA%\\fomm-live\\settings.json`` on Windows). Reading never fails:
a missing file gives the defaults, a corrupt one logs a warning and gives the defaults. Writing is atomic
(temporary file + rename) and keeps every key this version does not know.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import re
import shutil
import tempfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .config import MAX_FPS, is_number

__all__ = [
    "SETTINGS_ENV",
    "Settings",
    "SettingsError",
    "load_settings",
    "parse_size",
    "save_settings",
    "settings_path",
]

logger = logging.getLogger(__name__)

SETTINGS_ENV = "FOMM_LIVE_SETTINGS"
_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
#: upper bounds of the remembered numbers (the flags' own)
_MOST = {"fps_cap": MAX_FPS}


class SettingsError(ValueError):
    """A setting or live-tool input (avatar path, size) that cannot be used; one line meant for the user."""


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> ``(640, 480)`` (width, height).

    Raises:
        SettingsError: not ``WIDTHxHEIGHT`` with positive integers.
    """
    match = _SIZE.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise SettingsError(f"size {text!r} is not WIDTHxHEIGHT (e.g. 640x480 or 1280x720)")
    return int(match.group(1)), int(match.group(2))


@dataclass
class Settings:
    """Remembered choices; ``None`` means "not set" (the tool's default applies).

    Attributes:
        camera: webcam index or device/URL, as text (``"0"``, ``"/dev/video2"``).
        avatar: avatar image or folder of images.
        checkpoint: model checkpoint file.
        config: model preset name or YAML file.
        device: torch device (``"cpu"``, ``"cuda"``).
        relative: relative (True) or absolute (False) motion transfer.
        adapt_scale: scale relative motion by the keypoint hulls' size ratio.
        mirror: mirror the camera image horizontally.
        overlay: show the overlay text in the preview.
        vcam_size: virtual camera frame size, ``"WIDTHxHEIGHT"``.
        vcam_fit: how the avatar fills the virtual camera frame (``letterbox``, ``scale``, ``crop``).
        vcam_device: a specific virtual camera device.
        fps_cap: upper bound of the loop's frame rate.
        extra: keys of the file this version does not know, written back unchanged.
    """

    camera: str | None = None
    avatar: str | None = None
    checkpoint: str | None = None
    config: str | None = None
    device: str | None = None
    relative: bool | None = None
    adapt_scale: bool | None = None
    mirror: bool | None = None
    overlay: bool | None = None
    vcam_size: str | None = None
    vcam_fit: str | None = None
    vcam_device: str | None = None
    fps_cap: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def merged(self, overrides: Settings) -> Settings:
        """These settings with every field that ``overrides`` sets (not ``None``) taken from it."""
        changes = {name: getattr(overrides, name) for name in _field_types() if getattr(overrides, name) is not None}
        return replace(self, extra={**self.extra, **overrides.extra}, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The file's content: the unknown keys, then every field that is set."""
        data = dict(self.extra)
        for name in _field_types():
            value = getattr(self, name)
            if value is None:
                data.pop(name, None)
            else:
                data[name] = value
        return data


def _field_types() -> dict[str, str]:
    """Settings field name -> kind (``str``, ``bool``, ``float``), without ``extra``."""
    kinds = {}
    for item in fields(Settings):
        if item.name == "extra":
            continue
        annotation = str(item.type)
        kinds[item.name] = "bool" if "bool" in annotation else "float" if "float" in annotation else "str"
    return kinds


def settings_path() -> Path:
    """Where the settings live (see the module docstring)."""
    explicit = os.environ.get(SETTINGS_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg and Path(xdg).is_absolute():
        base = Path(xdg)
    elif platform.system() == "Windows" and os.environ.get("APPDATA"):
        base = Path(os.environ["APPDATA"])
    else:
        base = Path.home() / ".config"
    return base / "fomm-live" / "settings.json"


def _coerce(name: str, kind: str, value: Any) -> tuple[bool, Any]:
    """``(valid, value)`` for one known key read from the file."""
    if value is None:
        return True, None
    if kind == "bool":
        return isinstance(value, bool), value
    if kind == "float":
        ok = is_number(value) and 0 < value <= _MOST.get(name, math.inf)
        return ok, float(value) if ok else None
    if name == "camera" and isinstance(value, int) and not isinstance(value, bool):
        return True, str(value)
    if not isinstance(value, str):
        return False, None
    if name == "vcam_size":
        try:
            parse_size(value)
        except SettingsError:
            return False, None
    return True, value


def _read_json(path: Path) -> dict[str, Any] | None:
    """The file's JSON object; ``None`` when the file is missing; raises ``ValueError`` when unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot be read ({exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"holds a JSON {type(data).__name__}, not an object")
    return data


def load_settings(path: str | Path | None = None) -> Settings:
    """Read the settings (``path`` or :func:`settings_path`). Never raises for a missing or bad file.

    A missing file gives the defaults; an unreadable or corrupt file logs a warning and gives the defaults; a
    known key with a value of the wrong type logs a warning and is left unset. Unknown keys go to ``extra``.
    """
    path = Path(path) if path is not None else settings_path()
    try:
        data = _read_json(path)
    except ValueError as exc:
        logger.warning("settings file %s %s: using the defaults", path, exc)
        return Settings()
    if data is None:
        logger.debug("no settings file at %s: using the defaults", path)
        return Settings()
    kinds = _field_types()
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if key not in kinds:
            extra[key] = value
            continue
        ok, coerced = _coerce(key, kinds[key], value)
        if ok:
            values[key] = coerced
        else:
            most = f" and <= {_MOST[key]:g}" if key in _MOST else ""
            text = "a size WIDTHxHEIGHT (e.g. 640x480)" if key == "vcam_size" else "a text"
            expected = {"bool": "true or false", "float": f"a number > 0{most}"}.get(kinds[key], text)
            logger.warning("settings file %s: key %r = %r is not %s; using the default", path, key, value, expected)
    return Settings(**values, extra=extra)


def save_settings(settings: Settings, path: str | Path | None = None) -> Path:
    """Write the settings atomically (``path`` or :func:`settings_path`); returns the path written.

    Keys already in the file that :class:`Settings` does not know are kept (as are those in
    ``settings.extra``); a field set to ``None`` is removed. A corrupt existing file is kept beside the new one
    as ``settings.json.bak``.

    Raises:
        SettingsError: the file cannot be written (e.g. permissions).
    """
    path = Path(path) if path is not None else settings_path()
    try:
        existing = _read_json(path) or {}
    except ValueError as exc:
        backup = path.with_name(path.name + ".bak")
        logger.warning("settings file %s %s: replacing it (old content kept as %s)", path, exc, backup)
        try:
            shutil.copyfile(path, backup)
        except OSError as copy_exc:
            logger.warning("cannot keep a copy of %s: %s", path, copy_exc)
        existing = {}
    kinds = _field_types()
    data = {key: value for key, value in existing.items() if key not in kinds}
    data.update(settings.to_dict())
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    tmp_name: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as handle:
            tmp_name = handle.name
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as exc:
        raise SettingsError(f"cannot write the settings file {str(path)!r}: {exc}") from exc
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
    logger.debug("settings saved to %s", path)
    return path
