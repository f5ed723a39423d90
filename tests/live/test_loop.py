"""The live loop: a find-best-frame search that the camera's end cuts short still calibrates."""

from __future__ import annotations

import logging
import time

import numpy as np
from test_pipeline import FakeFramer, FakeLandmarker, frames

import fomm
from live.backends import TorchBackend
from live.loop import run_loop
from live.pipeline import PuppetPipeline
from live.stats import LatencyStats
from live.types import Frame, View


class EndingCapture:
    """Hands over ``images`` one by one, then says it ended (a video file without --loop)."""

    def __init__(self, images: list[np.ndarray]) -> None:
        self.images, self.dropped, self.next = images, 0, 0

    @property
    def ended(self) -> bool:
        return self.next >= len(self.images)

    def read(self, timeout: float | None = None, after_index: int = -1) -> Frame | None:
        if self.ended:
            return None
        index, self.next = self.next, self.next + 1
        return Frame(self.images[index], index, time.perf_counter(), index * 0.04)


class Sink:
    def __init__(self) -> None:
        self.views: list[View] = []

    def send(self, view: View) -> None:
        self.views.append(view)

    def poll_keys(self) -> list[int]:
        return []


def test_camera_that_ends_during_the_search_calibrates_on_the_best_frame(tiny: fomm.FommConfig, caplog) -> None:
    pipeline = PuppetPipeline(TorchBackend(fomm.build_fomm(tiny)), FakeFramer(64), landmarker=FakeLandmarker())
    pipeline.set_source(np.full((64, 64, 3), 100, np.uint8))
    pipeline.find_best_frame(100)  # longer than the video
    with caplog.at_level(logging.WARNING, logger="live.pipeline"):
        run_loop(EndingCapture(frames(3, seed=4)), pipeline, Sink(), stats=LatencyStats())
    assert "find best frame was cut short (the camera ended): calibrating" in caplog.text
    assert pipeline.step(frames(1, seed=5)[0]).calibrated
