#!/usr/bin/env bash
# One-shot GPU check of the live loop (see scripts/device_run.sh for the model checks): FPS and
# glass-to-glass latency of vox-256 and tiny-256 with the torch CUDA backend. Results go to $OUT.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD || exit 1
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 benchmarks/live_fps.py --device cuda --seconds 15 --out "$OUT/live_fps_cuda.json"
