"""The model on a CUDA GPU computes what it computes on the CPU (``gpu`` marker: skipped without CUDA)."""

from __future__ import annotations

import copy

import pytest
import torch

import fomm

pytestmark = pytest.mark.gpu


@pytest.fixture
def fp32_cuda():
    """CUDA with TF32 off (fp32 parity), restored afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _animate(model: fomm.Fomm, device: torch.device, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
    animator = fomm.Animator(copy.deepcopy(model).to(device), fomm.AnimationOptions(relative=True))
    animator.set_source(source.to(device))
    animator.calibrate(driving[:1].to(device))
    return animator.step(driving.to(device)).float().cpu()


@pytest.mark.parametrize("align_corners", [True, False])
def test_cuda_animation_matches_cpu(make_tiny, fp32_cuda, align_corners):
    model = fomm.build_fomm(make_tiny().with_align_corners(align_corners)).eval()
    source, driving = torch.rand(1, 3, 64, 64), torch.rand(3, 3, 64, 64)
    on_cpu = _animate(model, torch.device("cpu"), source, driving)
    on_gpu = _animate(model, fp32_cuda, source, driving)
    assert on_gpu.shape == on_cpu.shape == (3, 3, 64, 64)
    torch.testing.assert_close(on_gpu, on_cpu, atol=1e-4, rtol=0)


def test_cuda_half_precision_stays_close(make_tiny, fp32_cuda):
    model = fomm.build_fomm(make_tiny()).eval()
    source, driving = torch.rand(1, 3, 64, 64), torch.rand(2, 3, 64, 64)
    reference = _animate(model, fp32_cuda, source, driving)
    with torch.autocast("cuda", dtype=torch.float16):
        half = _animate(model, fp32_cuda, source, driving)
    assert torch.isfinite(half).all()
    assert (half - reference).abs().max().item() < 0.05
