"""What this machine has for TensorRT engines (``fomm doctor``): GPU, driver, CUDA, torch, TensorRT flavour and
version, warp plugin status, engine cache; with a GPU, a tiny engine built, run and compared with PyTorch.

:func:`diagnose` returns ``(label, value)`` lines and never raises for a missing piece: it says what is missing
and how to get it. The CLI prints the lines.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engines.errors import EngineError

__all__ = ["diagnose", "self_check"]

logger = logging.getLogger(__name__)


def _driver() -> str:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "unknown (nvidia-smi not found)"
    try:
        out = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "unknown"


class _CheckNet(nn.Module):
    """Conv -> GridSample -> Softmax: the operations the exported graphs rely on."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        return F.grid_sample(self.conv(image), grid, align_corners=True).softmax(1)


def self_check(trt: object | None = None, size: int = 64, runs: int = 50) -> tuple[float, float]:
    """Build a tiny engine, run it on the GPU against PyTorch: ``(max abs difference, ms per run)``.

    Raises:
        EngineError: no GPU, no TensorRT, or a failure on the way (the message says which).
    """
    from engines.build import EngineConfig, build_engine
    from engines.engine import Engine, require_cuda, rtx_targets
    from engines.spec import GraphSpec, TensorSpec
    from engines.trt import TensorRT, load_tensorrt

    info = trt if isinstance(trt, TensorRT) else load_tensorrt()
    require_cuda()
    torch.manual_seed(0)
    net = _CheckNet().eval()
    image = torch.rand(1, 3, size, size)
    grid = torch.rand(1, size, size, 2) * 2 - 1
    spec = GraphSpec(
        "doctor",
        (TensorSpec("image", tuple(image.shape)), TensorSpec("grid", tuple(grid.shape))),
        (TensorSpec("out", (1, 8, size, size)),),
    )
    with tempfile.TemporaryDirectory() as folder:
        onnx_path = Path(folder) / "doctor.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net, (image, grid), str(onnx_path), input_names=["image", "grid"], output_names=["out"],
                opset_version=17, dynamo=False,
            )  # fmt: skip
        config = EngineConfig(compute_capabilities=rtx_targets(info, torch.cuda.get_device_capability()))
        built = build_engine(onnx_path, spec, config, trt=info)
        engine_path = Path(folder) / "doctor.engine"
        engine_path.write_bytes(built.blob)
        engine = Engine(engine_path, spec, trt=info)
        feed = {"image": image.cuda(), "grid": grid.cuda()}
        out = engine(feed)["out"]
        with torch.no_grad():
            ref = net.cuda()(feed["image"], feed["grid"])
        diff = float((out - ref).abs().max())
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(runs):
            engine(feed)
        torch.cuda.synchronize()
        ms = (time.perf_counter() - start) * 1000 / runs
    return diff, ms


def diagnose(*, run_self_check: bool = True) -> list[tuple[str, str]]:
    """The doctor's report, one ``(label, value)`` per line."""
    from engines.cache import default_cache_dir
    from engines.engine import check_gpu_supported
    from engines.trt import INSTALL_HINT, load_tensorrt

    lines: list[tuple[str, str]] = [("torch", torch.__version__)]
    missing: list[str] = []
    has_gpu = torch.cuda.is_available()
    lines.append(("CUDA (torch)", torch.version.cuda or "none (CPU build of torch)"))
    if has_gpu:
        major, minor = torch.cuda.get_device_capability()
        lines.append(("GPU", f"{torch.cuda.get_device_name()} (compute capability {major}.{minor})"))
    else:
        lines.append(("GPU", "none visible to torch"))
        missing.append("a CUDA GPU (and a CUDA build of torch) to run engines")
    lines.append(("driver", _driver()))
    try:
        trt = load_tensorrt()
    except EngineError:
        trt = None
        lines.append(("TensorRT", "not installed"))
        missing.append(INSTALL_HINT)
    if trt is not None:
        lines.append(("TensorRT", f"{trt.label} ({trt.flavour})"))
        if trt.is_rtx:
            lines.append(("build without GPU", "yes (ahead-of-time; portable to compute capability 8.0-12.0)"))
        if has_gpu:
            try:
                check_gpu_supported(trt, torch.cuda.get_device_name(), torch.cuda.get_device_capability())
            except EngineError as exc:
                missing.append(str(exc))
        lines.append(("warp plugin", _plugin_status(trt)))
    cache = default_cache_dir()
    count = len(list(cache.glob("*.engine"))) if cache.is_dir() else 0
    lines.append(("engine cache", f"{cache} ({count} engine{'s' if count != 1 else ''})"))
    if run_self_check and trt is not None and has_gpu and not missing:
        try:
            diff, ms = self_check(trt)
            lines.append(("self-check", f"tiny engine vs PyTorch: max difference {diff:.2e}, {ms:.3f} ms per run"))
        except EngineError as exc:
            lines.append(("self-check", f"FAILED: {exc}"))
    else:
        lines.append(("self-check", "skipped (needs TensorRT and a supported CUDA GPU)"))
    lines.append(("missing", "; ".join(missing) if missing else "nothing"))
    return lines


def _plugin_status(trt: object) -> str:
    from engines.trt import TensorRT

    assert isinstance(trt, TensorRT)
    if not trt.has_plugin_layers:
        return f"not available in {trt.label} (no plugin layers): engines use the standard graph (native GridSample)"
    from fomm.kernels import TRITON_INSTALL_HINT, triton_available

    if not triton_available():
        return f"not loadable (triton missing: {TRITON_INSTALL_HINT}); engines use the standard graph (GridSample)"
    return "available (IPluginV3 in Python, Triton kernels): fused graphs build with it"
