"""CPU speed paths, in one run: per-frame time of vox-256 and of the demo model for each backend variant,
output PSNR of the low-precision variants against fp32 on the bundled clip, and the demo model's live-loop
FPS per backend. Saves JSON and a PNG bar chart.

Variants: ``original`` (the original ``make_animation`` per-frame work: driving keypoints + the full
generator, re-encoding the source; torch fp32), ``torch-fp32`` (cached step: keypoints, dense motion,
decode), ``torch-bf16`` (autocast; AMX on CPUs that have it), ``onnx-fp32`` (ONNX Runtime),
``onnx-int8`` (ONNX Runtime, the animate graph statically quantised to int8 QDQ, calibrated on real frames
of the clip that the PSNR frames do not include). Timings are medians over rounds that visit the variants
in turn, so machine load affects all alike.

    python benchmarks/backends.py [--rounds 6] [--psnr-frames 24] [--live-seconds 12] [--out results/backends]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

import fomm
from export.backend import OnnxBackend
from export.exporter import ExportOptions, export_model
from export.quantize import calibration_feeds, int8_filename, quantize_graph
from fomm.media.assets import DEFAULT_AVATAR, DEFAULT_DRIVING, DEMO_MODEL
from fomm.media.image import fit_square, load_image, to_tensor
from fomm.media.video import open_frames
from live.backends import TorchBackend

VARIANTS = ("original", "torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8")


def clip_frames(size: int) -> list[torch.Tensor]:
    with open_frames(DEFAULT_DRIVING) as frames:
        return [to_tensor(fit_square(f, size, "resize")) for f in frames]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


class Runner:
    """One variant: ``set_source`` once, then ``frame(driving) -> prediction`` (relative motion)."""

    def __init__(self, name: str, model: fomm.Fomm, folder: Path, threads: int) -> None:
        self.name = name
        self.animator = None
        if name == "original":
            self.animator = fomm.Animator(model)
        elif name.startswith("torch"):
            self.backend = TorchBackend(model, dtype=name.split("-")[1])
        else:
            files = {"animate": int8_filename("animate")} if name == "onnx-int8" else None
            self.backend = OnnxBackend(folder, threads=threads, graph_files=files)
        self.calibration = None
        self.kp_source = None

    def set_source(self, source: torch.Tensor, first: torch.Tensor) -> None:
        if self.animator is not None:
            self.animator.set_source(source)
            self.animator.calibrate(first)
            return
        self.kp_source = self.backend.set_source(source)
        self.calibration = fomm.calibrate(self.kp_source, self.backend.keypoints(first), adapt_movement_scale=True)

    @torch.inference_mode()
    def frame(self, driving: torch.Tensor) -> torch.Tensor:
        if self.animator is not None:
            return self.animator.step_uncached(driving)
        kp = fomm.transfer_motion(self.backend.keypoints(driving), self.calibration, relative=True)
        return self.backend.generate(kp)


def bench_model(label: str, model: fomm.Fomm, frames: list[torch.Tensor], source: torch.Tensor, args) -> dict:
    threads = torch.get_num_threads()
    work = Path(tempfile.mkdtemp(prefix=f"fomm-bench-{label}-"))
    t0 = time.perf_counter()
    export_model(model, work / "onnx", ExportOptions())
    export_s = time.perf_counter() - t0
    calib_frames = frames[5::20][: args.calibration_frames]
    eval_frames = frames[::10][: args.psnr_frames]
    fp32 = OnnxBackend(work / "onnx", threads=threads)
    t0 = time.perf_counter()
    quantize_graph(work / "onnx", "animate", calibration_feeds(fp32, source, calib_frames))
    quantize_s = time.perf_counter() - t0
    runners = {name: Runner(name, model, work / "onnx", threads) for name in VARIANTS}
    for r in runners.values():
        r.set_source(source, frames[0])
    # quality: every variant on the evaluation frames, against torch fp32
    outputs = {name: [r.frame(f) for f in eval_frames] for name, r in runners.items()}
    reference = outputs["torch-fp32"]
    save_frames(outputs, args.out / f"frames-{label}.png", min(5, len(eval_frames) - 1))
    quality = {
        name: {
            "psnr_db_vs_torch_fp32": float(np.mean([psnr(a, b) for a, b in zip(outs, reference, strict=True)])),
            "max_abs_diff": float(max((a - b).abs().max() for a, b in zip(outs, reference, strict=True))),
        }
        for name, outs in outputs.items()
    }
    # speed: rounds over the variants in turn, one frame each, after one warm-up frame
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for r in runners.values():
        r.frame(frames[1])
    for i in range(args.rounds):
        frame = frames[(7 * i + 3) % len(frames)]
        for name, r in runners.items():
            t = time.perf_counter()
            r.frame(frame)
            times[name].append(time.perf_counter() - t)
    for r in runners.values():
        if r.animator is None:
            r.backend.close()
    shutil.rmtree(work, ignore_errors=True)
    base = float(np.median(times["original"]))
    result = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "export_s": export_s,
        "quantize_s": quantize_s,
        "calibration_frames": len(calib_frames),
        "psnr_frames": len(eval_frames),
        "variants": {},
    }
    for name in VARIANTS:
        ms = float(np.median(times[name])) * 1000
        result["variants"][name] = {
            "frame_ms": ms,
            "fps": 1000 / ms,
            "ratio_to_original": ms / 1000 / base,
            **quality[name],
        }
        print(
            f"{label:9s} {name:11s} {ms:8.1f} ms/frame  x{ms / 1000 / base:5.2f} of original  "
            f"PSNR {quality[name]['psnr_db_vs_torch_fp32']:6.1f} dB  max diff {quality[name]['max_abs_diff']:.2e}",
            flush=True,
        )
    return result


def live_fps(backend: str, dtype: str, seconds: float) -> dict:
    from live.app import run
    from live.config import LiveConfig
    from live.sinks import NullSink

    stop = threading.Event()
    config = LiveConfig(
        camera=str(DEFAULT_DRIVING),
        backend=backend,
        dtype=dtype,
        preview=False,
        remember=False,
        loop=True,
        realtime=False,
    )
    from live.app import load_backend

    load_backend(config)[0].close()  # the export (and int8 calibration) happens here, not in the timed run
    timer = threading.Timer(seconds, stop.set)
    timer.start()
    try:
        summary = run(config, stop=stop, extra_sinks=[NullSink()]).stats.summary()
    finally:
        timer.cancel()
    return {"uncapped_fps": summary["fps"], "frames": summary["frames"]}


def chart(report: dict, path: Path) -> None:
    """A bar chart (OpenCV drawing: no plotting dependency): ms/frame per variant, each model's bars on its
    own linear scale (the original-style step is the longest), with PSNR; then live-loop FPS."""
    import cv2

    groups: list[tuple[str, list[tuple[str, float, str]]]] = []
    for model, r in report["models"].items():
        rows = []
        for variant, d in r["variants"].items():
            db = d["psnr_db_vs_torch_fp32"]
            note = f"{d['frame_ms']:.0f} ms  x{d['ratio_to_original']:.2f}" + (
                f"  {db:.1f} dB" if math.isfinite(db) and variant != "onnx-fp32" else ""
            )
            rows.append((variant, d["frame_ms"], note))
        groups.append((f"{model}: ms per frame (shorter is faster), PSNR vs torch fp32", rows))
    if report["live_fps"]:
        rows = [(k, v["uncapped_fps"], f"{v['uncapped_fps']:.1f} fps") for k, v in report["live_fps"].items()]
        groups.append(("demo-256 live loop: uncapped FPS (longer is faster)", rows))
    line, left, width = 26, 170, 1000
    height = 10 + sum(30 + line * len(rows) for _, rows in groups)
    img = np.full((height, width, 3), 255, np.uint8)
    y = 10
    font = cv2.FONT_HERSHEY_SIMPLEX
    for title, rows in groups:
        cv2.putText(img, title, (10, y + 18), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        y += 30
        top = max(v for _, v, _ in rows) or 1.0
        for variant, value, note in rows:
            colour = (200, 120, 40) if "onnx" in variant else (60, 160, 60) if "torch" in variant else (80, 80, 200)
            length = max(2, int((width - left - 230) * value / top))
            cv2.putText(img, variant, (20, y + 15), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
            cv2.rectangle(img, (left, y), (left + length, y + line - 6), colour, -1)
            cv2.putText(img, note, (left + length + 6, y + 15), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
            y += line
    cv2.imwrite(str(path), img)


def save_frames(outputs: dict[str, list[torch.Tensor]], path: Path, index: int) -> None:
    """One evaluation frame side by side, every variant (left to right in VARIANTS order)."""
    import cv2

    row = np.concatenate([o[index][0].permute(1, 2, 0).clamp(0, 1).numpy() for o in outputs.values()], axis=1)
    cv2.imwrite(str(path), (row[:, :, ::-1] * 255).round().astype(np.uint8))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6, help="timed frames per variant (default 6)")
    parser.add_argument("--psnr-frames", type=int, default=24, help="clip frames for PSNR (default 24)")
    parser.add_argument("--calibration-frames", type=int, default=12, help="int8 calibration frames (default 12)")
    parser.add_argument("--live-seconds", type=float, default=12.0, help="live loop seconds per backend")
    parser.add_argument("--models", default="vox-256,demo-256", help="comma-separated (default vox-256,demo-256)")
    parser.add_argument("--out", type=Path, default=Path("results/backends"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cache = None
    if not os.environ.get("FOMM_CACHE_DIR"):
        cache = os.environ["FOMM_CACHE_DIR"] = tempfile.mkdtemp(prefix="fomm-bench-cache-")
    args.out.mkdir(parents=True, exist_ok=True)
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    report: dict = {
        "torch": torch.__version__,
        "onnxruntime": __import__("onnxruntime").__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "amx": {f: f in flags for f in ("amx_bf16", "amx_int8")},
        "models": {},
        "live_fps": {},
    }
    size = 256
    frames = clip_frames(size)
    source = to_tensor(fit_square(load_image(DEFAULT_AVATAR), size, "resize"))
    for label in args.models.split(","):
        if label == "demo-256":
            model = fomm.load_checkpoint(DEMO_MODEL).model
        else:
            torch.manual_seed(0)
            model = fomm.build_fomm(fomm.preset(label))  # random weights: speed does not depend on them
        report["models"][label] = bench_model(label, model, frames, source, args)
    if args.live_seconds > 0:
        for backend, dtype in (("torch", "fp32"), ("torch", "bf16"), ("onnx", "fp32"), ("onnx", "int8")):
            key = f"{backend}-{dtype}"
            try:
                report["live_fps"][key] = live_fps(backend, dtype, args.live_seconds)
            except Exception as exc:  # a variant the live tool does not offer
                print(f"live {key}: {exc}")
                continue
            print(f"live demo-256 {key:11s} {report['live_fps'][key]['uncapped_fps']:6.1f} fps uncapped", flush=True)
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)
    (args.out / "backends.json").write_text(json.dumps(report, indent=2) + "\n")
    chart(report, args.out / "backends.png")
    print(f"saved {args.out / 'backends.json'} and {args.out / 'backends.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
