"""The GPU fast path's checks in one run (for a lent CUDA machine), JSON out.

1. ``kernels``: the Triton fused warps against the PyTorch reference (max error and time; several shapes,
   both ``align_corners``, fp32 and fp16 storage).
2. ``step``: the per-frame step (driving keypoints + dense motion + warp + decode, batch 1) of vox-256
   (random weights) and of the bundled demo model: torch fp32 eager, fp16 autocast eager (the ``--dtype fp16``
   path), fp16 weights eager, fp16 + Triton, fp16 + Triton + CUDA graph, fp32 + Triton + CUDA graph, fp16 +
   ``torch.compile`` + CUDA graph; time, largest difference from fp32 eager, and the kernels and GPU time of
   one frame run eagerly (launch-bound or not).
3. ``onnxruntime``: the exported graphs on ONNX Runtime's CUDA provider, when ``export`` has the exporter and
   onnxruntime has the provider; ``tensorrt``: ``engines.TrtBackend`` on the exported ``standard`` graphs,
   FP32/FP16, with and without CUDA-graph replay, against torch fp32 (each failure recorded with its message).
4. ``live``: the whole live loop (paced bundled clip, face framing, null sink): FPS and glass-to-glass p95,
   default torch backend vs the fast path, without and with ``torch.compile`` (compiled before the timed run).
5. ``autotune`` (only when named in ``--sections``): vox-256's step compiled with Inductor's max-autotune
   (minutes of compilation).

Every section runs in its own try/except: a failure is recorded (``error``) and the run goes on; the JSON is
rewritten after each section, so a run stopped from outside still leaves what it measured.

    python scripts/gpu_check_fast.py --out results/gpu_check_fast.json            # GPU, < 6 min on an H200
    python scripts/gpu_check_fast.py --device cpu --quick --out results/dry.json  # CPU dry run of every path
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (dry run: Triton interpreted)")
    parser.add_argument("--quick", action="store_true", help="small shapes, few frames, short live runs")
    parser.add_argument("--models", help="comma-separated: presets and/or 'demo' (default vox-256,demo)")
    parser.add_argument("--sections", default="kernels,step,onnxruntime,tensorrt,live")
    parser.add_argument("--variants", help="comma-separated step variants to run (default: all)")
    parser.add_argument("--live-seconds", type=float, help="seconds per live run (default 8, quick 5)")
    parser.add_argument("--budget", type=float, default=330.0, help="seconds; later sections skip when spent")
    parser.add_argument("--out", type=Path, default=Path("results/gpu_check_fast.json"))
    return parser.parse_args(argv)


# --- helpers -------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def bench(fn: Callable[[], Any], sync: Callable[[], None], *, rounds: int, reps: int) -> float:
    """Milliseconds per call: the median over ``rounds`` of the mean of ``reps`` back-to-back calls."""
    fn()
    sync()
    results = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        sync()
        results.append((time.perf_counter() - t0) * 1000 / reps)
    return round(percentile(results, 50), 4)


class Report:
    def __init__(self, path: Path, budget: float) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        self.start = time.perf_counter()
        self.budget = budget

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2, default=str))

    def section(self, name: str, fn: Callable[[], dict[str, Any]], *, needs: float = 0.0) -> None:
        t0 = time.perf_counter()
        if self.elapsed() + needs > self.budget:
            result: dict[str, Any] = {"skipped": f"time budget: {self.elapsed():.0f} s of {self.budget:.0f} s spent"}
        else:
            try:
                result = fn()
            except Exception as exc:  # record and go on: one section never stops the run
                result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)}
        result["seconds"] = round(time.perf_counter() - t0, 2)
        self.data[name] = result
        self.write()
        status = "error" if "error" in result else "skipped" if "skipped" in result else "ok"
        print(f"[{self.elapsed():6.1f} s] {name}: {status} ({result['seconds']} s)", flush=True)


def skipped(reason: str) -> dict[str, Any]:
    return {"skipped": reason}


# --- 1. kernels ----------------------------------------------------------------------------------------------


def kernel_row(
    impl: Any,
    image: Any,
    grids: Any,
    occlusion: Any,
    align_corners: bool,
    sync: Callable[[], None],
    rounds: int,
    reps: int,
) -> dict[str, Any]:
    """Errors against grid_sample on float32 copies; times of the kernels and of the unfused reference in the
    tensors' own dtype (expand + grid_sample, grid_sample x occlusion)."""
    import torch.nn.functional as F

    b, c, height, width = image.shape
    n, h, w = grids.shape[1:4]
    img32 = image.float()
    repeated32 = img32.unsqueeze(1).expand(b, n, c, height, width).reshape(b * n, c, height, width)
    ref_multi = F.grid_sample(repeated32, grids.reshape(b * n, h, w, 2), align_corners=align_corners)
    ref_occ = F.grid_sample(img32, grids[:, 0], align_corners=align_corners) * occlusion.float()
    multi = impl.warp_multi(image, grids, align_corners=align_corners)
    occ = impl.warp_occluded(image, grids[:, 0], occlusion, align_corners=align_corners)
    grids_d = grids.to(image.dtype)

    def ref_multi_fn() -> Any:
        rep = image.unsqueeze(1).expand(b, n, c, height, width).reshape(b * n, c, height, width)
        return F.grid_sample(rep, grids_d.reshape(b * n, h, w, 2), align_corners=align_corners)

    def ref_occ_fn() -> Any:
        return F.grid_sample(image, grids_d[:, 0], align_corners=align_corners) * occlusion

    def multi_fn() -> Any:
        return impl.warp_multi(image, grids, align_corners=align_corners)

    def occ_fn() -> Any:
        return impl.warp_occluded(image, grids[:, 0], occlusion, align_corners=align_corners)

    return {
        "dtype": str(image.dtype).removeprefix("torch."),
        "align_corners": align_corners,
        "max_abs_multi": float((multi.float() - ref_multi.view(b, n, c, h, w)).abs().max()),
        "max_abs_occluded": float((occ.float() - ref_occ).abs().max()),
        "triton_multi_ms": bench(multi_fn, sync, rounds=rounds, reps=reps),
        "reference_multi_ms": bench(ref_multi_fn, sync, rounds=rounds, reps=reps),
        "triton_occluded_ms": bench(occ_fn, sync, rounds=rounds, reps=reps),
        "reference_occluded_ms": bench(ref_occ_fn, sync, rounds=rounds, reps=reps),
    }


