"""Live-loop speed on this machine: FPS and glass-to-glass latency for the full vox-256 network, the bundled
demo model's network (demo-256) and the smallest network (tiny-256), in one run.

The camera is the bundled 25 fps talking-head clip paced like a webcam (frames the loop cannot keep up with
are dropped, as with a real camera); output goes to a null sink, so the numbers are the model + framing +
pixel conversion. Weights are random (speed does not depend on them) unless trained checkpoints are given
with ``--checkpoint NAME=PATH`` (repeatable; e.g. the old and the new bundled model in one run).

    python benchmarks/live_fps.py [--seconds 20] [--device cpu] [--dtype fp32|bf16] [--out results/live_fps.json]
    python benchmarks/live_fps.py --presets --checkpoint old=old.safetensors --checkpoint new=new.safetensors
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import threading
from pathlib import Path

import torch

from fomm.media.assets import DEFAULT_DRIVING
from live.app import run
from live.config import LiveConfig
from live.sinks import NullSink


def measure(
    preset: str | None,
    seconds: float,
    device: str,
    *,
    realtime: bool = True,
    checkpoint: Path | None = None,
    dtype: str = "fp32",
) -> dict[str, object]:
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    config = LiveConfig(
        camera=str(DEFAULT_DRIVING),
        model_config=preset,
        checkpoint=checkpoint,
        device=device,
        dtype=dtype,
        preview=False,
        remember=False,
        loop=True,
        realtime=realtime,
    )
    timer.start()
    try:
        result = run(config, stop=stop, extra_sinks=[NullSink()])
    finally:
        timer.cancel()
    summary = result.stats.summary()
    latency = summary["latency_ms"]
    return {
        "fps": summary["fps"],
        "frames": summary["frames"],
        "dropped_frames": summary["dropped_frames"],
        "glass_to_glass_p50_ms": latency["glass_to_glass"]["p50"],
        "glass_to_glass_p95_ms": latency["glass_to_glass"]["p95"],
        "stages_p50_ms": {stage: values["p50"] for stage, values in latency.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per network (default 20)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16"), help="model precision")
    parser.add_argument(
        "--presets",
        nargs="*",
        default=["vox-256", "demo-256", "tiny-256"],
        metavar="PRESET",
        help="networks run with random weights (default vox-256 demo-256 tiny-256; none: only checkpoints)",
    )
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a trained checkpoint to run too, reported as NAME (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=Path("results/live_fps.json"))
    args = parser.parse_args(argv)
    runs: list[tuple[str, str | None, Path | None]] = [(preset, preset, None) for preset in args.presets]
    for item in args.checkpoint:
        name, sep, path = item.partition("=")
        if not sep or not name or not Path(path).is_file():
            parser.error(f"--checkpoint {item!r}: expected NAME=PATH of an existing checkpoint file")
        runs.append((name, None, Path(path)))
    logging.basicConfig(level=logging.WARNING)
    report: dict[str, object] = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.machine(),
        "dtype": args.dtype,
        "camera": "bundled clip, 256x256 at 25 fps, paced like a webcam",
        "networks": {},
    }
    for name, preset, checkpoint in runs:
        options = {"checkpoint": checkpoint, "dtype": args.dtype}
        r = measure(preset, args.seconds, args.device, **options)
        # the same loop with every frame ready at once: what the pipeline could do with a faster camera
        r["uncapped_fps"] = measure(preset, args.seconds / 2, args.device, realtime=False, **options)["fps"]
        if checkpoint is not None:
            r["checkpoint"] = str(checkpoint)
        report["networks"][name] = r  # type: ignore[index]
        print(
            f"{name:9s} {r['fps']:6.2f} fps  glass-to-glass p50 {r['glass_to_glass_p50_ms']:7.1f} ms  "
            f"p95 {r['glass_to_glass_p95_ms']:7.1f} ms  ({r['frames']} frames, {r['dropped_frames']} dropped); "
            f"uncapped {r['uncapped_fps']:6.2f} fps",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
