"""Degenerate numbers through the live pipeline (the last good frame is shown, logged once) and stage timing
with CUDA events (a fake event here; the real one under the ``gpu`` marker)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from test_pipeline import FakeFramer, frames

import fomm
from live.backends import TorchBackend
from live.filters import KeypointFilter
from live.pipeline import PuppetPipeline, _cuda_events, _Timer


@pytest.fixture
def backend(tiny: fomm.FommConfig) -> TorchBackend:
    return TorchBackend(fomm.build_fomm(tiny))


def _singular(kp: fomm.Keypoints) -> fomm.Keypoints:
    return fomm.Keypoints(kp.value, torch.zeros_like(kp.jacobian))


def _nan_value(kp: fomm.Keypoints) -> fomm.Keypoints:
    return fomm.Keypoints(torch.full_like(kp.value, float("nan")), kp.jacobian)


def _nearly_singular(kp: fomm.Keypoints) -> fomm.Keypoints:
    jacobian = kp.jacobian.clone()
    jacobian[:, 0] = torch.tensor([[1e-5, 0.0], [0.0, 1e-5]])
    return fomm.Keypoints(kp.value, jacobian)


@pytest.mark.parametrize("relative", [True, False], ids=["relative", "absolute"])
@pytest.mark.parametrize("corrupt", [_singular, _nearly_singular, _nan_value], ids=["singular", "near", "nan"])
def test_degenerate_keypoints_show_the_last_good_frame(
    backend: TorchBackend, corrupt, relative: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = PuppetPipeline(backend, FakeFramer(64), relative=relative, keypoint_filter=KeypointFilter(0.5))
    pipeline.set_source(frames(1, seed=1)[0])
    driving = frames(8, seed=2)
    good = [pipeline.step(f, timestamp=i * 0.04) for i, f in enumerate(driving[:3])]
    last_good = good[-1].output.copy()
    real = backend.keypoints
    monkeypatch.setattr(backend, "keypoints", lambda image: corrupt(real(image)))
    with caplog.at_level(logging.WARNING, logger="live.pipeline"):
        bad = [pipeline.step(f, timestamp=(3 + i) * 0.04) for i, f in enumerate(driving[3:6])]
    for result in bad:
        assert np.array_equal(result.output, last_good)
        assert result.keypoints is not None and np.isfinite(result.keypoints).all()
    assert pipeline.bad_frames == 3
    assert len([r for r in caplog.records if "last good frame" in r.message]) == 1  # logged once
    monkeypatch.setattr(backend, "keypoints", real)
    resumed = pipeline.step(driving[6], timestamp=6 * 0.04)  # good keypoints again: animation resumes
    assert not np.array_equal(resumed.output, last_good)
    assert torch.isfinite(pipeline._last_kp.value).all()  # the filter was not poisoned by the NaN frames


def test_non_finite_generated_frame_shows_the_last_good_frame(
    backend: TorchBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = PuppetPipeline(backend, FakeFramer(64))
    pipeline.set_source(frames(1, seed=1)[0])
    last_good = pipeline.step(frames(1, seed=2)[0]).output.copy()
    real = backend.generate
    monkeypatch.setattr(backend, "generate", lambda kp: real(kp) * float("nan"))
    result = pipeline.step(frames(1, seed=3)[0])
    assert np.array_equal(result.output, last_good) and pipeline.bad_frames == 1


def test_no_calibration_on_a_singular_first_frame(backend: TorchBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = PuppetPipeline(backend, FakeFramer(64))
    avatar = pipeline.set_source(frames(1, seed=1)[0])
    real = backend.keypoints
    monkeypatch.setattr(backend, "keypoints", lambda image: _singular(real(image)))
    first = pipeline.step(frames(1, seed=2)[0])
    assert not first.calibrated and np.array_equal(first.output, avatar)
    monkeypatch.setattr(backend, "keypoints", real)
    second = pipeline.step(frames(1, seed=3)[0])
    assert second.calibrated and torch.isfinite(pipeline._calibration.initial_jacobian_inv).all()


class FakeEvent:
    """Records the time of a fake GPU clock; ``elapsed_time`` in ms like ``torch.cuda.Event``."""

    clock = 0.0
    synced: list[FakeEvent] = []  # noqa: RUF012

    def __init__(self) -> None:
        self.t: float | None = None

    def record(self) -> None:
        self.t = FakeEvent.clock

    def synchronize(self) -> None:
        FakeEvent.synced.append(self)

    def elapsed_time(self, end: FakeEvent) -> float:
        assert self.t is not None and end.t is not None, "elapsed_time on an event that was not recorded"
        return end.t - self.t


def test_timer_uses_events_when_given() -> None:
    FakeEvent.clock, FakeEvent.synced = 0.0, []
    timer = _Timer(FakeEvent)
    for stage, gpu_ms in (("crop", 1.0), ("keypoints", 4.0), ("generate", 20.0), ("post", 0.5), ("keypoints", 1.0)):
        FakeEvent.clock += gpu_ms
        timer.lap(stage)
    timings = timer.result()
    assert timings == {"crop": 1.0, "keypoints": 5.0, "generate": 20.0, "post": 0.5}
    assert len(FakeEvent.synced) == 1  # waits once, for the last event


def test_timer_on_cpu_uses_the_wall_clock() -> None:
    assert _cuda_events(torch.device("cpu")) is None
    timer = _Timer()
    timer.lap("crop")
    timer.lap("post")
    timings = timer.result()
    assert set(timings) == {"crop", "post"} and all(v >= 0 for v in timings.values())


@pytest.mark.gpu
def test_cuda_stage_timings_count_gpu_work_where_it_was_queued(tiny: fomm.FommConfig) -> None:
    backend = TorchBackend(fomm.build_fomm(tiny), "cuda")
    pipeline = PuppetPipeline(backend, FakeFramer(64))
    assert pipeline._events is not None
    pipeline.set_source(frames(1, seed=1)[0])
    for f in frames(5, seed=2):
        result = pipeline.step(f)
    assert {"crop", "keypoints", "calibrate", "generate", "post"} <= set(result.timings)
    assert all(v >= 0 for v in result.timings.values()) and result.timings["generate"] > 0
