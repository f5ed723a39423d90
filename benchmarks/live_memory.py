"""Memory over a long live run: 5,000 frames through the whole loop with a tiny model; RSS at start and end.

The camera is the bundled clip, looped, every frame handed over (no pacing) so the run is as long as
possible in frames; a sink samples the process's resident set size every 250 frames.

    python benchmarks/live_memory.py [--frames 5000] [--out results/live_memory.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import fomm
from fomm.media.assets import DEFAULT_DRIVING
from live.app import run
from live.config import LiveConfig
from live.sinks import NullSink
from live.types import View


def rss_mib() -> float:
    """Resident set size of this process (Linux ``/proc``), MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler(NullSink):
    def __init__(self, every: int) -> None:
        super().__init__()
        self.every = every
        self.samples: list[tuple[int, float]] = []

    def send(self, view: View) -> None:
        super().send(view)
        if self.frames == 1 or self.frames % self.every == 0:
            self.samples.append((self.frames, round(rss_mib(), 1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=Path("results/live_memory.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    config = fomm.make_config(
        "tiny-64",
        common={"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
        kp_detector={"block_expansion": 8, "max_features": 32, "num_blocks": 3, "scale_factor": 0.25},
        generator={"block_expansion": 8, "max_features": 32, "num_down_blocks": 2, "num_bottleneck_blocks": 1,
                   "estimate_occlusion_map": True},
        dense_motion={"block_expansion": 8, "max_features": 32, "num_blocks": 3, "scale_factor": 0.25},
        image_size=64,
    )  # fmt: skip
    sampler = RssSampler(every=250)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = fomm.save_checkpoint(Path(tmp) / "tiny.safetensors", fomm.build_fomm(config))
        live = LiveConfig(
            camera=str(DEFAULT_DRIVING),
            checkpoint=checkpoint,
            loop=True,
            realtime=False,
            preview=False,
            remember=False,
            max_frames=args.frames,
        )
        started = time.perf_counter()
        result = run(live, extra_sinks=[sampler])
        seconds = time.perf_counter() - started
    first, last = sampler.samples[0][1], sampler.samples[-1][1]
    warm = next((rss for n, rss in sampler.samples if n >= 500), first)
    report = {
        "frames": result.stats.frames,
        "seconds": round(seconds, 1),
        "rss_mib_first_frame": first,
        "rss_mib_after_500_frames": warm,
        "rss_mib_end": last,
        "growth_after_warmup_mib": round(last - warm, 1),
        "samples": sampler.samples,
    }
    print(
        f"{report['frames']} frames in {report['seconds']} s: RSS {first} MiB at frame 1, {warm} MiB at frame 500, "
        f"{last} MiB at the end ({report['growth_after_warmup_mib']:+} MiB after warm-up)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
