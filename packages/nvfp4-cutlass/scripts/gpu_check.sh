#!/usr/bin/env bash
# Build, test and benchmark nvfp4-cutlass on the GPU machine, from the repository root:
#   bash packages/nvfp4-cutlass/scripts/gpu_check.sh
# The build folder (packages/nvfp4-cutlass/build/) stays in the checkout, so a warm machine rebuilds only
# what changed. Logs go to $OUT (or /tmp); the benchmark table is printed last.
set -euo pipefail
OUT=${OUT:-/tmp/nvfp4-cutlass-out}
mkdir -p "$OUT"
export CMAKE_BUILD_PARALLEL_LEVEL=16 NVFP4_CUTLASS_ALL_TACTICS=${NVFP4_CUTLASS_ALL_TACTICS:-ON}
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -m pip install -q --no-deps .device/wheels/*.whl > "$OUT/pip.log" 2>&1
python3 -c "import scikit_build_core, nanobind, sys; print(sys.executable, scikit_build_core.__version__, nanobind.__version__)" || { which -a python3 pip; python3 -m pip list 2>/dev/null | grep -i -E "scikit|nanobind|cmake"; }
start=$(date +%s)
if ! python3 -m pip install -v --no-deps --no-build-isolation ./packages/nvfp4-core ./packages/nvfp4-cutlass \
      > "$OUT/build.log" 2>&1; then
  grep -E "error|Error" "$OUT/build.log" | head -40; echo "BUILD FAILED"; exit 1
fi
echo "build+install: $(( $(date +%s) - start )) s"
grep -E "spill|registers" "$OUT/build.log" | sort | uniq -c | sort -rn | head -5 || true
cd /tmp  # import the installed packages, not the source tree
set +e
python3 -m pytest -q -x -p no:cacheprovider "$OLDPWD/packages/nvfp4-cutlass/tests" ${PYTEST_ARGS:-} \
  > "$OUT/tests.log" 2>&1
rc=$?
set -e
tail -25 "$OUT/tests.log"
echo "pytest rc=$rc"
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  python3 "$OLDPWD/packages/nvfp4-cutlass/scripts/bench.py" 2>&1 | tee "$OUT/bench.log" | tail -40
fi
exit $rc