def kernel_section(device: Any, quick: bool) -> dict[str, Any]:
    import torch

    from fomm.kernels import TritonWarp, interpreter_enabled, triton_available

    if not triton_available():
        return skipped("triton is not installed")
    if device.type == "cpu" and not interpreter_enabled():
        return skipped("CPU without TRITON_INTERPRET=1")
    if quick or device.type == "cpu":
        shapes = {"dense-motion-small": (1, 3, 16, 16, 5, 16, 16), "features-small": (1, 40, 8, 8, 1, 8, 8),
                  "odd": (2, 5, 9, 7, 2, 6, 5)}  # fmt: skip
        rounds, reps = 2, 2
    else:
        shapes = {
            "dense-motion vox-256 (source 3x64x64, 11 grids)": (1, 3, 64, 64, 11, 64, 64),
            "feature warp vox-256 (256x64x64)": (1, 256, 64, 64, 1, 64, 64),
            "feature warp demo-256 (32x64x64)": (1, 32, 64, 64, 1, 64, 64),
            "feature warp, batch 4": (4, 256, 64, 64, 1, 64, 64),
            "odd sizes, upsampling": (2, 5, 37, 53, 3, 71, 29),
        }
        rounds, reps = 5, 20
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    impl = TritonWarp()
    g = torch.Generator().manual_seed(0)
    rows = []
    worst: dict[str, float] = {}
    for label, (b, c, height, width, n, h, w) in shapes.items():
        for dtype in (torch.float32, torch.float16):
            image = torch.rand(b, c, height, width, generator=g).to(device=device, dtype=dtype)
            grids = ((torch.rand(b, n, h, w, 2, generator=g) * 2 - 1) * 1.3).to(device)
            occlusion = torch.rand(b, 1, h, w, generator=g).to(device=device, dtype=dtype)
            for align_corners in (True, False):
                row = kernel_row(impl, image, grids, occlusion, align_corners, sync, rounds, reps)
                worst[row["dtype"]] = max(worst.get(row["dtype"], 0.0), row["max_abs_multi"], row["max_abs_occluded"])
                rows.append({"shape": label, "dims": [b, c, height, width, n, h, w], **row})
    tolerance = {"float32": 1e-5, "float16": 2**-11}
    return {
        "interpreted": device.type == "cpu",
        "max_abs_error": worst,
        "tolerance": tolerance,
        "pass": all(worst[k] <= tolerance[k] for k in worst),
        "rows": rows,
    }


