"""The live loop: newest camera frame -> pipeline -> sinks, paced, measured, steered by keys."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from .controls import Action, actions_for
from .pipeline import PuppetPipeline, StepResult
from .stats import LatencyStats
from .types import Frame, View

__all__ = ["LoopOptions", "LoopState", "run_loop"]

logger = logging.getLogger(__name__)


class FrameReader(Protocol):
    """What the loop needs from a capture (``live.capture.LatestFrameCapture``)."""

    @property
    def ended(self) -> bool: ...

    @property
    def dropped(self) -> int: ...

    def read(self, timeout: float | None = None, after_index: int = -1) -> Frame | None: ...

    # optional: ``reconnecting`` (bool property), read with getattr


class SinkLike(Protocol):
    def send(self, view: View) -> None: ...

    def poll_keys(self) -> list[int]: ...


@dataclass
class LoopOptions:
    """Pacing and limits.

    Attributes:
        fps_cap: at most this many frames per second (``None``: as fast as the pipeline goes).
        max_frames: stop after this many animated frames.
        best_frame_frames: frames a find-best-frame search watches.
        read_timeout: seconds to wait for a camera frame before polling the keys and checking for stop requests
            (so ``q`` works while no frame comes, e.g. during reconnects).
        waiting_after: seconds without a frame after which the preview is refreshed with a "waiting for the
            camera" status (at once while the capture says it is reconnecting).
    """

    fps_cap: float | None = None
    max_frames: int | None = None
    best_frame_frames: int = 50
    read_timeout: float = 0.1
    waiting_after: float = 1.0


@dataclass
class LoopState:
    """What the keys toggle (besides the pipeline's own options)."""

    overlay: bool = True
    passthrough: bool = False


def overlay_lines(result: StepResult, stats: LatencyStats, state: LoopState, notes: list[str]) -> list[str]:
    """Overlay text: FPS, per-stage ms, calibration, status."""
    t = result.timings
    fps = stats.fps_ema or 0.0
    lines = [
        f"{fps:5.1f} fps  crop {t.get('crop', 0):.0f}  kp {t.get('keypoints', 0):.0f}  "
        f"gen {t.get('generate', 0):.0f}  post {t.get('post', 0):.0f} ms",
    ]
    if not result.calibrated:
        lines.append("waiting for a face to calibrate")
    elif result.calibration_score is not None:
        lines.append(f"calibration distance {result.calibration_score:.3f} (c: recalibrate, b: best frame)")
    if result.calibrated and not result.framing.face_found:
        if result.rest <= 0.0:
            lines.append("no face: holding the last pose")
        else:
            lines.append("no face: easing back to the rest pose" if result.rest < 1.0 else "no face: rest pose")
    if result.searching:
        lines.append("finding best frame: look at the camera like the avatar does")
    if state.passthrough:
        lines.append("PASSTHROUGH: showing the real camera")
    return lines + notes


def run_loop(
    capture: FrameReader,
    pipeline: PuppetPipeline,
    sinks: SinkLike,
    *,
    stats: LatencyStats,
    options: LoopOptions | None = None,
    state: LoopState | None = None,
    stop: threading.Event | None = None,
    on_action: Callable[[Action], None] | None = None,
    notes: list[str] | None = None,
) -> LatencyStats:
    """Run until the capture ends, ``stop`` is set, a quit key is pressed or ``max_frames`` are done.

    The caller owns the capture and the sinks (and closes them); the loop only reads and sends.

    Args:
        capture: newest-frame reader.
        pipeline: per-frame work (its source must be set).
        sinks: where views go; also the source of key presses.
        stats: collects the measurements.
        options: pacing and limits.
        state: overlay / passthrough toggles (kept by the caller to survive avatar swaps).
        stop: set from another thread or a signal handler to end the loop.
        on_action: handles actions the loop does not (next/previous avatar, ...).
        notes: extra overlay lines shown on every frame (e.g. "UNTRAINED WEIGHTS").
    """
    options = options or LoopOptions()
    state = state or LoopState()
    stop = stop or threading.Event()
    notes = notes or []
    last_index = -1
    had_face = True
    if stats.frames == 0:
        stats.started = time.perf_counter()  # FPS counts the loop, not the start-up
    next_due = time.perf_counter()
    last_view: View | None = None
    last_frame_at = time.perf_counter()
    while not stop.is_set():
        # 1. newest frame (blocks until one newer than the last arrives, at most read_timeout)
        t0 = time.perf_counter()
        frame = capture.read(timeout=options.read_timeout, after_index=last_index)
        if frame is None:
            if capture.ended:
                logger.info("camera stream ended")
                pipeline.end_search("the camera ended")
                break
            # no frame yet: keep the window alive and the keys working
            reconnecting = bool(getattr(capture, "reconnecting", False))
            if reconnecting or time.perf_counter() - last_frame_at >= options.waiting_after:
                _send_waiting(sinks, last_view, pipeline, reconnecting)
            _handle_keys(sinks, pipeline, state, options, stop, on_action)
            continue
        last_frame_at = time.perf_counter()
        stats.add("capture_wait", (time.perf_counter() - t0) * 1000.0)
        last_index = frame.index
        stats.dropped = capture.dropped
        # 2. per-frame work
        result = pipeline.step(frame.image, frame.time)
        stats.add_timings(result.timings)
        if had_face and not result.framing.face_found:
            stats.faces_lost += 1
            logger.info("face lost: holding the last pose, then easing to the rest pose")
        elif not had_face and result.framing.face_found:
            logger.info("face found again")
        had_face = result.framing.face_found
        # 3. sinks
        view = View(
            output=result.output,
            camera=result.camera,
            crop=result.framing.crop,
            keypoints=result.keypoints,
            face_found=result.framing.face_found,
            lines=overlay_lines(result, stats, state, notes) if state.overlay else [],
            passthrough=state.passthrough,
            timestamp=frame.timestamp,
            time=frame.time,
        )
        t1 = time.perf_counter()
        sinks.send(view)
        t2 = time.perf_counter()
        stats.add("sink", (t2 - t1) * 1000.0)
        stats.add("glass_to_glass", (t2 - frame.timestamp) * 1000.0)
        stats.frame_done(t2)
        last_view = view
        # 4. keys
        _handle_keys(sinks, pipeline, state, options, stop, on_action)
        if options.max_frames is not None and stats.frames >= options.max_frames:
            break
        # 5. pacing
        if options.fps_cap:
            next_due = max(next_due + 1.0 / options.fps_cap, time.perf_counter() - 1.0)
            delay = next_due - time.perf_counter()
            if delay > 0:
                stop.wait(delay)
    pipeline.end_search("the run stopped")  # a quit key, a signal or --max-frames (no-op after the camera ended)
    return stats


def _handle_keys(
    sinks: SinkLike,
    pipeline: PuppetPipeline,
    state: LoopState,
    options: LoopOptions,
    stop: threading.Event,
    on_action: Callable[[Action], None] | None,
) -> None:
    for action in actions_for(sinks.poll_keys()):
        if _apply(action, pipeline, state, options) and on_action is not None:
            on_action(action)
        if action is Action.QUIT:
            stop.set()


def _send_waiting(sinks: SinkLike, last: View | None, pipeline: PuppetPipeline, reconnecting: bool) -> None:
    """Refresh the preview while no camera frame comes: the last view (or the avatar) with a status line."""
    line = "camera lost: reconnecting... (q: quit)" if reconnecting else "waiting for the camera... (q: quit)"
    if last is not None:
        view = replace(last, lines=[*last.lines, line], waiting=True)
    else:
        still = pipeline.source_image
        if still is None:
            return
        view = View(output=still, camera=np.zeros_like(still), face_found=False, lines=[line], waiting=True)
    sinks.send(view)


def _apply(action: Action, pipeline: PuppetPipeline, state: LoopState, options: LoopOptions) -> bool:
    """Apply what the loop itself handles; ``True`` when the caller should handle ``action``."""
    if action is Action.CALIBRATE:
        pipeline.request_calibration()
    elif action is Action.FIND_BEST_FRAME:
        pipeline.find_best_frame(options.best_frame_frames)
    elif action is Action.TOGGLE_MIRROR:
        pipeline.mirror = not pipeline.mirror
        pipeline.framer.reset()
    elif action is Action.TOGGLE_PASSTHROUGH:
        state.passthrough = not state.passthrough
    elif action is Action.TOGGLE_OVERLAY:
        state.overlay = not state.overlay
    elif action is Action.TOGGLE_RELATIVE:
        pipeline.set_relative(not pipeline.relative)
        logger.info("motion transfer: %s", "relative" if pipeline.relative else "absolute")
    else:
        return True
    return False
