#!/usr/bin/env bash
# The lead's device calls: install every package, prove it on the GPU, time `nvfp4 tune`,
# run the real-model example and the benchmark sweep. Logs and results go to $OUT.
#   bash scripts/gpu_validate.sh [stash] install tests tune example bench [rounds] [microbench] [microbench-ab]
# Carry: .device/wheels (CUTLASS headers) for install; .device/cutedsl2 after a stash call for
# CuTe DSL (../shared/device/README.md); .whl (safetensors + the bf16 MiniLM) for example; .device/mb for a
# microbench built on the CPU machine.
# Env: TEST_DIRS (tests: the directories to run), CUTEDSL_K and CUTEDSL_TIMEOUT (tests: the cutedsl subset and its
# limit in s), BENCH_MINUTES,
# BENCH_NAME and BENCH_ARGS (bench: more options, e.g. "--bias --m 1,16,64"), MICROBENCH_MODE (microbench),
# MICROBENCH_B and MICROBENCH_MODES (microbench-ab: the other builds' folders, the modes to compare), ROUNDS,
# ROUNDS_ARGS, ROUNDS_ALT and ROUNDS_TIMEOUT (rounds: the points, more options, another version of a Python backend to
# time too, the limit a point in s).
# Each step logs under $OUT as it goes; do not pipe the script through tail (a call cut off at its limit then
# returns no output; 2026-12-07).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 CMAKE_BUILD_PARALLEL_LEVEL=16 NVFP4_CUTLASS_ALL_TACTICS=ON
ROOT=$(pwd)
if [ -f .device/cutedsl2/unpack.sh ] && [ -d /tmp/stash ]; then source .device/cutedsl2/unpack.sh; fi
[ -d /tmp/cute/nvidia_cutlass_dsl ] && export PYTHONPATH=/tmp/cute/nvidia_cutlass_dsl/dsl_packages:/tmp/cute${PYTHONPATH:+:$PYTHONPATH}
step() { echo "== $1 ($(date +%T))"; }
for what in "$@"; do case $what in
stash)
  # Call 1 of the CuTe DSL's two (../shared/device/README.md): carry .device/cutedsl; part 1 waits in /tmp/stash
  # for a later call that carries .device/cutedsl2 (the two together are over one call's carry limit).
  step stash; mkdir -p /tmp/stash && cp -r .device/cutedsl/. /tmp/stash/ && echo "stashed: $(ls /tmp/stash | tr '\n' ' ')";;