# --- 2. per-frame step ---------------------------------------------------------------------------------------


def make_model(name: str) -> tuple[Any, str]:
    import torch

    import fomm
    from fomm.media.assets import DEMO_MODEL

    if name == "demo":
        return fomm.load_checkpoint(DEMO_MODEL, None, device="cpu").model, f"demo-256 ({DEMO_MODEL.name})"
    torch.manual_seed(0)
    model = fomm.build_fomm(fomm.preset(name))
    with torch.no_grad():  # non-trivial jacobians and BN statistics, as in scripts/gpu_check.py
        model.kp_detector.jacobian.weight.normal_(0, 1e-3)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
    return model, f"{name} (random weights)"


#: variants left out of ``step`` unless named (``--variants``); the ``autotune`` section runs them on vox-256
SLOW_VARIANTS = ("fp16_autotuned_graph",)


def step_variants(device: Any) -> dict[str, Callable[[Any], Any] | str]:
    """Backend factories by variant name (a string: why the variant cannot run here)."""
    from fomm.kernels import interpreter_enabled
    from live.backends import TorchBackend
    from live.fast_backend import FastTorchBackend

    dev = device
    if device.type == "cuda":
        return {
            "fp32_eager": lambda m: TorchBackend(m, dev, "fp32"),
            "fp16_autocast_eager": lambda m: TorchBackend(m, dev, "fp16"),
            "fp16_eager": lambda m: FastTorchBackend(m, dev, "fp16", triton=False, cuda_graph=False),
            "fp16_triton": lambda m: FastTorchBackend(m, dev, "fp16", cuda_graph=False),
            "fp16_triton_graph": lambda m: FastTorchBackend(m, dev, "fp16"),
            "fp32_triton_graph": lambda m: FastTorchBackend(m, dev, "fp32"),
            "fp16_compiled_graph": lambda m: FastTorchBackend(m, dev, "fp16", compile=True),
            "fp16_autotuned_graph": lambda m: FastTorchBackend(m, dev, "fp16", compile="max-autotune-no-cudagraphs"),
        }
    no_cuda = "needs CUDA (fp16 / CUDA graphs)"
    return {
        "fp32_eager": lambda m: TorchBackend(m, dev, "fp32"),
        "bf16_eager": lambda m: FastTorchBackend(m, dev, "bf16", triton=False, cuda_graph=False),
        "fp32_triton": (lambda m: FastTorchBackend(m, dev, "fp32", cuda_graph=False))
        if interpreter_enabled()
        else "CPU without TRITON_INTERPRET=1",
        "fp16_autocast_eager": no_cuda,
        "fp16_eager": no_cuda,
        "fp16_triton": no_cuda,
        "fp16_triton_graph": no_cuda,
        "fp32_triton_graph": no_cuda,
        "fp16_compiled_graph": no_cuda,
        "fp16_autotuned_graph": no_cuda,
    }


