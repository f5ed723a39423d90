"""Pipeline pieces on CPU with a tiny real model: pixel conversion, backend, stats, calibration, face loss."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

import fomm
from fomm import precision
from live.backends import BackendError, TorchBackend
from live.crop import Framing
from live.filters import KeypointFilter
from live.pipeline import PuppetPipeline
from live.processor import FrameProcessor
from live.stats import LatencyStats


class FakeFramer:
    """Crops the centre square; reports a face unless the frame is blank."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.resets = 0

    def crop_image(self, image: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
        return image[: self.size, : self.size].copy(), (0.0, 0.0, float(self.size))

    def __call__(self, image: np.ndarray) -> Framing:
        found = bool(image.std() > 1)
        return Framing(
            image[: self.size, : self.size].copy(), (0.0, 0.0, float(self.size)), found, not found, True, 1.0
        )

    def reset(self) -> None:
        self.resets += 1


class FakeLandmarker:
    """Five landmarks that move with the image's brightness (so 'poses' can be ranked)."""

    def landmarks(self, image_rgb: np.ndarray) -> np.ndarray:
        shift = float(image_rgb.mean()) / 10
        base = np.array([[10, 10], [30, 10], [20, 20], [12, 30], [28, 30]], np.float64)
        base[2, 1] += shift
        return base


@pytest.fixture
def backend(tiny: fomm.FommConfig) -> TorchBackend:
    return TorchBackend(fomm.build_fomm(tiny))


def frames(n: int, size: int = 64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def test_processor_round_trip_and_colour_order() -> None:
    proc = FrameProcessor()
    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 0] = 255  # pure blue in BGR
    tensor = proc.to_tensor(image)
    assert tensor.shape == (1, 3, 4, 6) and tensor.dtype == torch.float32
    assert tensor[0, 2].min() == 1.0 and tensor[0, :2].max() == 0.0  # blue is the last RGB channel
    back = proc.to_image(tensor)
    assert back.dtype == np.uint8 and back.flags.c_contiguous and np.array_equal(back, image)
    with pytest.raises(ValueError, match="uint8 BGR"):
        proc.to_tensor(image.astype(np.float32))


def test_backend_matches_animator(backend: TorchBackend) -> None:
    source, driving = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    kp_source = backend.set_source(source)
    kp = backend.keypoints(driving)
    out = backend.generate(fomm.transfer_motion(kp, fomm.calibrate(kp_source, kp, adapt_movement_scale=True)))
    animator = fomm.Animator(backend.model)
    animator.set_source(source)
    torch.testing.assert_close(out, animator.step(driving), atol=1e-6, rtol=0)


def test_backend_precision_rules(tiny: fomm.FommConfig) -> None:
    with pytest.raises(BackendError, match="fp16 needs a CUDA device"):
        TorchBackend(fomm.build_fomm(tiny), "cpu", "fp16")
    bf16 = TorchBackend(fomm.build_fomm(tiny), "cpu", "bf16")
    kp = bf16.set_source(torch.rand(1, 3, 64, 64))
    assert kp.value.dtype == torch.float32
    assert bf16.generate(kp).dtype == torch.float32


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_bf16_kernels_warns(tiny: fomm.FommConfig, monkeypatch, caplog, native: bool) -> None:
    monkeypatch.setattr(precision, "_native_bf16", lambda: native)
    with caplog.at_level("WARNING", logger="live.backends"):
        TorchBackend(fomm.build_fomm(tiny), "cpu", "bf16")
        TorchBackend(fomm.build_fomm(tiny), "cpu", "fp32")
    warned = [r.getMessage() for r in caplog.records if "bf16" in r.getMessage()]
    assert len(warned) == (0 if native else 1)
    assert all(m.startswith("--dtype bf16: this CPU") and "fp32 runs faster" in m for m in warned)


def test_stats_percentiles_and_bounded_memory(tmp_path: Any) -> None:
    stats = LatencyStats(window=100)
    for i in range(1000):
        stats.add("generate", float(i))
        stats.frame_done(now=i * 0.04)
    p = stats.percentiles("generate")
    assert p["samples"] == 100 and p["p50"] == pytest.approx(949.5) and p["max"] == 999
    assert stats.frames == 1000 and stats.fps_ema == pytest.approx(25.0)
    summary = stats.summary()
    assert summary["latency_ms"]["generate"]["p99"] == pytest.approx(998.01)
    assert math.isnan(stats.percentiles("missing")["p50"])
    path = stats.write_json(tmp_path / "s.json")
    assert '"generate"' in path.read_text()
    assert "generate" in stats.format_table()


def test_relative_pipeline_calibrates_on_first_face_and_holds_when_lost(backend: TorchBackend) -> None:
    pipeline = PuppetPipeline(backend, FakeFramer(64), keypoint_filter=KeypointFilter(0.5))
    avatar = frames(1, seed=1)[0]
    crop = pipeline.set_source(avatar)
    assert crop.shape == (64, 64, 3)
    blank = np.zeros((64, 64, 3), np.uint8)
    first = pipeline.step(blank)  # no face yet: the avatar itself, not calibrated
    assert not first.calibrated and np.array_equal(first.output, avatar)
    moving = frames(4, seed=2)
    results = [pipeline.step(f, timestamp=i * 0.04) for i, f in enumerate(moving)]
    assert all(r.calibrated for r in results)
    assert {"crop", "keypoints", "calibrate", "generate", "post"} <= set(results[0].timings)
    assert results[0].keypoints is not None and results[0].keypoints.shape == (4, 2)
    held = pipeline.step(blank)  # face lost: the last keypoints drive, the avatar holds still
    assert not held.framing.face_found
    np.testing.assert_array_equal(held.keypoints, results[-1].keypoints)
    again = pipeline.step(moving[-1])  # face found again: animation resumes
    assert again.framing.face_found and again.calibrated


def test_recalibration_and_best_frame_search(backend: TorchBackend) -> None:
    pipeline = PuppetPipeline(backend, FakeFramer(64), landmarker=FakeLandmarker())
    avatar = np.full((64, 64, 3), 100, np.uint8)
    pipeline.set_source(avatar + np.random.default_rng(0).integers(0, 3, avatar.shape, dtype=np.uint8))
    assert pipeline.step(frames(1, seed=3)[0]).calibrated
    # the search calibrates on the frame whose landmarks are closest to the avatar's (brightness 100)
    candidates = [
        np.clip(frames(1, seed=s)[0] // 4 + b, 0, 255).astype(np.uint8) for s, b in ((4, 200), (5, 70), (6, 10))
    ]
    pipeline.find_best_frame(3)
    results = [pipeline.step(c) for c in candidates]
    assert results[0].searching and results[1].searching and not results[2].searching
    best = pipeline._pose_distance(candidates[1])
    assert results[-1].calibration_score == pytest.approx(best)
    pipeline.request_calibration()
    assert pipeline.step(candidates[0]).calibration_score == pytest.approx(pipeline._pose_distance(candidates[0]))


def test_a_search_cut_short_calibrates_on_the_best_frame_so_far(backend: TorchBackend, caplog) -> None:
    pipeline = PuppetPipeline(backend, FakeFramer(64), landmarker=FakeLandmarker())
    pipeline.set_source(np.full((64, 64, 3), 100, np.uint8))
    pipeline.find_best_frame(50)  # longer than the video
    candidates = [np.clip(frames(1, seed=s)[0] // 4 + b, 0, 255).astype(np.uint8) for s, b in ((4, 200), (5, 70))]
    assert not any(pipeline.step(c).calibrated for c in candidates)
    with caplog.at_level("WARNING", logger="live.pipeline"):
        pipeline.end_search("the camera ended")
    assert "find best frame was cut short (the camera ended)" in caplog.text
    result = pipeline.step(candidates[0])
    assert result.calibrated and not result.searching
    assert result.calibration_score == pytest.approx(pipeline._pose_distance(candidates[1]))


def test_a_search_cut_short_before_any_face_says_so(backend: TorchBackend, caplog) -> None:
    pipeline = PuppetPipeline(backend, FakeFramer(64), landmarker=FakeLandmarker())
    pipeline.set_source(np.full((64, 64, 3), 100, np.uint8))
    pipeline.find_best_frame(50)
    pipeline.step(np.zeros((64, 64, 3), np.uint8))  # no face
    with caplog.at_level("WARNING", logger="live.pipeline"):
        pipeline.end_search("the run stopped")
    assert "before any face was seen: not calibrated" in caplog.text
    pipeline.end_search("again")  # no search: nothing to say
    assert caplog.text.count("cut short") == 1


def test_absolute_mode_needs_no_calibration(backend: TorchBackend) -> None:
    pipeline = PuppetPipeline(backend, FakeFramer(64), relative=False)
    pipeline.set_source(frames(1)[0])
    result = pipeline.step(frames(1, seed=9)[0])
    assert result.calibrated and result.output.shape == (64, 64, 3)
    with pytest.raises(RuntimeError, match="set_source"):
        PuppetPipeline(backend, FakeFramer(64)).step(frames(1)[0])
