#!/usr/bin/env bash
# One device call: install every package, run every test suite on the GPU, time `nvfp4 tune`,
# then the benchmark sweep. Logs go to $OUT (the device tool brings them back).
#   carry: .device/wheels (CUTLASS headers), .device/cutedsl2 (CuTe DSL, after the stash call)
# Usage: bash scripts/gpu_validate.sh [tests|tune|bench|all]...
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 CMAKE_BUILD_PARALLEL_LEVEL=16
what=${*:-all}
if [ -f .device/cutedsl2/unpack.sh ] && [ -d /tmp/stash ]; then source .device/cutedsl2/unpack.sh; fi
[ -d /tmp/cute/nvidia_cutlass_dsl ] && export PYTHONPATH=/tmp/cute/nvidia_cutlass_dsl/dsl_packages:/tmp/cute${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
if ! python3 -c "import nvfp4_cutlass._native" 2>/dev/null; then
  t0=$(date +%s)
  python3 -m pip install -q --no-deps .device/wheels/*.whl 2>&1 | tail -2
  python3 -m pip install -q --no-deps --no-build-isolation ./packages/nvfp4-core ./packages/nvfp4-cutlass \
    ./packages/nvfp4-cublaslt ./packages/nvfp4-cutedsl ./examples/nvfp4-example-backend > "$OUT/install.log" 2>&1 \
    || { tail -40 "$OUT/install.log"; exit 1; }
  echo "install: $(( $(date +%s) - t0 )) s"
fi
nvfp4 backends | tee "$OUT/backends.txt"
case " $what " in *" tests "*|*" all "*)
  python3 -m pytest -q -ra -p no:cacheprovider packages/*/tests tests examples/nvfp4-example-backend/tests \
    > "$OUT/pytest.log" 2>&1; echo "pytest rc=$?"; grep -E "^(FAILED|ERROR)" "$OUT/pytest.log" | head -30
  tail -3 "$OUT/pytest.log";;
esac
case " $what " in *" tune "*|*" all "*)
  t0=$(date +%s.%N)
  nvfp4 tune --shapes 8192x8192 --modes weight-only --m 1,2,4,8,16,32,64,128,256,512,1024,2048,4096,8192 \
    --cache "$OUT/tune-8192x8192.json" > "$OUT/tune.txt" 2>"$OUT/tune.err"; rc=$?
  echo "nvfp4 tune 8192x8192 over 14 M buckets: rc=$rc, $(python3 -c "import time;print(round(time.time()-$t0,1))") s"
  cat "$OUT/tune.txt" | tail -20;;
esac
case " $what " in *" bench "*|*" all "*)
  python3 benchmarks/gemm.py --out-dir "$OUT/results" --max-minutes "${BENCH_MINUTES:-6}" > "$OUT/bench.log" 2>&1; echo "bench rc=$?"; tail -45 "$OUT/bench.log";;
esac
