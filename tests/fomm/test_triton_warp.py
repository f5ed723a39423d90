"""Triton fused warps against the PyTorch reference (``torch.nn.functional.grid_sample``).

On the CPU they run under Triton's interpreter (``TRITON_INTERPRET=1``, small shapes: it is slow); the
``gpu`` tests run the compiled kernels on CUDA.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import fomm
from fomm.geometry import use_warp_impl, warp_multi, warp_occluded
from fomm.kernels import TritonWarp, cuda_tensor, launch_warp_multi, launch_warp_occluded, triton_available

pytestmark = pytest.mark.skipif(not triton_available(), reason="needs triton (pip install 'fomm-live[gpu]')")

# (B, C, H, W, N, h, w): square, non-square, upsampling, downsampling, more channels than one block
SHAPES = [(1, 3, 16, 16, 3, 16, 16), (2, 5, 7, 9, 2, 5, 6), (1, 3, 6, 5, 2, 11, 13), (2, 40, 8, 8, 1, 4, 8)]


@pytest.fixture
def interpret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def reference(image, grid, align_corners, padding_mode="zeros", occlusion=None):
    """grid_sample on float32 copies: (B, N, C, h, w) for 5-d grids, (B, C, h, w) for 4-d."""
    image, grid = image.float(), grid.float()
    if grid.dim() == 4:
        out = F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)
        return out * occlusion.float() if occlusion is not None else out
    b, n, h, w, _ = grid.shape
    c = image.shape[1]
    repeated = image.unsqueeze(1).expand(b, n, *image.shape[1:]).reshape(b * n, c, *image.shape[2:])
    out = F.grid_sample(repeated, grid.reshape(b * n, h, w, 2), padding_mode=padding_mode, align_corners=align_corners)
    return out.view(b, n, c, h, w)


def random_grids(b, n, h, w, spread=1.6):
    """Positions inside and outside [-1, 1], plus exact corners and far-away points."""
    grid = (torch.rand(b, n, h, w, 2) * 2 - 1) * spread
    flat = grid.view(-1, 2)
    special = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [1.0, -1.0], [0.0, 0.0], [1e10, 0.3], [-3e9, -1e7], [0.2, 3.5]])
    flat[: min(len(special), len(flat))] = special[: len(flat)]
    return grid


@pytest.mark.filterwarnings("error::RuntimeWarning")  # e.g. a float -> int32 overflow for far-away positions
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_interpreted_kernels_match_reference_fp32(interpret, shape, align_corners):
    b, c, height, width, n, h, w = shape
    image = torch.rand(b, c, height, width)
    grids = random_grids(b, n, h, w)
    occlusion = torch.rand(b, 1, h, w)
    impl = TritonWarp()
    assert impl.supports(image)
    multi = impl.warp_multi(image, grids, align_corners=align_corners)
    assert multi.shape == (b, n, c, h, w) and multi.dtype == torch.float32
    torch.testing.assert_close(multi, reference(image, grids, align_corners), atol=1e-5, rtol=0)
    occluded = impl.warp_occluded(image, grids[:, 0], occlusion, align_corners=align_corners)
    expected = reference(image, grids[:, 0], align_corners, occlusion=occlusion)
    torch.testing.assert_close(occluded, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("align_corners", [True, False])
def test_interpreted_border_padding_matches_reference(interpret, align_corners):
    image = torch.rand(2, 3, 9, 7)
    grids = random_grids(2, 2, 6, 5, spread=2.0)
    out = TritonWarp("border").warp_multi(image, grids, align_corners=align_corners)
    torch.testing.assert_close(out, reference(image, grids, align_corners, "border"), atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_interpreted_half_storage_samples_in_fp32(interpret, dtype):
    """fp16/bf16 tensors: positions, weights and the occlusion product are float32, so the only error is the
    output's rounding. (Sampling a 64-pixel-wide noise image at fp16 positions would be off by up to ~0.03 px.)"""
    image = torch.rand(1, 4, 64, 64).to(dtype)
    grids = random_grids(1, 2, 32, 32, spread=1.0)  # float32 positions, as the model computes them
    occlusion = torch.rand(1, 1, 32, 32).to(dtype)
    impl = TritonWarp()
    rounding = {torch.float16: 2**-11, torch.bfloat16: 2**-8}[dtype]
    multi = impl.warp_multi(image, grids, align_corners=True)
    assert multi.dtype == dtype
    torch.testing.assert_close(multi.float(), reference(image, grids, True), atol=rounding, rtol=0)
    occluded = impl.warp_occluded(image, grids[:, 1], occlusion, align_corners=False)
    expected = reference(image, grids[:, 1], False, occlusion=occlusion)
    torch.testing.assert_close(occluded.float(), expected, atol=rounding, rtol=0)


