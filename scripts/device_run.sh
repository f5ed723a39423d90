#!/usr/bin/env bash
# One-shot GPU checks on a lent device machine (see DEVELOPERS.md): parity tests on CUDA, CPU<->CUDA parity
# of the full vox-256 network, latency of the cached and uncached steps. Results go to $OUT.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD || exit 1
export PYTHONUNBUFFERED=1 FOMM_FIXTURES=$PWD/.devshare/official
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
FOMM_TEST_DEVICE=cuda python3 -m pytest -q -p no:cacheprovider tests/fomm/test_parity.py tests/fomm/test_numerics.py \
  tests/fomm/test_animator.py 2>&1 | tail -n 15 | tee "$OUT/pytest_cuda.txt"
python3 scripts/gpu_check.py --out "$OUT/gpu_check.json"
python3 benchmarks/step_latency.py --device cuda --frames 40 --out "$OUT/step_latency_cuda.json"
