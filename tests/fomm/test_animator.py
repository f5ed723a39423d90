from __future__ import annotations

import pytest
import torch

import fomm


@pytest.fixture
def model(tiny):
    net = fomm.build_fomm(tiny)
    # randomise BN statistics and the jacobian head so the test exercises non-trivial values
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        net.kp_detector.jacobian.weight.normal_(0, 0.01)
    return net.eval()


@pytest.mark.parametrize("relative", [True, False])
def test_cached_step_equals_uncached(model, relative):
    source, driving = torch.rand(1, 3, 64, 64), torch.rand(5, 3, 64, 64)
    animator = fomm.Animator(model, fomm.AnimationOptions(relative=relative))
    animator.set_source(source)
    cached = animator.step(driving)
    uncached = animator.step_uncached(driving)
    torch.testing.assert_close(cached, uncached, atol=1e-6, rtol=0)
    # and the generator's own uncached forward with the same keypoints
    kp_norm = fomm.transfer_motion(model.kp_detector(driving), animator.calibration, relative=relative)
    with torch.no_grad():
        full = model.generator(source.expand(5, -1, -1, -1), animator.kp_source.expand(5), kp_norm)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)


def test_batches_equal_single_frames(model):
    source, driving = torch.rand(1, 3, 64, 64), torch.rand(4, 3, 64, 64)
    animator = fomm.Animator(model)
    animator.set_source(source)
    animator.calibrate(driving[:1])
    batched = animator.step(driving)
    singles = torch.cat([animator.step(driving[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(batched, singles, atol=1e-5, rtol=0)


def test_calibration_frame_reproduces_source_keypoints(model):
    source, driving = torch.rand(1, 3, 64, 64), torch.rand(3, 3, 64, 64)
    animator = fomm.Animator(model, fomm.AnimationOptions(relative=True, adapt_movement_scale=True))
    kp_source = animator.set_source(source)
    calibration = animator.calibrate(driving[1:2])
    kp = fomm.transfer_motion(animator.keypoints(driving[1:2]), calibration)
    torch.testing.assert_close(kp.value, kp_source.value, atol=1e-6, rtol=0)
    torch.testing.assert_close(kp.jacobian, kp_source.jacobian, atol=1e-5, rtol=0)


def test_adapt_scale_and_relative_jacobian():
    eye = torch.eye(2).expand(1, 4, 2, 2)
    square = torch.tensor([[[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]])
    source = fomm.Keypoints(square, eye)
    initial = fomm.Keypoints(square * 0.5, 2 * eye)  # driver half the size: motion is doubled
    calibration = fomm.calibrate(source, initial, adapt_movement_scale=True)
    assert calibration.scale.item() == pytest.approx(2.0)
    rot = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    moved = fomm.Keypoints(square * 0.5 + 0.1, (2 * rot).expand(1, 4, 2, 2))
    out = fomm.transfer_motion(moved, calibration)
    torch.testing.assert_close(out.value, square + 0.2)
    torch.testing.assert_close(out.jacobian, rot.expand(1, 4, 2, 2))  # J_D J_D1^-1 J_S
    no_scale = fomm.calibrate(source, initial, adapt_movement_scale=False)
    torch.testing.assert_close(fomm.transfer_motion(moved, no_scale).value, square + 0.1)
    absolute_jac = fomm.transfer_motion(moved, calibration, relative_jacobian=False)
    torch.testing.assert_close(absolute_jac.jacobian, moved.jacobian)


def test_degenerate_hull_falls_back_to_scale_one():
    eye = torch.eye(2).expand(1, 3, 2, 2)
    line = torch.tensor([[[0.0, 0.0], [0.1, 0.1], [0.2, 0.2]]])
    calibration = fomm.calibrate(fomm.Keypoints(line, eye), fomm.Keypoints(line, eye), adapt_movement_scale=True)
    assert calibration.scale.item() == 1.0


def test_models_without_jacobian_or_occlusion(make_tiny):
    config = make_tiny(estimate_jacobian=False, estimate_occlusion_map=False)
    model = fomm.build_fomm(config)
    assert model.kp_detector.jacobian is None and model.generator.dense_motion_network.occlusion is None
    kp = model.kp_detector(torch.rand(2, 3, 64, 64))
    assert kp.jacobian.shape == (2, 4, 2, 2)
    torch.testing.assert_close(kp.jacobian, torch.eye(2).expand(2, 4, 2, 2))
    encoding = model.generator.encode_source(torch.rand(2, 3, 64, 64))
    motion, debug = model.generator.motion(encoding, kp, kp)
    assert torch.equal(motion.occlusion, torch.ones(2, 1, 16, 16))
    assert debug.mask.shape == (2, 5, 16, 16) and debug.sparse_deformed.shape == (2, 5, 3, 16, 16)


def test_steps_need_a_source(model):
    animator = fomm.Animator(model)
    with pytest.raises(RuntimeError, match="set_source"):
        animator.step(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"source must be \(1, C, H, W\)"):
        animator.set_source(torch.rand(2, 3, 64, 64))


def test_new_source_resets_calibration(model):
    animator = fomm.Animator(model)
    animator.set_source(torch.rand(1, 3, 64, 64))
    animator.step(torch.rand(1, 3, 64, 64))
    assert animator.calibration is not None
    animator.set_source(torch.rand(1, 3, 64, 64))
    assert animator.calibration is None


def test_backend_animator_feeds_a_static_batch_backend_frame_by_frame_with_the_same_result():
    class Backend:
        def __init__(self, max_batch):
            self.max_batch = max_batch
            self.batches = []

        def set_source(self, source):
            return self.keypoints(source)

        def keypoints(self, frames):
            self.batches.append(frames.shape[0])
            mean = frames.mean(dim=(1, 2, 3))  # (N,)
            value = (
                torch.stack([mean, -mean], dim=-1)[:, None, :].expand(-1, 3, 2)
                * torch.tensor([1.0, 0.5, 0.25])[:, None]
            )
            jacobian = torch.eye(2).expand(frames.shape[0], 3, 2, 2) * (1 + mean)[:, None, None, None]
            return fomm.Keypoints(value.contiguous(), jacobian.contiguous())

        def generate(self, kp):
            return (
                kp.value.sum(dim=(1, 2))[:, None, None, None].expand(-1, 3, 4, 4)
                + kp.jacobian.mean(dim=(1, 2, 3))[:, None, None, None]
            )

    driving = torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    source = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    results = {}
    for max_batch in (None, 1, 2):
        backend = Backend(max_batch)
        animator = fomm.BackendAnimator(backend, fomm.AnimationOptions(relative=True))
        animator.set_source(source)
        results[max_batch] = animator.step(driving)
        assert max(backend.batches[1:]) <= (max_batch or 5)
    assert results[None].shape == (5, 3, 4, 4)
    torch.testing.assert_close(results[1], results[None])
    torch.testing.assert_close(results[2], results[None])
