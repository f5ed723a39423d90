"""Which reduced precisions this machine computes natively.

bf16 autocast on a CPU is only fast where oneDNN has bf16 kernels (AVX512 cores, AVX512-BF16, AMX). On a CPU
with AVX2 only, PyTorch falls back to slow paths: on a 2-core AVX2 EPYC a ``demo-256`` training step took over
40 s with bf16 autocast against 6 s in fp32. Training and the live tool warn when asked for bf16 there.
"""

from __future__ import annotations

import torch


def _native_bf16() -> bool | None:
    """oneDNN's own answer (``None``: this PyTorch build cannot tell)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return None


def slow_cpu_bf16() -> str | None:
    """Why bf16 autocast would be slow on this CPU, or ``None`` when it is native (or cannot be told)."""
    if _native_bf16() in (True, None):
        return None
    capability = torch.backends.cpu.get_cpu_capability()
    return f"this CPU ({capability}) has no bf16 kernels, so bf16 autocast is emulated and far slower than fp32"
