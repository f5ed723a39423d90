"""What every entry point (``fomm``, ``python -m fomm.train``, ``fomm-live``) shares: the user-error type and
an argument parser that raises it, so that each prints one ``<prog>: error: ...`` line and exits with 2.

A module of its own so that ``fomm.cli`` and ``fomm.train`` need not import each other.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

__all__ = ["CliError", "RaisingParser", "path_argument"]


class CliError(Exception):
    """A user error: reported as one ``<prog>: error: ...`` line, exit status 2 (all entry points)."""


class RaisingParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors raise :class:`CliError` (the entry point prints one line)."""

    def error(self, message: str) -> NoReturn:
        raise CliError(message)


def path_argument(text: str) -> Path:
    """The ``type`` of path options: a :class:`~pathlib.Path`, but an empty string is refused (``Path("")`` is
    ``Path(".")``, so errors would name the current folder instead of the empty argument)."""
    if not text:
        raise argparse.ArgumentTypeError("empty path")
    return Path(text)
