#!/usr/bin/env bash
# One-shot GPU check of the fast path on a lent device machine (scripts/gpu_check_fast.py: Triton warp kernels vs
# the reference, per-frame step of vox-256 and the demo model in every precision/graph variant, ONNX Runtime and
# TensorRT where they run, live-loop glass-to-glass), then the gpu-marked tests of the fast path. Results go to $OUT.
# The machine's own torch and triton are used; .whl/ (optional) carries the project's other wheels, installed as in
# scripts/device_run.sh. Knobs: SECTIONS and VARIANTS (gpu_check_fast's --sections, --variants), TESTS (pytest paths; "none" skips them),
# TAG (suffix of the output names), CHECK_S / TESTS_S (timeouts).
# TensorRT-RTX (its library, 234 MB, is over one call's 64 MiB): .trtA/ carries the first part of the xz-compressed
# libtensorrt_rtx.so.1 to $SCRATCH/trtparts on the first call; .trtB/ the rest, the ONNX parser, the cp312 bindings
# wheel and the pure-Python packages on the next call (the machine still warm), which unpacks them into $SCRATCH/trt.
# SCRATCH: the device machine's temporary folder ($TMPDIR, else /tmp); it outlives a call while the machine is warm.
set -u
SCRATCH=${TMPDIR:-/tmp}
SITE=$PWD
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SCRATCH/site" .whl/*.whl \
    || exit 1
  SITE="$SCRATCH/site:$SITE"
fi
if [ -d .trtA ]; then mkdir -p "$SCRATCH"/trtparts && cp .trtA/* "$SCRATCH"/trtparts/; fi
if [ -d .trtB ] && [ -d "$SCRATCH"/trtparts ]; then
  mkdir -p "$SCRATCH"/trt && cp .trtB/*part* "$SCRATCH"/trtparts/ \
    && python3 -m zipfile -e .trtB/*.whl "$SCRATCH"/trt \
    && tar -C "$SCRATCH"/trt -xzf .trtB/pkg.tgz \
    && cat "$SCRATCH"/trtparts/*part* | python3 -c "import lzma,sys,shutil; shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer)" > "$SCRATCH"/trt/tensorrt_rtx_libs/libtensorrt_rtx.so.1 \
    && python3 -c "import lzma,sys,shutil; shutil.copyfileobj(lzma.open('.trtB/onnxparser.xz'), sys.stdout.buffer)" > "$SCRATCH"/trt/tensorrt_rtx_libs/libtensorrt_onnxparser_rtx.so.1 \
    && sha256sum "$SCRATCH"/trt/tensorrt_rtx_libs/libtensorrt_rtx.so.1 | tee "$OUT/trt_sha256.txt"
  SITE="$SCRATCH/trt:$SITE"
fi
export PYTHONPATH=$SITE PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
TAG=${TAG:-}
nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import tensorrt_rtx as t; print('tensorrt_rtx', t.__version__)" 2>&1 | tail -n 2
timeout "${CHECK_S:-390}" python3 scripts/gpu_check_fast.py --sections "${SECTIONS:-kernels,step,onnxruntime,tensorrt,live}" \
  ${VARIANTS:+--variants "$VARIANTS"} --out "$OUT/gpu_check_fast$TAG.json" 2>&1 | tee "$OUT/gpu_check_fast$TAG.log"
TESTS=${TESTS:-tests/fomm/test_triton_warp.py tests/live/test_fast_backend.py tests/fomm/test_devices.py tests/live/test_pipeline_guards.py tests/engines}
if [ "$TESTS" != none ]; then
  # shellcheck disable=SC2086
  timeout "${TESTS_S:-150}" python3 -m pytest -q -p no:cacheprovider -m gpu -rs $TESTS 2>&1 | tail -n 40 | tee "$OUT/pytest_gpu$TAG.txt"
fi
