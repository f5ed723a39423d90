from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fomm.geometry import convex_hull_area, inverse_2x2, kp2gaussian, make_coordinate_grid, warp


def test_coordinate_grid_corners_and_order():
    grid = make_coordinate_grid(3, 5)
    assert grid.shape == (3, 5, 2)
    assert grid[0, 0].tolist() == [-1.0, -1.0]
    assert grid[-1, -1].tolist() == [1.0, 1.0]
    assert grid[0, -1].tolist() == [1.0, -1.0]  # x first, grows to the right
    assert grid[1, 2].tolist() == [0.0, 0.0]


def test_inverse_2x2_matches_linalg():
    m = torch.randn(64, 10, 2, 2, dtype=torch.float64) + 2 * torch.eye(2, dtype=torch.float64)
    torch.testing.assert_close(inverse_2x2(m), torch.linalg.inv(m), atol=1e-10, rtol=1e-10)
    m32 = torch.eye(2) + 0.3 * torch.randn(100, 2, 2)
    torch.testing.assert_close(inverse_2x2(m32) @ m32, torch.eye(2).expand(100, 2, 2), atol=1e-5, rtol=0)


def test_kp2gaussian_peaks_at_keypoint():
    kp = torch.tensor([[[-1.0, -1.0], [1.0, 0.0]]])
    maps = kp2gaussian(kp, 5, 5, 0.01)
    assert maps.shape == (1, 2, 5, 5)
    assert maps[0, 0, 0, 0] == 1.0
    assert maps[0, 1, 2, 4] == 1.0
    # value at one pixel step (0.5 in [-1, 1] units) away: exp(-0.5 * 0.25 / 0.01)
    torch.testing.assert_close(maps[0, 0, 0, 1], torch.tensor(float(torch.exp(torch.tensor(-12.5)))))


@pytest.mark.parametrize("align_corners", [True, False])
def test_warp_is_grid_sample_with_explicit_setting(align_corners):
    image = torch.rand(2, 3, 8, 8)
    grid = torch.rand(2, 6, 7, 2) * 2.2 - 1.1
    expected = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)
    torch.testing.assert_close(warp(image, grid, align_corners=align_corners), expected)


def test_identity_grid_reproduces_image_only_with_align_corners_true():
    image = torch.rand(1, 3, 16, 16)
    grid = make_coordinate_grid(16, 16)[None]
    torch.testing.assert_close(warp(image, grid, align_corners=True), image, atol=1e-6, rtol=0)
    assert (warp(image, grid, align_corners=False) - image).abs().max() > 1e-2


def test_convex_hull_area():
    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.9]])
    assert convex_hull_area(square) == pytest.approx(1.0)
    triangle = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    assert convex_hull_area(triangle) == pytest.approx(3.0)
    assert convex_hull_area(torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])) == 0.0


def test_fused_warps_equal_separate_warps_and_dispatch_to_an_impl():
    from fomm.geometry import use_warp_impl, warp, warp_multi, warp_occluded

    gen = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 9, 7, generator=gen)
    grids = torch.rand(2, 4, 5, 6, 2, generator=gen) * 2.4 - 1.2
    occlusion = torch.rand(2, 1, 5, 6, generator=gen)
    for ac in (True, False):
        multi = warp_multi(image, grids, align_corners=ac)
        assert multi.shape == (2, 4, 3, 5, 6)
        for n in range(4):
            torch.testing.assert_close(multi[:, n], warp(image, grids[:, n], align_corners=ac), rtol=0, atol=0)
        occluded = warp_occluded(image, grids[:, 0], occlusion, align_corners=ac)
        torch.testing.assert_close(occluded, warp(image, grids[:, 0], align_corners=ac) * occlusion)

    class Marker:
        name = "marker"

        def supports(self, image):
            return image.dtype == torch.float32

        def warp_multi(self, image, grids, *, align_corners):
            return torch.full((1,), 7.0)

        def warp_occluded(self, image, grid, occlusion, *, align_corners):
            return torch.zeros_like(image[:, :, : grid.shape[1], : grid.shape[2]])

    reference = warp_multi(image, grids, align_corners=True)
    with use_warp_impl(Marker()):
        assert warp_multi(image, grids, align_corners=True).item() == 7.0
        assert float(warp_occluded(image, grids[:, 0], occlusion, align_corners=True).abs().sum()) == 0.0
        # an implementation that does not support the tensors falls back to the reference
        torch.testing.assert_close(
            warp_multi(image.double(), grids.double(), align_corners=True), reference.double(), atol=1e-6, rtol=0
        )
    assert warp_multi(image, grids, align_corners=True).shape == (2, 4, 3, 5, 6)
