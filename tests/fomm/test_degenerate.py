"""Degenerate numbers never break a frame: singular jacobians, tiny or NaN keypoint hulls, one-pixel grids."""

from __future__ import annotations

import logging

import pytest
import torch

import fomm
from fomm.geometry import DET_EPS, inverse_2x2, make_coordinate_grid
from fomm.keypoints import SCALE_RANGE


def test_coordinate_grid_of_one_pixel_is_the_centre() -> None:
    assert make_coordinate_grid(1, 1).tolist() == [[[0.0, 0.0]]]
    grid = make_coordinate_grid(1, 3)
    assert grid[0, :, 0].tolist() == [-1.0, 0.0, 1.0] and grid[0, :, 1].tolist() == [0.0, 0.0, 0.0]
    assert torch.isfinite(make_coordinate_grid(4, 1)).all()


def test_inverse_of_singular_matrices_is_finite_and_keeps_the_sign() -> None:
    singular = torch.tensor([[[1.0, 2.0], [2.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]])
    inv = inverse_2x2(singular)
    assert torch.isfinite(inv).all()
    tiny_negative = torch.tensor([[1e-4, 0.0], [0.0, -1e-4]])  # det -1e-8
    inv = inverse_2x2(tiny_negative)
    assert inv[0, 0] == pytest.approx(1e-4 / DET_EPS) and inv[1, 1] == pytest.approx(-1e-4 / DET_EPS)  # sign kept
    # unchanged where |det| >= eps (what parity with the original needs)
    normal = torch.eye(2) + 0.3 * torch.randn(50, 2, 2)
    torch.testing.assert_close(inverse_2x2(normal), torch.linalg.inv(normal), atol=1e-5, rtol=1e-5)


def _kp(value: torch.Tensor, jacobian: torch.Tensor | None = None) -> fomm.Keypoints:
    k = value.shape[1]
    return fomm.Keypoints(value, torch.eye(2).expand(1, k, 2, 2).clone() if jacobian is None else jacobian)


SQUARE = torch.tensor([[[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]])


def test_calibration_with_a_singular_jacobian_has_a_finite_inverse(caplog: pytest.LogCaptureFixture) -> None:
    jacobian = torch.eye(2).expand(1, 4, 2, 2).clone()
    jacobian[0, 1] = 0.0  # singular
    jacobian[0, 2, 0, 0] = float("nan")
    with caplog.at_level(logging.WARNING, logger="fomm.keypoints"):
        cal = fomm.calibrate(_kp(SQUARE), _kp(SQUARE, jacobian), adapt_movement_scale=False)
    assert torch.isfinite(cal.initial_jacobian_inv).all()
    torch.testing.assert_close(cal.initial_jacobian_inv[0, 1], torch.eye(2))  # the identity stands in
    torch.testing.assert_close(cal.initial_jacobian_inv[0, 0], torch.eye(2))  # good ones are inverted as before
    assert "2 of 4 keypoint jacobians" in caplog.text
    out = fomm.transfer_motion(_kp(SQUARE * 1.1), cal)
    assert torch.isfinite(out.jacobian).all() and torch.isfinite(out.value).all()


@pytest.mark.parametrize(
    ("driving", "expected"),
    [
        (SQUARE * 1e-4, SCALE_RANGE[1]),  # a tiny hull: the ratio would be 1e4
        (SQUARE * 1e3, SCALE_RANGE[0]),
        (torch.full_like(SQUARE, float("nan")), 1.0),
        (torch.zeros_like(SQUARE), 1.0),
        (SQUARE * 0.5, 2.0),  # a normal ratio is kept
    ],
    ids=["tiny", "huge", "nan", "empty", "normal"],
)
def test_adapt_scale_is_clamped(driving: torch.Tensor, expected: float) -> None:
    cal = fomm.calibrate(_kp(SQUARE), _kp(driving), adapt_movement_scale=True)
    assert cal.scale.item() == pytest.approx(expected)


def test_usable_keypoints() -> None:
    assert fomm.usable_keypoints(_kp(SQUARE))
    assert not fomm.usable_keypoints(_kp(torch.full_like(SQUARE, float("nan"))))
    assert not fomm.usable_keypoints(_kp(SQUARE, torch.zeros(1, 4, 2, 2)))
    assert not fomm.usable_keypoints(_kp(SQUARE, torch.full((1, 4, 2, 2), float("inf"))))
