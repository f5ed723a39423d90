"""Latency statistics of the live loop: per-stage times, glass-to-glass latency, FPS, dropped frames.

Memory is fixed: each series is a preallocated ring of the last ``window`` samples (percentiles are over
that window); counters cover the whole run.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["STAGES", "LatencyStats"]

#: Per-frame stages in loop order; ``glass_to_glass`` is capture timestamp -> sink send.
STAGES = ("capture_wait", "crop", "keypoints", "calibrate", "generate", "post", "sink", "glass_to_glass")


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in [0, 100]) of a sorted list."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class _Ring:
    """The last ``size`` float samples, in a preallocated array."""

    def __init__(self, size: int) -> None:
        self.data = np.empty(size, dtype=np.float64)
        self.count = 0

    def append(self, value: float) -> None:
        self.data[self.count % len(self.data)] = value
        self.count += 1

    def values(self) -> list[float]:
        return self.data[: min(self.count, len(self.data))].tolist()


class LatencyStats:
    """Collects per-stage milliseconds and frame counts.

    Args:
        window: samples kept per series for percentiles.
        ema: smoothing of the displayed FPS (weight of the previous value).
    """

    def __init__(self, window: int = 10_000, ema: float = 0.9) -> None:
        self.window = window
        self.ema = ema
        self.series: dict[str, _Ring] = {}
        self.frames = 0
        self.dropped = 0
        self.faces_lost = 0
        self.started = time.perf_counter()
        self.fps_ema: float | None = None
        self._last_frame: float | None = None

    def add(self, stage: str, ms: float) -> None:
        """Record ``ms`` for ``stage``."""
        series = self.series.get(stage)
        if series is None:
            series = self.series[stage] = _Ring(self.window)
        series.append(ms)

    def add_timings(self, timings: dict[str, float]) -> None:
        for stage, ms in timings.items():
            self.add(stage, ms)

    def frame_done(self, now: float | None = None) -> None:
        """Count a frame sent to the sinks and update the displayed FPS."""
        now = time.perf_counter() if now is None else now
        if self._last_frame is not None:
            dt = now - self._last_frame
            if dt > 0:
                fps = 1.0 / dt
                self.fps_ema = fps if self.fps_ema is None else self.ema * self.fps_ema + (1 - self.ema) * fps
        self._last_frame = now
        self.frames += 1

    def percentiles(self, stage: str) -> dict[str, float]:
        ring = self.series.get(stage)
        values = sorted(ring.values()) if ring is not None else []
        return {
            "p50": _percentile(values, 50),
            "p95": _percentile(values, 95),
            "p99": _percentile(values, 99),
            "mean": sum(values) / len(values) if values else math.nan,
            "max": values[-1] if values else math.nan,
            "samples": len(values),
        }

    def summary(self) -> dict[str, Any]:
        """Everything, JSON-ready (NaN for empty series is written as null)."""
        elapsed = time.perf_counter() - self.started
        stages = [s for s in STAGES if s in self.series] + sorted(set(self.series) - set(STAGES))
        return {
            "frames": self.frames,
            "dropped_frames": self.dropped,
            "faces_lost": self.faces_lost,
            "seconds": round(elapsed, 3),
            "fps": round(self.frames / elapsed, 3) if elapsed > 0 else None,
            "latency_ms": {
                s: {
                    k: (None if isinstance(v, float) and math.isnan(v) else round(v, 3))
                    for k, v in self.percentiles(s).items()
                }
                for s in stages
            },
        }

    def format_table(self) -> str:
        """A text table of p50/p95/p99 per stage plus the totals."""
        data = self.summary()
        lines = [f"{'stage':16s} {'p50 ms':>9s} {'p95 ms':>9s} {'p99 ms':>9s}"]
        for stage, p in data["latency_ms"].items():
            cells = " ".join(f"{p[k]:9.2f}" if p[k] is not None else f"{'-':>9s}" for k in ("p50", "p95", "p99"))
            lines.append(f"{stage:16s} {cells}")
        lines.append(
            f"frames {data['frames']}, {data['fps'] or 0:.2f} fps over {data['seconds']:.1f} s, "
            f"dropped {data['dropped_frames']}"
        )
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.summary(), indent=2))
        tmp.replace(path)
        return path
