"""ONNX helpers for :mod:`engines` (``onnx`` imported lazily, with an install hint)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engines.errors import EngineError
from fomm.hashing import sha256_file

__all__ = ["load_onnx", "onnx_sha256", "require_onnx"]


def require_onnx() -> Any:
    """The ``onnx`` module, or an :class:`EngineError` saying how to install it."""
    try:
        import onnx
    except ImportError as exc:
        raise EngineError("the onnx package is missing; install it with `pip install -e .[export]`") from exc
    return onnx


def load_onnx(path: str | Path) -> Any:
    """Load an ONNX model (external data next to it), one-line error if the file is missing or not ONNX."""
    onnx = require_onnx()
    path = Path(path)
    if path.is_dir():
        example = str(path / "animate.onnx")
        raise EngineError(f"{str(path)!r} is a folder; expected one exported graph file, e.g. {example!r}")
    if not path.is_file():
        raise EngineError(f"ONNX file {str(path)!r} does not exist; export the model first (python -m export)")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends: the file is not an ONNX model
        raise EngineError(f"{str(path)!r} is not a readable ONNX model ({type(exc).__name__}: {exc})") from exc


def onnx_sha256(path: str | Path) -> str:
    """SHA-256 of the ONNX file (with ``+``-joined hashes of its ``<name>.data*`` external-data files, if any)."""
    path = Path(path)
    parts = [sha256_file(path)] + [sha256_file(extra) for extra in sorted(path.parent.glob(f"{path.name}.data*"))]
    return "+".join(parts) if len(parts) > 1 else parts[0]
