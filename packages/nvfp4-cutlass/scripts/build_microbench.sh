#!/usr/bin/env bash
# Build scripts/microbench.cu with every tactic (NVFP4_CUTLASS_ALL_TACTICS), one nvcc a translation unit in
# parallel, so it can be built on the CPU machine and carried (xz'd: ~8 MB) instead of costing device time.
#   bash packages/nvfp4-cutlass/scripts/build_microbench.sh OUT_BINARY [--xz]
#   bash packages/nvfp4-cutlass/scripts/build_microbench.sh --sources-hash   # what OUT.sha1 records
# OUT.sha1 (OUT.xz.sha1 with --xz) holds the hash of the sources it was built from, so a carried binary that no
# longer matches the checkout is not timed as if it did. CUTLASS headers: $CUTLASS_INCLUDE, else the installed
# nvidia-cutlass package, else the wheel in .device/wheels.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# LC_ALL=C: the glob's order follows the locale's collation, and the GPU machine's sorts gemm_sm90_act.inc before
# gemm_sm90.cu, so the same sources hashed differently there (2026-12-07).
sources_hash() { (cd "$here" && export LC_ALL=C && cat csrc/* scripts/microbench.cu | sha1sum | cut -c1-16); }
if [ "${1:-}" = "--sources-hash" ]; then sources_hash; exit 0; fi
out=$(realpath -m "${1:?usage: build_microbench.sh OUT_BINARY [--xz]}")
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[ -x "$nvcc" ] || { echo "build_microbench.sh: nvcc not found (set NVCC or put the CUDA toolkit on PATH)" >&2; exit 1; }
inc=${CUTLASS_INCLUDE:-$(python3 -c "import importlib.util as u,os;s=u.find_spec('cutlass_library');print(os.path.join(s.submodule_search_locations[0],'source','include'))" 2>/dev/null || true)}
if [ ! -d "$inc/cute" ]; then
  whl=$(ls "$here"/../../.device/wheels/nvidia_cutlass-*.whl 2>/dev/null | head -1 || true)
  [ -n "$whl" ] || { echo "build_microbench.sh: no CUTLASS headers (set CUTLASS_INCLUDE, pip install nvidia-cutlass, or run ../shared/device/make-bundles.sh)" >&2; exit 1; }
  tmp=$(mktemp -d); python3 -m zipfile -e "$whl" "$tmp" >/dev/null; inc=$tmp/cutlass_library/source/include
fi
objs=$(mktemp -d); mkdir -p "$(dirname "$out")"
trap 'rm -rf "$objs" ${tmp:-}' EXIT
flags="-arch=sm_90a -O3 -std=c++17 --expt-relaxed-constexpr -DNVFP4_CUTLASS_ALL_TACTICS -I$inc -I$here/csrc"
t0=$(date +%s)
ls "$here"/csrc/gemm_sm90*.cu "$here"/csrc/quantize_sm90.cu "$here"/scripts/microbench.cu \
  | xargs -P "$(nproc)" -I{} sh -c "\"$nvcc\" $flags -c {} -o $objs/\$(basename {}).o"
"$nvcc" -arch=sm_90a "$objs"/*.o -o "$out"
if [ "${2:-}" = "--xz" ]; then xz -T0 -f "$out"; out=$out.xz; fi
sources_hash > "$out.sha1"
echo "built $out in $(( $(date +%s) - t0 )) s"
