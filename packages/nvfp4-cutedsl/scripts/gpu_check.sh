#!/usr/bin/env bash
# Build-free GPU check of the cutedsl backend: install, correctness sweep, conformance, benchmark.
# Run from the repository root on the GPU machine, after the DSL is on PYTHONPATH
# (see the workspace's shared/device/README.md: `source .device/cutedsl2/unpack.sh`).
# Each step has its own timeout so a hung kernel cannot eat the whole call; the table prints last.
set -u
OUT=${OUT:-/tmp/cutedsl-out}; mkdir -p "$OUT"; export OUT
export PYTHONUNBUFFERED=1
HERE=packages/nvfp4-cutedsl
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -m pip install -q --no-deps --no-build-isolation ./packages/nvfp4-core ./$HERE > "$OUT/pip.log" 2>&1 || { tail -20 "$OUT/pip.log"; exit 1; }
python3 -c "import nvfp4; print(nvfp4.backends())"
STEPS=${STEPS:-"smoke correct conformance bench"}
for step in $STEPS; do
  case $step in
    smoke) timeout ${T_SMOKE:-60} python3 $HERE/scripts/gpu_check.py smoke > "$OUT/smoke.txt" 2>&1; rc=$?; echo "smoke rc=$rc";
           grep -E '^(PASS|FAIL|SKIP|correctness)' "$OUT/smoke.txt"; [ $rc = 0 ] || { tail -30 "$OUT/smoke.txt"; exit 1; } ;;
    correct-regs) timeout ${T_CORRECT:-150} python3 $HERE/scripts/gpu_check.py correct-regs > "$OUT/correct-regs.txt" 2>&1;
             echo "correct-regs rc=$?"; grep -c '^PASS' "$OUT/correct-regs.txt";
             grep -E '^(FAIL|SKIP|correctness)' "$OUT/correct-regs.txt" | head -20 ;;
    correct) timeout ${T_CORRECT:-150} python3 $HERE/scripts/gpu_check.py correct > "$OUT/correct.txt" 2>&1; echo "correct rc=$?";
             grep -c '^PASS' "$OUT/correct.txt"; grep -E '^(FAIL|SKIP|correctness)' "$OUT/correct.txt" | head -20 ;;
    conformance) timeout ${T_CONF:-200} python3 -m pytest -q -p no:cacheprovider $HERE/tests ${CONF_K:+-k "$CONF_K"} > "$OUT/pytest.txt" 2>&1;
                 echo "pytest rc=$?"; grep -E '^(FAILED|ERROR)' "$OUT/pytest.txt" | head -10; tail -3 "$OUT/pytest.txt" ;;
    sweep) timeout ${T_SWEEP:-200} python3 $HERE/scripts/gpu_check.py sweep > "$OUT/sweep.txt" 2>&1; echo "sweep rc=$?";
           grep -E '^sweep' "$OUT/sweep.txt" ;;
    sweep-mid) timeout ${T_SWEEP:-400} python3 $HERE/scripts/gpu_check.py sweep-mid > "$OUT/sweep-mid.txt" 2>&1;
           echo "sweep-mid rc=$?"; grep -E '^sweep' "$OUT/sweep-mid.txt" ;;
    bench) timeout ${T_BENCH:-200} python3 $HERE/scripts/gpu_check.py bench > "$OUT/bench.txt" 2>&1; echo "bench rc=$?";
           grep -E 'BENCH-FAIL|compiled' "$OUT/bench.txt" | head -8; sed -n '/^| N x K/,$p' "$OUT/bench.txt" ;;
  esac
done
