"""Small value types shared by the live modules."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Frame", "View", "counted"]


@dataclass(frozen=True)
class Frame:
    """One camera frame.

    Attributes:
        image: ``(H, W, 3)`` uint8 BGR (OpenCV order).
        index: 0-based sequence number of the frames the source produced; gaps are frames that were
            dropped because a newer one arrived first.
        timestamp: ``time.perf_counter()`` when the frame was grabbed (start of glass-to-glass latency).
        media_time: the frame's own time in seconds on its source's timeline: ``index / fps`` for a video file
            (the same on every run, paced or not), ``None`` for cameras and streams (their grab time is
            their time).
    """

    image: np.ndarray
    index: int
    timestamp: float
    media_time: float | None = None

    @property
    def time(self) -> float:
        """The frame's time for everything that depends on time (keypoint filter, face-loss timing,
        recording): :attr:`media_time` when the source has one, else the grab time."""
        return self.timestamp if self.media_time is None else self.media_time


@dataclass
class View:
    """What the sinks show for one step.

    Attributes:
        output: ``(S, S, 3)`` uint8 BGR animated avatar at the model size.
        camera: ``(H, W, 3)`` uint8 BGR raw camera frame.
        crop: ``(S, S, 3)`` uint8 BGR driver crop fed to the model, or ``None``.
        keypoints: ``(K, 2)`` float driving keypoints in ``[-1, 1]`` (x, y) of the crop, or ``None``.
        face_found: whether a face was seen in this frame (``False`` while the last crop is held).
        lines: overlay text (FPS, per-stage ms, calibration score, status), top to bottom.
        passthrough: show the real camera instead of the avatar.
        timestamp: capture time of the frame (``time.perf_counter()``), for glass-to-glass latency.
        time: the frame's own time (:attr:`Frame.time`), seconds: recordings are timed by it.
        waiting: a status refresh while no camera frame comes (e.g. reconnecting), not a new frame: shown by the
            preview only (not sent to a virtual camera, not recorded).
    """

    output: np.ndarray
    camera: np.ndarray
    crop: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    face_found: bool = True
    lines: list[str] = field(default_factory=list)
    passthrough: bool = False
    timestamp: float = 0.0
    time: float | None = None
    waiting: bool = False


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: ``counted(1, "frame")`` is ``"1 frame"``, else ``"N frames"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
