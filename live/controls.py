"""Keyboard controls of the live tool and the list of avatars it cycles through.

Keys arrive as ``cv2.waitKey`` codes from the preview window (:meth:`live.sinks.PreviewSink.poll_keys`);
:func:`actions_for` turns them into :class:`Action` values for the loop.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fomm.media.image import IMAGE_SUFFIXES

from .settings import SettingsError

__all__ = ["AVATAR_SUFFIXES", "KEYMAP", "Action", "AvatarList", "actions_for", "help_lines"]

#: what the image loader reads (:data:`fomm.media.image.IMAGE_SUFFIXES`): one list, so that ``fomm animate
#: --source`` and ``--avatar`` accept the same files
AVATAR_SUFFIXES: frozenset[str] = IMAGE_SUFFIXES


class Action(enum.Enum):
    """What a key press asks the live loop to do."""

    CALIBRATE = "calibrate"
    FIND_BEST_FRAME = "find best frame"
    NEXT_AVATAR = "next avatar"
    PREVIOUS_AVATAR = "previous avatar"
    TOGGLE_MIRROR = "mirror"
    TOGGLE_PASSTHROUGH = "passthrough (show the real camera)"
    TOGGLE_OVERLAY = "overlay"
    TOGGLE_RELATIVE = "relative/absolute"
    QUIT = "quit"


ESC = 27

# Key names as shown in the help, in help order; letters also work with Shift / Caps Lock.
_BINDINGS: tuple[tuple[Action, tuple[str, ...]], ...] = (
    (Action.CALIBRATE, ("c",)),
    (Action.FIND_BEST_FRAME, ("b",)),
    (Action.NEXT_AVATAR, ("n", "]")),
    (Action.PREVIOUS_AVATAR, ("p", "[")),
    (Action.TOGGLE_MIRROR, ("m",)),
    (Action.TOGGLE_PASSTHROUGH, ("space",)),
    (Action.TOGGLE_OVERLAY, ("o",)),
    (Action.TOGGLE_RELATIVE, ("r",)),
    (Action.QUIT, ("q", "Esc")),
)
_SPECIAL = {"space": ord(" "), "Esc": ESC}


def _codes(name: str) -> list[int]:
    if name in _SPECIAL:
        return [_SPECIAL[name]]
    return sorted({ord(name), ord(name.upper())})


KEYMAP: dict[int, Action] = {code: action for action, names in _BINDINGS for name in names for code in _codes(name)}
"""Key code (low byte of ``cv2.waitKey``) -> action."""


def actions_for(keys: Iterable[int]) -> list[Action]:
    """The actions for key codes, in order; unknown keys and ``-1`` (no key) are ignored.

    Codes are masked with ``0xFF`` first: ``cv2.waitKey`` may set high bits (modifier state on some backends).
    """
    actions = []
    for key in keys:
        if key is None or key < 0:
            continue
        action = KEYMAP.get(int(key) & 0xFF)
        if action is not None:
            actions.append(action)
    return actions


def help_lines() -> list[str]:
    """One line per action, e.g. ``"c        calibrate"``, for the README and the overlay."""
    keys = [" ".join(names) for _, names in _BINDINGS]
    width = max(len(text) for text in keys) + 2
    return [f"{text:<{width}}{action.value}" for text, (action, _) in zip(keys, _BINDINGS, strict=True)]


def _natural_key(name: str) -> list[Any]:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name)]


class AvatarList:
    """The avatar images to cycle through: one image, or every image in a folder (natural order, so
    ``2.png`` comes before ``10.png``).

    Args:
        path: an image file (one of :data:`AVATAR_SUFFIXES`: ``.png``, ``.jpg``, ``.tif``, ...) or a folder of
            them (not searched recursively; hidden files are skipped).
        start: the file to start at (a path or a file name in the folder); default the first.

    Raises:
        SettingsError: the path does not exist, is not an image, or the folder holds no images.
    """

    def __init__(self, path: str | Path, start: str | Path | None = None) -> None:
        self.path = Path(path).expanduser()
        suffixes = ", ".join(sorted(AVATAR_SUFFIXES))
        if not self.path.exists():
            raise SettingsError(f"avatar {str(self.path)!r} does not exist (expected an image or a folder of images)")
        if self.path.is_dir():
            files = [
                p
                for p in self.path.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in AVATAR_SUFFIXES
            ]
            if not files:
                raise SettingsError(f"avatar folder {str(self.path)!r} holds no images (expected {suffixes} files)")
            self.paths: list[Path] = sorted(files, key=lambda p: _natural_key(p.name))
        elif self.path.suffix.lower() in AVATAR_SUFFIXES:
            self.paths = [self.path]
        else:
            raise SettingsError(f"avatar {str(self.path)!r} is not an image file (expected {suffixes})")
        self.index = 0
        if start is not None:
            wanted = Path(start).name
            for index, candidate in enumerate(self.paths):
                if candidate.name == wanted:
                    self.index = index
                    break

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def current(self) -> Path:
        """The avatar in use."""
        return self.paths[self.index]

    def next(self) -> Path:
        """Move to the next avatar (after the last: the first) and return it."""
        self.index = (self.index + 1) % len(self.paths)
        return self.current

    def previous(self) -> Path:
        """Move to the previous avatar (before the first: the last) and return it."""
        self.index = (self.index - 1) % len(self.paths)
        return self.current

    def __repr__(self) -> str:
        return f"AvatarList({str(self.path)!r}, {len(self.paths)} images, current={self.current.name!r})"
