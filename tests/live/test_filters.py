"""Temporal filters (live.filters): the One-Euro filter and the driving-keypoint filter."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from fomm import Keypoints
from live.filters import KeypointFilter, OneEuroFilter, strength_to_min_cutoff

FPS = 30.0


def run(filt: OneEuroFilter, samples: np.ndarray, fps: float = FPS) -> np.ndarray:
    """Filter ``samples`` (T, ...) taken at ``fps``; the outputs stacked."""
    return np.stack([filt(sample, index / fps) for index, sample in enumerate(samples)])


def keypoints(batch: int = 1, num_kp: int = 10, *, seed: int = 0, **kwargs: object) -> Keypoints:
    generator = torch.Generator().manual_seed(seed)
    value = torch.rand(batch, num_kp, 2, generator=generator) * 2 - 1
    jacobian = torch.eye(2).expand(batch, num_kp, 2, 2) + 0.1 * torch.randn(batch, num_kp, 2, 2, generator=generator)
    return Keypoints(value.to(**kwargs), jacobian.to(**kwargs))


# --- One-Euro ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{"min_cutoff": 0}, {"min_cutoff": -1.0}, {"beta": -0.1}, {"d_cutoff": math.nan}])
def test_one_euro_rejects_bad_parameters(kwargs: dict[str, float]) -> None:
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        OneEuroFilter(**kwargs)


def test_first_sample_passes_through() -> None:
    x = np.array([[0.3, -0.7], [1.5, 2.0]], np.float32)
    filt = OneEuroFilter(min_cutoff=0.1)
    out = filt(x, 12.5)
    np.testing.assert_array_equal(out, x)
    assert out is not x and out.dtype == np.float32
    out[0, 0] = 99.0  # the caller owns the output: the state is not aliased
    assert filt(x, 12.5 + 1 / FPS)[0, 0] == pytest.approx(0.3)


def test_constant_input_stays_constant() -> None:
    samples = np.full((100, 5), 0.42)
    for beta in (0.0, 10.0):
        out = run(OneEuroFilter(min_cutoff=0.5, beta=beta), samples)
        np.testing.assert_allclose(out, samples, rtol=0, atol=1e-12)


def test_noisy_constant_is_smoothed() -> None:
    rng = np.random.default_rng(0)
    samples = 0.5 + 0.02 * rng.standard_normal((600, 8))
    weak = run(OneEuroFilter(min_cutoff=10.0), samples)[30:]
    strong = run(OneEuroFilter(min_cutoff=0.3, beta=0.5), samples)[30:]
    raw_var = samples[30:].var()
    assert strong.var() < raw_var / 10
    assert strong.var() < weak.var() / 5
    assert abs(strong.mean() - 0.5) < 0.01  # no bias


def test_step_is_followed_and_beta_makes_it_faster() -> None:
    samples = np.where(np.arange(120) < 20, 0.0, 0.5)[:, None]

    def settle(beta: float) -> int:
        out = run(OneEuroFilter(min_cutoff=0.5, beta=beta), samples)[:, 0]
        return int(np.argmax(out >= 0.45)) - 20  # samples after the step to reach 90 %

    slow, fast = settle(0.0), settle(10.0)
    assert 0 < slow < 100  # followed, eventually, even without beta
    assert fast <= 3
    assert fast < slow


def test_torch_and_numpy_agree() -> None:
    rng = np.random.default_rng(3)
    samples = rng.standard_normal((40, 3, 2))
    expected = run(OneEuroFilter(1.0, 2.0), samples)
    filt = OneEuroFilter(1.0, 2.0)
    got = []
    for index, sample in enumerate(samples):
        out = filt(torch.from_numpy(sample), index / FPS)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.shape == (3, 2)
        got.append(out.numpy())
    np.testing.assert_allclose(np.stack(got), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_numpy_dtypes(dtype: type) -> None:
    filt = OneEuroFilter()
    out = [filt(np.arange(6, dtype=dtype).reshape(2, 3) * (i + 1), i / FPS) for i in range(3)]
    expected = np.float64 if dtype == np.int64 else dtype
    assert all(o.dtype == expected and o.shape == (2, 3) and isinstance(o, np.ndarray) for o in out)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_torch_dtypes(dtype: torch.dtype) -> None:
    filt = OneEuroFilter(min_cutoff=1.0, beta=1.0)
    for i in range(4):
        out = filt(torch.full((2, 3), float(i), dtype=dtype), i / FPS)
        assert out.dtype == dtype and out.shape == (2, 3)
        assert torch.isfinite(out.float()).all()


def test_non_increasing_time_reuses_the_last_step() -> None:
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    filt(np.zeros(2), 0.0)
    a = filt(np.ones(2), 1 / FPS)  # dt = 1/30
    reference = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    reference(np.zeros(2), 0.0)
    reference(np.ones(2), 1 / FPS)
    same_time = filt(np.ones(2), 1 / FPS)  # dt = 0 -> 1/30 again
    backwards = filt(np.ones(2), 0.0)  # a looping video: dt < 0 -> 1/30 again
    np.testing.assert_allclose(same_time, reference(np.ones(2), 2 / FPS))
    np.testing.assert_allclose(backwards, reference(np.ones(2), 3 / FPS))
    assert np.isfinite(same_time).all() and (a < same_time).all() and (same_time < backwards).all()
    after = filt(np.ones(2), 1 / FPS)  # t restarted from 0.0: a normal step again
    np.testing.assert_allclose(after, reference(np.ones(2), 4 / FPS))


def test_shape_and_type_changes_need_a_reset() -> None:
    filt = OneEuroFilter()
    filt(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match=r"shape \(4,\) after \(3,\)"):
        filt(np.zeros(4), 0.1)
    with pytest.raises(TypeError, match="reset"):
        filt(torch.zeros(3), 0.1)
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        filt([0.0, 1.0, 2.0], 0.1)  # type: ignore[arg-type]
    filt.reset()
    assert not filt.initialized
    out = filt(torch.full((4,), 7.0), 0.2)
    assert torch.equal(out, torch.full((4,), 7.0))


def test_reset_forgets_the_past() -> None:
    filt = OneEuroFilter(min_cutoff=0.1)
    for i in range(10):
        filt(np.zeros(2), i / FPS)
    filt.reset()
    np.testing.assert_array_equal(filt(np.full(2, 3.0), 1.0), np.full(2, 3.0))


# --- KeypointFilter ---------------------------------------------------------------------------------------------


def test_strength_mapping() -> None:
    assert strength_to_min_cutoff(0.0) == pytest.approx(10.0)
    assert strength_to_min_cutoff(1.0) == pytest.approx(0.3)
    cutoffs = [strength_to_min_cutoff(s) for s in np.linspace(0, 1, 11)]
    assert all(a > b for a, b in itertools.pairwise(cutoffs))


@pytest.mark.parametrize("strength", [-0.1, 1.5, math.nan, "0.5"])
def test_keypoint_filter_rejects_bad_strength(strength: object) -> None:
    with pytest.raises(ValueError, match="strength"):
        KeypointFilter(strength)  # type: ignore[arg-type]


def test_keypoint_filter_preserves_shape_dtype_device() -> None:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for dtype in (torch.float32, torch.float64, torch.float16):
            filt = KeypointFilter(0.7)
            for i in range(3):
                kp = keypoints(2, 10, seed=i, device=device, dtype=dtype)
                out = filt(kp, i / FPS)
                assert isinstance(out, Keypoints)
                for got, given in zip(out, kp, strict=True):
                    assert got.shape == given.shape and got.dtype == given.dtype and got.device == given.device
                    assert not got.requires_grad


def test_keypoint_filter_first_frame_passes_and_then_smooths() -> None:
    filt = KeypointFilter(0.8)
    first = keypoints(seed=0)
    out = filt(first, 0.0)
    assert torch.equal(out.value, first.value) and torch.equal(out.jacobian, first.jacobian)
    nxt = Keypoints(first.value + 0.01, first.jacobian + 0.01)
    out = filt(nxt, 1 / FPS)
    moved = (out.value - first.value) / 0.01
    assert (moved > 0).all() and (moved < 0.5).all()  # part of the way, not all of it


def test_keypoint_filter_reduces_jitter_and_follows_motion() -> None:
    rng = np.random.default_rng(0)
    base = keypoints(seed=1)
    filt = KeypointFilter(0.9)
    noise = []
    for i in range(150):
        jitter = torch.from_numpy(rng.normal(0, 0.005, (1, 10, 2))).float()
        out = filt(Keypoints(base.value + jitter, base.jacobian), i / FPS)
        if i >= 30:
            noise.append((out.value - base.value).numpy())
    assert np.var(noise) < 0.005**2 / 10  # > 10x less variance
    # a fast head move (1 unit/s for 0.3 s) is followed with little lag thanks to beta
    for i in range(150, 159):
        shift = (i - 149) / FPS
        out = filt(Keypoints(base.value + shift, base.jacobian), i / FPS)
    lag = float((base.value + shift - out.value).abs().max())
    assert lag < 0.1, lag


def test_keypoint_filter_disabled_or_zero_is_identity() -> None:
    kp = keypoints(seed=2)
    assert KeypointFilter(0.5, enabled=False)(kp, 0.0) is kp
    zero = KeypointFilter(0.0)
    assert zero(kp, 0.0) is kp and zero(keypoints(seed=3), 0.1) is not kp
    assert not zero.active and KeypointFilter(0.5).active


def test_keypoint_filter_reset_and_runtime_changes() -> None:
    filt = KeypointFilter(1.0)
    filt(keypoints(seed=0), 0.0)
    filt(keypoints(seed=0), 1 / FPS)
    other = keypoints(seed=5)
    assert not torch.equal(filt(other, 2 / FPS).value, other.value)
    filt.reset()
    out = filt(other, 3 / FPS)
    assert torch.equal(out.value, other.value) and torch.equal(out.jacobian, other.jacobian)
    # switching off and on starts from the current pose, not a stale one
    filt.enabled = False
    assert filt(keypoints(seed=6), 4 / FPS) is not None
    filt.enabled = True
    fresh = keypoints(seed=7)
    assert torch.equal(filt(fresh, 5 / FPS).value, fresh.value)
    # strength changes at run time; a new keypoint count (another model) starts a new stream
    filt.strength = 0.2
    assert filt.strength == 0.2
    bigger = keypoints(num_kp=15, seed=8)
    assert torch.equal(filt(bigger, 6 / FPS).value, bigger.value)


def test_keypoint_filter_default_time() -> None:
    filt = KeypointFilter(0.5)
    kp = keypoints(seed=0)
    filt(kp)
    out = filt(Keypoints(kp.value + 0.1, kp.jacobian))
    assert torch.isfinite(out.value).all()