def eager_kernels(backend: Any, driving: Any) -> dict[str, Any]:
    """CUDA kernels one eager frame launches (the fast path's bodies, without graph replay) and their summed
    GPU time: many kernels and little GPU time means launch-bound."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CUDA]) as prof:
        kp = backend._keypoints_eager(driving)
        backend._generate_eager(kp.value.float(), kp.jacobian.float())
        torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    busy_us = sum(e.device_time_total for e in kernels)
    return {"kernels": len(kernels), "gpu_busy_ms": round(busy_us / 1000, 3)}


def step_section(device: Any, models: list[str], quick: bool, only: set[str] | None = None) -> dict[str, Any]:
    import torch

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    warmup, frames = (1, 3) if quick or device.type == "cpu" else (10, 100)
    result: dict[str, Any] = {"batch": 1, "frames_timed": frames, "warmup_frames": warmup}
    for name in models:
        base, described = make_model(name)
        state = base.state_dict()
        g = torch.Generator().manual_seed(1)
        size = base.config.image_size
        source = torch.rand(1, 3, size, size, generator=g).to(device)
        driving = [torch.rand(1, 3, size, size, generator=g).to(device) for _ in range(4)]
        rows: dict[str, Any] = {"model": described}
        reference: Any = None
        for variant, factory in step_variants(device).items():
            if only is not None and variant not in only and variant != "fp32_eager":  # the reference always runs
                continue
            if only is None and variant in SLOW_VARIANTS:  # minutes of compilation: only when asked for
                continue
            if isinstance(factory, str):
                rows[variant] = skipped(factory)
                continue
            try:
                model, _ = make_model(name) if name == "demo" else (type(base)(base.config), None)
                model.load_state_dict(state)
                backend = factory(model.eval())
                t0 = time.perf_counter()
                backend.set_source(source)
                out0 = backend.generate(backend.keypoints(driving[0]))  # captures graphs, if any
                sync()
                first_ms = (time.perf_counter() - t0) * 1000
                if reference is None:
                    reference = out0.float()
                for i in range(warmup):
                    backend.generate(backend.keypoints(driving[i % len(driving)]))
                sync()
                times = []
                for i in range(frames):
                    t1 = time.perf_counter()
                    backend.generate(backend.keypoints(driving[i % len(driving)]))
                    sync()
                    times.append((time.perf_counter() - t1) * 1000)
                check = backend.generate(backend.keypoints(driving[0])).float()
                row = {
                    "backend": backend.name,
                    "median_ms": round(percentile(times, 50), 3),
                    "p95_ms": round(percentile(times, 95), 3),
                    "fps": round(1000 / percentile(times, 50), 1),
                    "max_abs_vs_fp32_eager": float((check - reference).abs().max()),
                    "set_source_and_first_frame_ms": round(first_ms, 1),
                }
                if hasattr(backend, "graph_stats"):
                    row["graphs"] = backend.graph_stats
                    if device.type == "cuda":
                        try:
                            row["eager_frame"] = eager_kernels(backend, driving[0])
                        except Exception as exc:
                            row["eager_frame"] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
                rows[variant] = row
                print(f"    {name:8s} {variant:20s} {row['median_ms']:9.3f} ms", flush=True)
            except Exception as exc:
                rows[variant] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0],
                                 "traceback": traceback.format_exc(limit=6)}  # fmt: skip
            finally:
                with contextlib.suppress(Exception):
                    del backend
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        result[name] = rows
    return result


# --- 3. ONNX Runtime / TensorRT ------------------------------------------------------------------------------


def onnxruntime_section(device: Any, models: list[str], quick: bool) -> dict[str, Any]:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return skipped(f"onnxruntime does not import ({exc})")
    try:
        from export.exporter import ExportOptions, export_model
        from export.runtime import open_export
    except ImportError as exc:
        return skipped(f"this checkout's export/ has no ONNX exporter/runtime ({exc})")
    providers = ort.get_available_providers()
    if device.type == "cuda" and "CUDAExecutionProvider" not in providers:
        return skipped(f"onnxruntime {ort.__version__} has no CUDA provider (providers: {providers}); "
                       "install onnxruntime-gpu")  # fmt: skip
    import numpy as np
    import torch

    frames = 3 if quick or device.type == "cpu" else 50
    result: dict[str, Any] = {"onnxruntime": ort.__version__, "providers": providers}
    for name in models:
        model, described = make_model(name)
        model.eval()
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "onnx"
            export_model(model, folder, ExportOptions(precision="fp32", warp="standard"))
            graphs = open_export(folder, device=device.type)
            size = model.config.image_size
            g = torch.Generator().manual_seed(1)
            source = torch.rand(1, 3, size, size, generator=g).numpy()
            driving = torch.rand(1, 3, size, size, generator=g).numpy()
            src_kp = graphs["keypoints"].run({"image": source})
            src = graphs["source"].run({"source": source})
            feeds = {**src, "source_kp_value": src_kp["kp_value"], "source_kp_jacobian": src_kp["kp_jacobian"]}

            def step() -> np.ndarray:
                kp = graphs["keypoints"].run({"image": driving})  # noqa: B023
                run = {**feeds, "driving_kp_value": kp["kp_value"], "driving_kp_jacobian": kp["kp_jacobian"]}  # noqa: B023
                return graphs["animate"].run(run)["frame"]  # noqa: B023

            frame = step()
            times = []
            for _ in range(frames):
                t0 = time.perf_counter()
                step()
                times.append((time.perf_counter() - t0) * 1000)
            from live.backends import TorchBackend

            torch_backend = TorchBackend(model, "cpu", "fp32")
            torch_backend.set_source(torch.from_numpy(source))
            expected = torch_backend.generate(torch_backend.keypoints(torch.from_numpy(driving))).numpy()
            result[name] = {
                "model": described,
                "providers": graphs["animate"].providers,
                "median_ms": round(percentile(times, 50), 3),
                "p95_ms": round(percentile(times, 95), 3),
                "max_abs_vs_torch_cpu_fp32": float(np.abs(frame - expected).max()),
                "note": "numpy feeds: host<->device copies included",
            }
    return result


def tensorrt_section(device: Any, models: list[str], quick: bool) -> dict[str, Any]:
    """Per-frame step (keypoints + animate engines) of each model as TensorRT engines built from the exported
    ``standard`` graphs, FP32 and FP16, with and without CUDA-graph replay, against torch fp32 on the same GPU.
    Every failure (e.g. TensorRT-RTX refusing a non-RTX GPU) is recorded with its message, never raised."""
    found = [m for m in ("tensorrt", "tensorrt_rtx") if importlib.util.find_spec(m) is not None]
    if not found:
        return skipped("neither tensorrt nor tensorrt_rtx is installed")
    if device.type != "cuda":
        return skipped("TensorRT engines run only on a CUDA GPU")
    import torch

    import engines.engine
    from engines.backend import TrtBackend
    from engines.doctor import self_check
    from engines.errors import EngineError
    from engines.trt import load_tensorrt
    from export.exporter import ExportOptions, export_model
    from live.backends import TorchBackend

    trt = load_tensorrt()
    result: dict[str, Any] = {"flavour": trt.flavour, "version": trt.version}
    gpu, capability = torch.cuda.get_device_name(device), torch.cuda.get_device_capability(device)
    try:
        engines.engine.check_gpu_supported(trt, gpu, capability)
        result["gpu_check"] = "supported"
    except EngineError as exc:  # e.g. TensorRT-RTX on a Hopper GPU: try anyway, to learn what the flavour does
        result["gpu_check"] = f"refused by the tool: {exc}"
        result["forced"] = "the tool's GPU check was bypassed for the rows below"
        engines.engine.check_gpu_supported = lambda *args: None
    try:
        diff, ms = self_check(trt)
        result["doctor_self_check"] = {"max_abs": diff, "ms_per_run": round(ms, 4)}
    except Exception as exc:
        result["doctor_self_check"] = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"}
    frames = 5 if quick else 100
    for name in models:
        model, described = make_model(name)
        model.eval()
        rows: dict[str, Any] = {"model": described}
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "onnx"
            export_model(model, folder, ExportOptions(precision="fp32", warp="standard"))
            size = model.config.image_size
            g = torch.Generator().manual_seed(1)
            source = torch.rand(1, 3, size, size, generator=g).to(device)
            driving = torch.rand(1, 3, size, size, generator=g).to(device)
            reference = TorchBackend(model, device, "fp32", channels_last=False)
            reference.set_source(source)
            expected = reference.generate(reference.keypoints(driving))
            for precision in ("fp32", "fp16"):
                for graph in (False, True):
                    label = f"{precision}{'-cudagraph' if graph else ''}"
                    try:
                        started = time.perf_counter()
                        backend = TrtBackend(
                            model, folder, device, precision, cache_dir=Path(tmp) / "engines", cuda_graph=graph
                        )
                        built_s = time.perf_counter() - started
                        backend.set_source(source)

                        def step() -> Any:
                            return backend.generate(backend.keypoints(driving))  # noqa: B023

                        frame = step()
                        ms = bench(step, torch.cuda.synchronize, rounds=frames, reps=1)
                        diff = (frame.float() - expected.float()).abs()
                        rows[label] = {
                            "median_ms": round(ms, 3),
                            "build_or_load_s": round(built_s, 2),
                            "max_abs_vs_torch_fp32": float(diff.max()),
                            "mean_abs_vs_torch_fp32": float(diff.mean()),
                        }
                    except Exception as exc:  # recorded: the point of this section is to learn what runs
                        rows[label] = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"}
        result[name] = rows
    return result


# --- 4. live loop --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def fast_backend_in_live(device: Any, prebuilt: Any = None) -> Iterator[None]:
    """Make ``live.app.run`` use the fast path (the default backend's model, converted), or ``prebuilt``: a
    backend compiled and captured beforehand, so that the compilation is not inside the timed run."""
    import live.app
    from live.fast_backend import FastTorchBackend

    original = live.app.load_backend

    def load_fast(config: Any) -> Any:
        backend, text, untrained = original(config)
        if prebuilt is not None:
            return prebuilt, text, untrained
        if device.type == "cuda":
            fast = FastTorchBackend(backend.model, backend.device, "fp16")
        else:  # dry run: the same plumbing without CUDA
            fast = FastTorchBackend(backend.model, backend.device, "fp32", triton=False, cuda_graph=False)
        return fast, text, untrained

    live.app.load_backend = load_fast
    try:
        yield
    finally:
        live.app.load_backend = original


def compiled_live_backend(preset: str, device: Any) -> Any:
    """``--backend torch-fast --compile`` on ``preset`` (random weights), compiled and captured on a frame laid
    out as the live loop's are (channels-last)."""
    import torch

    import fomm
    from live.fast_backend import FastTorchBackend

    backend = FastTorchBackend(fomm.build_fomm(fomm.preset(preset)).eval(), device, "fp16", compile=True)
    size = backend.image_size
    frame = torch.rand(1, size, size, 3, device=device).permute(0, 3, 1, 2)
    backend.set_source(frame)
    backend.generate(backend.keypoints(frame))
    return backend


def live_section(device: Any, quick: bool, seconds: float) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("live_fps", REPO / "benchmarks" / "live_fps.py")
    assert spec is not None and spec.loader is not None
    live_fps = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(live_fps)
    presets = ["tiny-256"] if quick and device.type == "cpu" else ["vox-256", "demo-256"]
    result: dict[str, Any] = {"camera": "bundled clip, 256x256, paced at 25 fps", "seconds_per_run": seconds}
    for preset in presets:
        rows: dict[str, Any] = {}
        for variant in ("torch_fp32", "fast", "fast_compiled"):
            if variant == "fast_compiled" and device.type != "cuda":
                rows[variant] = skipped("needs CUDA")
                continue
            try:
                prebuilt = compiled_live_backend(preset, device) if variant == "fast_compiled" else None
                ctx = fast_backend_in_live(device, prebuilt) if variant != "torch_fp32" else contextlib.nullcontext()
                with ctx:
                    r = live_fps.measure(preset, seconds, str(device))
                rows[variant] = {k: r[k] for k in ("fps", "frames", "dropped_frames", "glass_to_glass_p50_ms",
                                                   "glass_to_glass_p95_ms", "stages_p50_ms")}  # fmt: skip
            except KeyError as exc:  # the stats have no latency at all
                rows[variant] = {"error": f"no frame reached the sink in {seconds} s (no {exc} statistics)"}
            except Exception as exc:
                rows[variant] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        result[preset] = rows
    return result


# --- main ----------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cpu":
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is first imported
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, str(REPO))
    import torch

    device = torch.device(args.device)
    report = Report(args.out, args.budget)
    if device.type == "cuda" and not torch.cuda.is_available():
        report.data["error"] = f"--device {args.device}: CUDA is not available"
        report.write()
        print(report.data["error"], file=sys.stderr)
        return 2
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    sections = set(args.sections.split(","))
    default_models = "tiny-256,demo" if args.quick and device.type == "cpu" else "vox-256,demo"
    models = (args.models or default_models).split(",")
    live_seconds = args.live_seconds or (5.0 if args.quick else 8.0)

    def environment() -> dict[str, Any]:
        info: dict[str, Any] = {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine(),
            "quick": args.quick,
            "TRITON_INTERPRET": os.environ.get("TRITON_INTERPRET"),
        }
        for module in ("triton", "onnxruntime", "tensorrt", "tensorrt_rtx"):
            try:
                info[module] = __import__(module).__version__
            except Exception as exc:
                info[module] = f"not available ({type(exc).__name__})"
        return info

    report.section("environment", environment)
    if "kernels" in sections:
        report.section("kernels", lambda: kernel_section(device, args.quick))
    if "step" in sections:
        only = set(args.variants.split(",")) if args.variants else None
        report.section("step", lambda: step_section(device, models, args.quick, only), needs=20)
    if "onnxruntime" in sections:
        report.section("onnxruntime", lambda: onnxruntime_section(device, models, args.quick), needs=60)
    if "tensorrt" in sections:
        report.section("tensorrt", lambda: tensorrt_section(device, models, args.quick))
    if "live" in sections:
        live_needs = live_seconds * 7 + 60
        report.section("live", lambda: live_section(device, args.quick, live_seconds), needs=live_needs)
    if "autotune" in sections:
        report.section("autotune", lambda: step_section(device, ["vox-256"], args.quick, set(SLOW_VARIANTS)))
    report.data["total_seconds"] = round(report.elapsed(), 1)
    report.write()
    print(f"saved {args.out} ({report.data['total_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
