"""GPU checks in one run (for a lent CUDA machine): CPU <-> CUDA parity of the full vox-256 network
(fp32 with TF32 off, and fp16/bf16 autocast for reference) and cached vs uncached step latency.

    python scripts/gpu_check.py --out results/gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import fomm


def animate(model: fomm.Fomm, source: torch.Tensor, driving: torch.Tensor) -> tuple[torch.Tensor, fomm.Keypoints]:
    animator = fomm.Animator(model)
    animator.set_source(source)
    out = animator.step(driving)
    return out, animator.kp_source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("results/gpu_check.json"))
    args = parser.parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    torch.manual_seed(0)
    config = fomm.preset("vox-256")
    cpu_model = fomm.build_fomm(config)
    with torch.no_grad():  # non-trivial jacobians and BN statistics
        cpu_model.kp_detector.jacobian.weight.normal_(0, 1e-3)
        for m in cpu_model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
    gpu_model = fomm.build_fomm(config)
    gpu_model.load_state_dict(cpu_model.state_dict())
    gpu_model = gpu_model.to(dev).eval()
    g = torch.Generator().manual_seed(1)
    source, driving = torch.rand(1, 3, 256, 256, generator=g), torch.rand(4, 3, 256, 256, generator=g)
    ref, kp_ref = animate(cpu_model, source, driving)
    report: dict[str, object] = {"device": torch.cuda.get_device_name(dev), "torch": torch.__version__}
    out, kp = animate(gpu_model, source.to(dev), driving.to(dev))
    report["fp32_max_abs_prediction"] = float((out.cpu() - ref).abs().max())
    report["fp32_max_abs_kp_value"] = float((kp.value.cpu() - kp_ref.value).abs().max())
    torch.backends.cudnn.allow_tf32 = True  # torch's default for convolutions
    out, _ = animate(gpu_model, source.to(dev), driving.to(dev))
    report["tf32_conv_max_abs_prediction"] = float((out.cpu() - ref).abs().max())
    torch.backends.cudnn.allow_tf32 = False
    for dtype in (torch.float16, torch.bfloat16):
        with torch.autocast("cuda", dtype=dtype):
            out, _ = animate(gpu_model, source.to(dev), driving.to(dev))
        report[f"autocast_{str(dtype).removeprefix('torch.')}_max_abs_prediction"] = float(
            (out.float().cpu() - ref).abs().max()
        )
    # latency, batch 1
    animator = fomm.Animator(gpu_model)
    animator.set_source(source.to(dev))
    frame = driving[:1].to(dev)
    for name, step in (("cached", animator.step), ("uncached", animator.step_uncached)):
        for _ in range(10):
            step(frame)
        torch.cuda.synchronize()
        times = []
        for _ in range(100):
            t0 = time.perf_counter()
            step(frame)
            torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        report[f"{name}_median_ms"] = round(times[len(times) // 2], 3)
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