def test_interpreted_launch_respects_strides(interpret):
    """Channels-last images, a permuted grid and a slice of a bigger output buffer (a plugin's tensors)."""
    image = torch.rand(1, 6, 10, 12).to(memory_format=torch.channels_last)
    grids = random_grids(1, 3, 7, 5).permute(0, 1, 3, 2, 4).contiguous().permute(0, 1, 3, 2, 4)
    buffer = torch.full((1, 3, 8, 7, 5), -7.0)
    out = launch_warp_multi(image, grids, buffer[:, :, 1:7], True, "zeros")
    torch.testing.assert_close(out, reference(image, grids, True), atol=1e-5, rtol=0)
    assert (buffer[:, :, 0] == -7).all() and (buffer[:, :, 7] == -7).all()  # nothing written outside
    occluded = TritonWarp().warp_occluded(image, grids[:, 0], torch.ones(1, 1, 7, 5), align_corners=True)
    assert occluded.is_contiguous(memory_format=torch.channels_last)  # the layout the next conv reads
    torch.testing.assert_close(occluded, reference(image, grids[:, 0], True), atol=1e-5, rtol=0)
    occlusion = torch.rand(1, 1, 5, 7).transpose(2, 3)
    out2 = torch.empty(1, 6, 7, 5)
    launch_warp_occluded(image, grids[:, 2], occlusion, out2, False)
    torch.testing.assert_close(out2, reference(image, grids[:, 2], False, occlusion=occlusion), atol=1e-5, rtol=0)


