"""What every entry point (``fomm``, ``python -m fomm.train``, ``fomm-live``) shares: the user-error type and
an argument parser that raises it, so that each prints one ``<prog>: error: ...`` line and exits with 2.

A module of its own so that ``fomm.cli`` and ``fomm.train`` need not import each other.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

__all__ = ["ONNX_BACKENDS", "CliError", "RaisingParser", "one_line", "onnx_dir_problem", "path_argument"]


#: The backends that run exported graphs: the ones ``--onnx-dir`` is for (``fomm animate``, ``run_live.py``).
ONNX_BACKENDS = ("onnx", "trt")


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


def one_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (its type's name when the message is empty): the reason an error line
    quotes."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def onnx_dir_problem(onnx_dir: Path | None, backend: str, *, folder: bool = True) -> str | None:
    """What is wrong with ``--onnx-dir`` for ``--backend`` (``None``: fine, or no ``--onnx-dir``): a backend that
    does not use it, or (``folder``) a path that is not a folder."""
    if onnx_dir is None:
        return None
    if backend not in ONNX_BACKENDS:
        return (
            f"--onnx-dir is for --backend {' or '.join(ONNX_BACKENDS)} (graphs from `fomm export`); "
            f"--backend {backend} does not use it"
        )
    if folder and not onnx_dir.expanduser().is_dir():
        return f"--onnx-dir {str(onnx_dir)!r} is not a folder; expected an export folder from `fomm export`"
    return None