install)
  step install; t0=$(date +%s)
  # A warm machine keeps what an earlier call installed; reinstall each package whose files changed since (a
  # skipped install once timed an old nvfp4-core against a fixed checkout: 2026-12-07).
  mkdir -p /tmp/nvfp4-installed; todo=()
  for pkg in nvfp4-core nvfp4-cutlass nvfp4-cublaslt nvfp4-cutedsl; do
    sum=$(cd packages/$pkg && find . -type f -not -path "./build/*" -not -path "./results/*" -not -name "*.pyc" -print0 | sort -z \
          | xargs -0 sha1sum | sha1sum | cut -c1-16)
    if [ "$(cat /tmp/nvfp4-installed/$pkg 2>/dev/null)" != "$sum" ]; then todo+=("./packages/$pkg"); fi
    echo "$sum" > /tmp/nvfp4-installed/$pkg.new
  done
  if [ ${#todo[@]} -eq 0 ]; then echo "installed and unchanged on this warm machine"; (cd /tmp && nvfp4 backends); continue; fi
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
  python3 -m pip install -q --no-deps .device/wheels/*.whl > "$OUT/install.log" 2>&1
  echo "installing: ${todo[*]}"
  python3 -m pip install --no-deps --no-build-isolation --force-reinstall "${todo[@]}" >> "$OUT/install.log" 2>&1 \
    || { grep -iE "error" "$OUT/install.log" | head -30; exit 1; }
  for f in /tmp/nvfp4-installed/*.new; do mv "$f" "${f%.new}"; done
  echo "install: $(( $(date +%s) - t0 )) s"; (cd /tmp && nvfp4 backends) | tee "$OUT/backends.txt";;
tests)
  step tests; cd /tmp
  : > "$OUT/pytest.log"
  # One run a directory: the packages' test modules share basenames (test_cpu.py, ...).
  # TEST_DIRS picks a subset: the four together ran past one call's 600 s on the H100 (cutlass's alone: 398 s).
  for d in ${TEST_DIRS:-packages/nvfp4-cutlass/tests packages/nvfp4-cublaslt/tests tests packages/nvfp4-core/tests/test_gemm.py}; do
    python3 -m pytest -q -ra -p no:cacheprovider "$ROOT/$d" >> "$OUT/pytest.log" 2>&1; echo "pytest $d rc=$?"
  done
  # CuTe DSL compiles each (tactic, format, dtype, layout) on first use: a subset fits the call. A time limit
  # (CUTEDSL_TIMEOUT s), so that a kernel that never finishes (a cluster's barriers, say) still leaves the log.
  timeout "${CUTEDSL_TIMEOUT:-420}" python3 -m pytest -q -ra -p no:cacheprovider \
    -k "${CUTEDSL_K:-exact_grid or every_tactic or cpu}" "$ROOT"/packages/nvfp4-cutedsl/tests >> "$OUT/pytest.log" 2>&1
  echo "pytest (cutedsl subset) rc=$? (124: past CUTEDSL_TIMEOUT)"
  grep -E "^(FAILED|ERROR)" "$OUT/pytest.log" | head -20; grep -E "(passed|failed)" "$OUT/pytest.log" | tail -3
  cd "$ROOT";;
tune)
  step tune; t0=$(date +%s.%N); cd /tmp
  nvfp4 tune --shapes 8192x8192 --modes weight-only --m 1,2,4,8,16,32,64,128,256,512,1024,2048,4096,8192 \
    --cache "$OUT/tune-8192x8192.json" > "$OUT/tune.txt" 2>"$OUT/tune.err"; rc=$?
  echo "nvfp4 tune 8192x8192 weight-only, 14 M buckets: rc=$rc in $(python3 -c "import time;print(round(time.time()-$t0,1))") s"
  tail -18 "$OUT/tune.txt"; tail -3 "$OUT/tune.err"; cd "$ROOT";;
example)
  step example
  python3 -m pip install -q --no-deps .whl/safetensors-*.whl > /dev/null 2>&1
  python3 examples/real_model/run.py --device cuda --model-dir .whl/minilm-bf16 > "$OUT/example.log" 2>&1
  echo "example rc=$?"; tail -15 "$OUT/example.log";;
bench)
  step bench
  python3 benchmarks/gemm.py --out-dir "$OUT/results" --max-minutes "${BENCH_MINUTES:-5}" ${BENCH_NAME:+--name "$BENCH_NAME"} \
    ${BENCH_ARGS:-} > "$OUT/bench.log" 2>&1
  echo "bench rc=$?"; tail -45 "$OUT/bench.log";;
rounds)
  # The tuner's own measurement of every tactic, repeated in alternating rounds (scripts/tactic_rounds.py), for each
  # "NxK:M" in $ROUNDS (default 8192x8192:256) with $ROUNDS_ARGS (e.g. --backend cutedsl, --match "tile_m=256"):
  # confirms on the installed build what a microbench ranking says. $ROUNDS_ALT (a folder under the checkout
  # holding another version of a Python backend package, e.g. a copy of main's src/nvfp4_cutedsl) times each point
  # again with that folder first on PYTHONPATH, right after the installed version: a Python backend's A/B in one call.
  step rounds; cd /tmp
  for point in ${ROUNDS:-8192x8192:256}; do
    for alt in "" ${ROUNDS_ALT:+"$ROOT/$ROUNDS_ALT"}; do
      f="$OUT/rounds-${point/:/-m}${alt:+-alt}.txt"
      PYTHONPATH=${alt:+$alt:}${PYTHONPATH:-} timeout "${ROUNDS_TIMEOUT:-300}" python3 "$ROOT/scripts/tactic_rounds.py" --shape "${point%%:*}" \
        --m "${point##*:}" ${ROUNDS_ARGS:-} > "$f" 2>&1; echo "rounds $point${alt:+ (ROUNDS_ALT)} rc=$?"; head -12 "$f"
    done
  done; cd "$ROOT";;
microbench)
  # Kernel-level sweep of the cutlass kernels (packages/nvfp4-cutlass/scripts/microbench.cu); MICROBENCH_MODE
  # picks its mode (decode, gemm, wgmma, m1, read, quantize; empty: the full sweep). A binary built from these
  # sources on the CPU machine and carried (packages/nvfp4-cutlass/scripts/build_microbench.sh
  # .device/mb/microbench --xz) saves building it here.
  step microbench; mb=packages/nvfp4-cutlass/scripts/build_microbench.sh
  if [ -f .device/mb/microbench.xz ] && [ "$(cat .device/mb/microbench.xz.sha1 2>/dev/null)" = "$(bash $mb --sources-hash)" ]; then
    xz -dc .device/mb/microbench.xz > /tmp/microbench && chmod +x /tmp/microbench
  else
    [ -f .device/mb/microbench.xz ] && echo "the carried microbench was built from other sources: building this one"
    bash $mb /tmp/microbench
  fi && /tmp/microbench ${MICROBENCH_MODE:-} > "$OUT/microbench.csv"; echo "microbench rc=$?"; head -1 "$OUT/microbench.csv";;
microbench-ab)
  # A/B of microbench builds on one machine: A = .device/mb (built from this checkout's sources) against each build
  # in $MICROBENCH_B (folders, space-separated: other branches' builds, carried too). Each mode in
  # $MICROBENCH_MODES runs A then B, then B then A (machine drift evens out); scripts/microbench_ab.py keeps each
  # build's best configuration a point. The raw CSVs go into one archive ($OUT/mb-csv.tar.xz): a call returns only
  # a few files.
  step microbench-ab; mb=packages/nvfp4-cutlass/scripts
  [ "$(cat .device/mb/microbench.xz.sha1 2>/dev/null)" = "$(bash $mb/build_microbench.sh --sources-hash)" ] \
    || { echo "microbench-ab: .device/mb was not built from this checkout's sources"; exit 1; }
  xz -dc .device/mb/microbench.xz > /tmp/mb_a && chmod +x /tmp/mb_a
  mkdir -p "$OUT/mb-csv"
  for b in ${MICROBENCH_B:-.device/mb_b}; do
    [ -f "$b/microbench.xz" ] || { echo "microbench-ab: no $b/microbench.xz (set MICROBENCH_B)"; exit 1; }
    tag=$(basename "$b"); xz -dc "$b/microbench.xz" > "/tmp/mb_$tag" && chmod +x "/tmp/mb_$tag"
    echo "A: sources $(cat .device/mb/microbench.xz.sha1), $tag: sources $(cat "$b/microbench.xz.sha1" 2>/dev/null)"
    for mode in ${MICROBENCH_MODES:-wgmma}; do
      csv="$OUT/mb-csv/$mode-$tag"
      /tmp/mb_a "$mode" > "$csv-A-r1.csv"; "/tmp/mb_$tag" "$mode" > "$csv-B-r1.csv"
      "/tmp/mb_$tag" "$mode" > "$csv-B-r2.csv"; /tmp/mb_a "$mode" > "$csv-A-r2.csv"
      python3 $mb/microbench_ab.py "$csv-A-r1.csv,$csv-A-r2.csv" "$csv-B-r1.csv,$csv-B-r2.csv" --names "A,$tag" \
        > "$OUT/mb-$mode-A-$tag.txt"
      echo "microbench-ab $mode A/$tag rc=$?"; cat "$OUT/mb-$mode-A-$tag.txt"
    done
  done
  tar -C "$OUT" -cJf "$OUT/mb-csv.tar.xz" mb-csv && rm -r "$OUT/mb-csv";;
*) echo "unknown step $what"; exit 2;;
esac; done