def test_interpreted_model_step_matches_reference(interpret, tiny):
    """The tiny model's cached step with both fused warps on Triton equals the reference step."""
    model = fomm.build_fomm(tiny).eval()
    source, driving = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    animator = fomm.Animator(model)
    animator.set_source(source)
    expected = animator.step(driving)
    with use_warp_impl(TritonWarp()):
        got = animator.step(driving)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_dispatch_falls_back_without_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    image, grids = torch.rand(1, 3, 8, 8), random_grids(1, 2, 4, 4)
    impl = TritonWarp()
    assert not impl.supports(image)  # CPU tensors, no interpreter: the reference runs
    with use_warp_impl(impl):
        out = warp_multi(image, grids, align_corners=True)
        occluded = warp_occluded(image, grids[:, 0], torch.ones(1, 1, 4, 4), align_corners=True)
    torch.testing.assert_close(out, reference(image, grids, True))
    torch.testing.assert_close(occluded, reference(image, grids[:, 0], True))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: launch_warp_multi(torch.rand(1, 3, 8, 8), torch.rand(2, 2, 4, 4, 2), torch.empty(1, 2, 3, 4, 4), True),
         r"grids: expected shape \(1, N, h, w, 2\)"),
        (lambda: launch_warp_multi(torch.rand(1, 3, 8, 8), torch.rand(1, 2, 4, 4, 2), torch.empty(1, 2, 3, 4, 5), True),
         r"out: expected shape \(1, 2, 3, 4, 4\)"),
        (lambda: launch_warp_occluded(torch.rand(1, 3, 8, 8), torch.rand(1, 4, 4, 2), torch.rand(1, 2, 4, 4),
                                      torch.empty(1, 3, 4, 4), True), r"occlusion: expected shape \(1, 1, 4, 4\)"),
        (lambda: launch_warp_occluded(torch.rand(1, 3, 8, 8), torch.rand(1, 4, 4, 2).double(), torch.rand(1, 1, 4, 4),
                                      torch.empty(1, 3, 4, 4), True), "grid: expected float32, float16 or bfloat16"),
        (lambda: launch_warp_multi(torch.rand(1, 3, 8, 8), torch.rand(1, 2, 4, 4, 2), torch.empty(1, 2, 3, 4, 4), True,
                                   "reflection"), "padding_mode 'reflection'"),
        (lambda: launch_warp_multi(torch.rand(1, 3, 8, 8), torch.rand(1, 2, 4, 4, 2), torch.empty(1, 2, 3, 4, 4), True,
                                   stream=0), "only CUDA tensors run on a stream"),
    ],
)  # fmt: skip
def test_launch_rejects_bad_arguments_with_one_line(interpret, call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_cuda_tensor_rejects_other_dtypes():
    with pytest.raises(ValueError, match=r"dtype: expected float32, float16 or bfloat16, got torch\.float64"):
        cuda_tensor(0, (1, 2), torch.float64)


def test_fomm_imports_without_triton_and_says_how_to_install():
    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch, fomm, fomm.kernels as k\n"
        "assert not k.triton_available() and not k.TritonWarp().supports(torch.rand(1, 1, 2, 2))\n"
        "try:\n"
        "    k.launch_warp_multi(torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2, 2), torch.empty(1, 1, 1, 2, 2), True)\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "need triton" in result.stdout and "pip install" in result.stdout


# --- CUDA -------------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("shape", [*SHAPES, (1, 3, 64, 64, 11, 64, 64), (1, 256, 64, 64, 1, 64, 64)])
def test_cuda_kernels_match_reference(monkeypatch, shape, align_corners, dtype):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    b, c, height, width, n, h, w = shape
    dev = torch.device("cuda")
    image = torch.rand(b, c, height, width, device=dev).to(dtype)
    grids = random_grids(b, n, h, w).to(dev)
    occlusion = torch.rand(b, 1, h, w, device=dev).to(dtype)
    atol = 1e-5 if dtype == torch.float32 else 2**-11
    impl = TritonWarp()
    torch.testing.assert_close(
        impl.warp_multi(image, grids, align_corners=align_corners).float(),
        reference(image, grids, align_corners), atol=atol, rtol=0,
    )  # fmt: skip
    torch.testing.assert_close(
        impl.warp_occluded(image, grids[:, 0], occlusion, align_corners=align_corners).float(),
        reference(image, grids[:, 0], align_corners, occlusion=occlusion), atol=atol, rtol=0,
    )  # fmt: skip


@pytest.mark.gpu
def test_cuda_launch_on_a_raw_stream(monkeypatch):
    """The TensorRT plugin's call: tensors, and its stream as a raw cudaStream_t."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    dev = torch.device("cuda")
    image = torch.rand(1, 3, 32, 32, device=dev)
    grids = random_grids(1, 4, 32, 32).to(dev)
    out = torch.empty(1, 4, 3, 32, 32, device=dev)
    stream = torch.cuda.Stream()
    torch.cuda.synchronize()
    launch_warp_multi(image, grids, out, True, "zeros", stream=stream.cuda_stream)
    stream.synchronize()
    torch.testing.assert_close(out, reference(image, grids, True), atol=1e-5, rtol=0)


@pytest.mark.parametrize(("dtype", "occluded"), [("fp16", True), ("fp32", False)])
def test_kernel_compiles_for_hopper_without_a_gpu(monkeypatch, dtype, occluded):
    """The interpreter runs Python; this compiles the real thing (Triton IR -> PTX -> sm_90 cubin), which
    catches type and lowering errors the interpreter lets through."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile

    from fomm.kernels._triton_kernels import make_warp_kernel

    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setenv("TRITON_DEFAULT_FP_FUSION", "1")
    kernel = make_warp_kernel()
    names = kernel.arg_names
    flags = {"ALIGN_CORNERS": True, "BORDER": False, "HAS_OCCLUSION": occluded, "BLOCK_P": 64, "BLOCK_C": 32}
    pointers = {"image": f"*{dtype}", "grid": "*fp32", "occlusion": f"*{dtype}", "out": f"*{dtype}"}
    signature = {n: "constexpr" if n in flags else pointers.get(n, "i32") for n in names}
    constexprs = {(names.index(n),): v for n, v in flags.items()}
    compiled = compile(ASTSource(kernel, signature, constexprs), target=GPUTarget("cuda", 90, 32))
    assert "ld.global" in compiled.asm["ptx"] and compiled.asm["cubin"]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cuda_launch_on_raw_pointers(monkeypatch, dtype):
    """A TensorRT IPluginV3 enqueue gets raw device pointers, shapes and a stream: view, launch, done."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    dev = torch.device("cuda")
    image = torch.rand(2, 8, 16, 16, device=dev).to(dtype)
    grid = random_grids(2, 1, 12, 12)[:, 0].to(dev)
    occlusion = torch.rand(2, 1, 12, 12, device=dev).to(dtype)
    out = torch.zeros(2, 8, 12, 12, device=dev, dtype=dtype)
    stream = torch.cuda.Stream()
    torch.cuda.synchronize()
    views = [cuda_tensor(t.data_ptr(), t.shape, t.dtype) for t in (image, grid, occlusion, out)]
    launch_warp_occluded(*views, False, "zeros", stream.cuda_stream)
    stream.synchronize()
    atol = 1e-5 if dtype == torch.float32 else 2**-8
    expected = reference(image, grid, False, occlusion=occlusion)
    torch.testing.assert_close(out.float(), expected, atol=atol, rtol=0)  # written through the views
