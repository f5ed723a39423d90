"""Per-frame CPU time of the cached step against the original-style uncached step, in one run.

The cached step (``Animator.step``) runs the driving keypoints, dense motion and decoding; the source
keypoints, encoder features and downsampled source come from ``set_source``. The uncached step is the
original ``make_animation`` per-frame work: driving keypoints + the full generator, which re-encodes the
source every frame. Weights are random (timing does not depend on them).

    python benchmarks/step_latency.py [--frames 10] [--threads N] [--device cpu|cuda] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

import fomm


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(step, frames: torch.Tensor, warmup: int) -> list[float]:
    for i in range(warmup):
        step(frames[i : i + 1])
    times = []
    for i in range(frames.shape[0]):
        sync(frames.device)
        t0 = time.perf_counter()
        step(frames[i : i + 1])
        sync(frames.device)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def bench(config: fomm.FommConfig, n_frames: int, warmup: int, device: torch.device) -> dict[str, object]:
    size = config.image_size
    model = fomm.build_fomm(config, device=device)
    animator = fomm.Animator(model, fomm.AnimationOptions(relative=True, adapt_movement_scale=True))
    g = torch.Generator().manual_seed(0)
    source = torch.rand(1, 3, size, size, generator=g).to(device)
    frames = torch.rand(n_frames, 3, size, size, generator=g).to(device)
    animator.set_source(source)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    animator.set_source(source)
    sync(device)
    set_source_ms = (time.perf_counter() - t0) * 1000
    animator.calibrate(frames[:1])
    result: dict[str, object] = {"size": size, "set_source_ms": round(set_source_ms, 2)}
    # interleave the two variants so that thermal/background drift hits both alike
    cached, uncached = [], []
    for _ in range(2):
        cached += time_step(animator.step, frames[: n_frames // 2], warmup)
        uncached += time_step(animator.step_uncached, frames[: n_frames // 2], warmup)
    for name, times in (("cached", cached), ("uncached", uncached)):
        result[name] = {
            "median_ms": round(statistics.median(times), 2),
            "mean_ms": round(statistics.fmean(times), 2),
            "min_ms": round(min(times), 2),
            "fps": round(1000 / statistics.median(times), 2),
            "frames": len(times),
        }
    result["speedup"] = round(result["uncached"]["median_ms"] / result["cached"]["median_ms"], 3)  # type: ignore[index]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10, help="timed frames per variant (default 10)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--out", type=Path, default=Path("results/step_latency.json"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    report: dict[str, object] = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpu": platform.processor() or platform.machine(),
        "models": {},
    }
    with torch.inference_mode():
        for config in (fomm.preset("vox-256"), fomm.preset("tiny-256")):
            r = bench(config, args.frames, args.warmup, device)
            report["models"][config.name] = r  # type: ignore[index]
            print(
                f"{config.name:10s} {r['size']}px  cached {r['cached']['median_ms']:8.1f} ms/frame  "  # type: ignore[index]
                f"uncached {r['uncached']['median_ms']:8.1f} ms/frame  speedup x{r['speedup']}  "  # type: ignore[index]
                f"(set_source {r['set_source_ms']} ms, {report['threads']} threads)",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
