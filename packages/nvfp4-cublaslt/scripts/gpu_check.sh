#!/usr/bin/env bash
# On the GPU machine (full CUDA toolkit, no network): build and install nvfp4-core and nvfp4-cublaslt,
# run the tests (conformance suite included), then the benchmarks. Logs and JSON go to $OUT (or
# /tmp/nvfp4-cublaslt-out); the short table is printed last.
set -uo pipefail
cd "$(dirname "$0")/../../.." || exit 1  # the repository root
OUT="${OUT:-/tmp/nvfp4-cublaslt-out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-16}"
PY="${PYTHON:-python3}"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
t0=$(date +%s)
if ! "$PY" -m pip install --no-deps --no-build-isolation -v ./packages/nvfp4-core ./packages/nvfp4-cublaslt \
    >"$OUT/install.log" 2>&1; then
  tail -40 "$OUT/install.log"
  echo "BUILD FAILED"
  exit 1
fi
grep -E "cublasLt.h from|CUDA architectures" "$OUT/install.log"
echo "build+install: $(( $(date +%s) - t0 )) s"

t0=$(date +%s)
"$PY" -m pytest packages/nvfp4-cublaslt/tests -q -p no:cacheprovider --maxfail=20 -rs --durations=8 >"$OUT/pytest.log" 2>&1
rc_tests=$?
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/pytest.log" | tail -25
grep -E "^E  " "$OUT/pytest.log" | head -20
echo "tests: rc=$rc_tests, $(( $(date +%s) - t0 )) s"

"$PY" packages/nvfp4-cublaslt/scripts/bench.py --json "$OUT/cublaslt_bench.json" ${BENCH_ARGS:-} \
  2>"$OUT/bench_progress.log" | tee "$OUT/bench.log"
rc_bench=${PIPESTATUS[0]}
[ "$rc_bench" -eq 0 ] || tail -20 "$OUT/bench_progress.log"
echo "tests rc=$rc_tests bench rc=$rc_bench"
exit $(( rc_tests || rc_bench ))
