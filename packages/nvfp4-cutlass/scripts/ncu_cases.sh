#!/usr/bin/env bash
# Nsight Compute reports of single microbench cases, side by side: each case is timed without the profiler
# first (CUDA events, L2 flushed, median), then profiled once (`--set full`, per-opcode instruction counts).
#   bash packages/nvfp4-cutlass/scripts/ncu_cases.sh MICROBENCH NAME="N K M tile_m warps unroll stages kernel split [warp_rows]" ...
# Writes $OUT/ncu-NAME.txt per case (with the stall reasons, which --set full does not print) and prints the timings and each report's headline figures.
set -uo pipefail
mb=${1:?usage: ncu_cases.sh MICROBENCH NAME=\"ARGS\" ...}; shift
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export MICROBENCH_NO_CHECK=1  # the host check runs every configuration: not what is profiled
for c in "$@"; do
  name=${c%%=*}; args=${c#*=}
  echo "$name ($args): $($mb $args)"
done
# the stall reasons per issued instruction (the names the H200 reports of 2026-11-30/12-01 printed)
stalls=""
for r in barrier branch_resolving dispatch_stall drain gmma imc_miss lg_throttle long_scoreboard math_pipe_throttle \
         membar mio_throttle misc no_instruction not_selected selected short_scoreboard sleeping tex_throttle wait; do
  stalls+=",smsp__average_warps_issue_stalled_${r}_per_issue_active.ratio"
done
for c in "$@"; do
  name=${c%%=*}; args=${c#*=}
  # -c 1 with the kernel filter: the first GEMM launch of the case (the memset flushes are not profiled)
  ncu --set full --import-source no -k regex:gemm_ -c 1 --print-metric-instances details \
    --metrics "sass__inst_executed_per_opcode,smsp__inst_executed.sum$stalls" "$mb" $args > "$OUT/ncu-$name.txt" 2>&1
  echo "== $name"
  grep -E "^ +(Duration|DRAM Throughput|Executed Instructions|Issue Slots Busy|Registers Per Thread|Achieved Active Warps Per SM|Eligible Warps Per Scheduler|No Eligible) " \
    "$OUT/ncu-$name.txt" | sed 's/  */ /g'
done
