"""A pyvirtualcam backend for tests: records what a virtual camera would receive.

In-process tests register :class:`RecordingBackend`. A subprocess (``run_live.py``) gets it through
:func:`write_sitecustomize`: the backend ``fomm-test`` then appends one JSON line per event (open, frame,
close) to the file named by ``FOMM_TEST_VCAM_LOG``.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

__all__ = ["RecordingBackend", "read_log", "write_sitecustomize"]


class RecordingBackend:
    """A pyvirtualcam backend that keeps what it receives (and logs it to ``FOMM_TEST_VCAM_LOG`` if set)."""

    instances: ClassVar[list[RecordingBackend]] = []

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw: Any) -> None:
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self.device_name = device or "/dev/fomm-test0"
        self.frames: list[np.ndarray] = []
        self.close_calls = 0
        self._log = os.environ.get("FOMM_TEST_VCAM_LOG")
        RecordingBackend.instances.append(self)
        self._event("open", width=width, height=height, fourcc=fourcc)

    def _event(self, kind: str, **data: Any) -> None:
        if self._log:
            with open(self._log, "a") as f:
                f.write(json.dumps({"event": kind, **data}) + "\n")

    def send(self, frame: np.ndarray) -> None:
        assert frame.ndim == 1 and frame.dtype == np.uint8 and frame.flags.c_contiguous
        image = frame.reshape(self.height, self.width, 3)
        if self._log:
            self._event("frame", shape=list(image.shape), dtype=str(image.dtype))
        else:
            self.frames.append(image.copy())

    def close(self) -> None:
        self.close_calls += 1
        self._event("close")

    def device(self) -> str:
        return self.device_name

    def native_fourcc(self) -> int | None:
        return None


def write_sitecustomize(folder: Path) -> Path:
    """A ``sitecustomize.py`` in ``folder`` that registers ``fomm-test`` (put ``folder`` on PYTHONPATH)."""
    here = Path(__file__).resolve().parent
    path = folder / "sitecustomize.py"
    path.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(here)!r})
            import pyvirtualcam
            from vcam_backend import RecordingBackend
            pyvirtualcam.register_backend("fomm-test", RecordingBackend)
            """
        )
    )
    return path


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
