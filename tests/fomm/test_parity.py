"""Parity with the original first-order-model implementation on its own reference outputs.

Each fixture folder was produced by the original code (its modules, ``load_checkpoints`` and
``make_animation``) with seeded weights. Tolerances: the issue's (keypoints 1e-5; predictions, occlusion
and masks 1e-4). The original itself differs by ~3e-5 between two of its call paths (memory layout), and
oneDNN convolutions round differently for batch 1 and batch 3, which moves keypoints by a few 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fomm

CASES = [
    ("tiny-jac-ac-false", "tiny-jac.yaml", False),
    ("tiny-jac-ac-true", "tiny-jac.yaml", True),
    ("tiny-single-jac-ac-false", "tiny-single-jac.yaml", False),
]
KP_ATOL = 1e-5
IMAGE_ATOL = 1e-4
# The deformed images sample a random-noise source, whose gradient (~15 per [-1, 1] unit at 32 px)
# turns the few-1e-6 keypoint rounding into ~1e-4; they are debug outputs, not the list.
DEFORMED_ATOL = 3e-4


@pytest.fixture(params=CASES, ids=[c[0] for c in CASES])
def case(request, official, device):
    folder, yaml_name, align_corners = request.param
    config = fomm.load_yaml_config(official / yaml_name)
    loaded = fomm.load_checkpoint(
        official / folder / "checkpoint.pth.tar",
        config,
        align_corners=align_corners,
        with_discriminator=None,
        device=device,
    )
    ref = dict(np.load(official / folder / "reference.npz"))
    source = torch.from_numpy(ref["source"]).permute(2, 0, 1)[None].to(device)
    driving = torch.from_numpy(ref["driving"]).permute(0, 3, 1, 2).to(device)
    return loaded.model, ref, source, driving


def close(actual: torch.Tensor, expected: np.ndarray, atol: float) -> None:
    torch.testing.assert_close(actual.float().cpu(), torch.from_numpy(expected), atol=atol, rtol=0)


def test_keypoints_match_original(case):
    model, ref, source, driving = case
    with torch.no_grad():
        kp_source = model.kp_detector(source)
        close(kp_source.value[0], ref["kp_source_value"], KP_ATOL)
        close(kp_source.jacobian[0], ref["kp_source_jacobian"], KP_ATOL)
        for i in range(driving.shape[0]):  # one frame at a time, as make_animation does
            kp = model.kp_detector(driving[i : i + 1])
            close(kp.value[0], ref["kp_driving_value"][i], KP_ATOL)
            close(kp.jacobian[0], ref["kp_driving_jacobian"][i], KP_ATOL)


def test_relative_motion_matches_normalize_kp(case):
    model, ref, source, driving = case
    with torch.no_grad():  # one frame at a time, as make_animation does
        kp_source = model.kp_detector(source)
        frames = [model.kp_detector(driving[i : i + 1]) for i in range(driving.shape[0])]
    kp_driving = fomm.Keypoints(torch.cat([k.value for k in frames]), torch.cat([k.jacobian for k in frames]))
    calibration = fomm.calibrate(kp_source, kp_driving.index(0), adapt_movement_scale=True)
    kp_norm = fomm.transfer_motion(kp_driving, calibration, relative=True)
    close(kp_norm.value, ref["kp_norm_value"], KP_ATOL)
    close(kp_norm.jacobian, ref["kp_norm_jacobian"], KP_ATOL)
    assert fomm.transfer_motion(kp_driving, None, relative=False) is kp_driving


@pytest.mark.parametrize("cached", [True, False], ids=["cached-step", "uncached-step"])
def test_animation_matches_make_animation(case, cached):
    model, ref, source, driving = case
    for relative, key in ((True, "prediction_relative_adapt"), (False, "prediction_absolute")):
        animator = fomm.Animator(model, fomm.AnimationOptions(relative=relative, adapt_movement_scale=True))
        animator.set_source(source)
        step = animator.step if cached else animator.step_uncached
        prediction = step(driving)  # relative mode calibrates on the batch's first frame
        close(prediction.permute(0, 2, 3, 1), ref[key], IMAGE_ATOL)


def test_generator_outputs_match_original(case):
    model, ref, source, driving = case
    with torch.no_grad():
        kp_source = model.kp_detector(source)
        kp_driving = model.kp_detector(driving)
        out = model.generator.forward_debug(source.expand(3, -1, -1, -1), kp_source.expand(3), kp_driving)
    close(out.prediction, ref["abs_prediction"], IMAGE_ATOL)
    close(out.motion.occlusion, ref["abs_occlusion_map"], IMAGE_ATOL)
    close(out.mask, ref["abs_mask"], IMAGE_ATOL)
    close(out.sparse_deformed, ref["abs_sparse_deformed"], DEFORMED_ATOL)
    close(out.deformed, ref["abs_deformed"], DEFORMED_ATOL)


def test_grid_sampling_setting_matters(official):
    """The two fixtures differ only in align_corners: each must match only its own setting."""
    config = fomm.load_yaml_config(official / "tiny-jac.yaml")
    ref_true = np.load(official / "tiny-jac-ac-true" / "reference.npz")
    source = torch.from_numpy(ref_true["source"]).permute(2, 0, 1)[None]
    driving = torch.from_numpy(ref_true["driving"]).permute(0, 3, 1, 2)
    model = fomm.load_checkpoint(
        official / "tiny-jac-ac-false" / "checkpoint.pth.tar", config, align_corners=False
    ).model
    animator = fomm.Animator(model, fomm.AnimationOptions(relative=False))
    animator.set_source(source)
    wrong = animator.step(driving).permute(0, 2, 3, 1)
    assert (wrong - torch.from_numpy(ref_true["prediction_absolute"])).abs().max() > 10 * IMAGE_ATOL
