from __future__ import annotations

import pytest
import torch

from fomm.layers import AntiAliasInterpolation2d, Hourglass


def test_antialias_kernel_and_downsampling():
    down = AntiAliasInterpolation2d(3, 0.25)
    assert down.weight.shape == (3, 1, 13, 13)  # sigma 1.5 -> kernel 2 * round(6) + 1
    torch.testing.assert_close(down.weight.sum(dim=(1, 2, 3)), torch.ones(3))
    constant = torch.full((1, 3, 64, 64), 0.7)
    out = down(constant)
    assert out.shape == (1, 3, 16, 16)
    # interior is untouched by the zero padding: a blurred constant stays constant
    torch.testing.assert_close(out[..., 2:-2, 2:-2], torch.full_like(out[..., 2:-2, 2:-2], 0.7))
    assert AntiAliasInterpolation2d(3, 1.0)(constant) is constant


@pytest.mark.parametrize("num_blocks", [2, 3])
def test_hourglass_channels(num_blocks):
    net = Hourglass(block_expansion=4, in_features=5, num_blocks=num_blocks, max_features=16).eval()
    out = net(torch.rand(2, 5, 32, 32))
    assert out.shape == (2, 4 + 5, 32, 32)
    assert net.out_filters == 9
