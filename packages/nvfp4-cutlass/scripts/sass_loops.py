"""Opcode counts of the loops in a kernel's SASS, on the CPU machine (no GPU, no cuobjdump needed).

The decode kernels are instruction-bound (Nsight Compute, results/h100-2026-12-07-ncu-m1-m4-m16.txt), so the count
of a main loop's instructions per packed weight word predicts much of a change before any device time is spent.

    nvcc -arch=sm_90a -O3 -std=c++17 --expt-relaxed-constexpr -I<cutlass include> -Icsrc -cubin \\
        csrc/gemm_sm90_bf16.cu -o /tmp/bf16.cubin
    python scripts/sass_loops.py /tmp/bf16.cubin gemm_gemv_kernelILi0ELi8ELi1ELi4E

The argument may also be a .ptx (assembled with ptxas, e.g. a CuTe DSL kernel's PTX from ``compiled.artifacts.PTX``)
or a disassembly already written to a text file. nvdisasm: $NVDISASM, the CUDA toolkit's, or the PyPI wheel
``nvidia-cuda-nvdisasm`` (``pip download --no-deps nvidia-cuda-nvdisasm``, unzip, ``nvidia/cu13/bin/nvdisasm``).
A loop is a backward branch and its target; loops shorter than ``--min`` instructions are not listed.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile


def _nvdisasm() -> str:
    for cand in (os.environ.get("NVDISASM"), shutil.which("nvdisasm"), "/usr/local/cuda/bin/nvdisasm"):
        if cand and os.path.exists(cand):
            return cand
    sys.exit("sass_loops.py: nvdisasm not found: set NVDISASM (see the module docstring for the PyPI wheel)")


def disassemble(path: str) -> str:
    if path.endswith((".sass", ".txt")):
        with open(path) as f:
            return f.read()
    if path.endswith(".ptx"):
        ptxas = shutil.which("ptxas") or "/usr/local/cuda/bin/ptxas"
        cubin = tempfile.mktemp(suffix=".cubin")
        subprocess.run([ptxas, "-arch=sm_90a", "-O3", path, "-o", cubin], check=True)
        path = cubin
    return subprocess.run([_nvdisasm(), path], check=True, capture_output=True, text=True).stdout


def loops(sass: str, pattern: str, min_len: int):
    """(function name, its instruction count, [(label, length, Counter of opcodes)]) per matching function."""
    parts = re.split(r"\n//-+ (\.text\.\S+) -+\n", sass)
    for name, body in zip(parts[1::2], parts[2::2]):
        if pattern not in name:
            continue
        instrs, labels = [], {}
        for line in body.split("\n"):
            m = re.match(r"\s*(\.L_x_\d+):", line)
            if m:
                labels[m.group(1)] = len(instrs)
            m = re.match(r"\s*/\*[0-9a-f]{4,}\*/\s+(.*?);", line)
            if m:
                ins = m.group(1).strip()
                instrs.append((re.sub(r"^@!?U?P\w+\s+", "", ins).split()[0].split(".")[0], ins))
        found = []
        for i, (op, ins) in enumerate(instrs):
            target = re.search(r"(\.L_x_\d+)", ins) if op == "BRA" else None
            start = labels.get(target.group(1)) if target else None
            if start is not None and start < i and i + 1 - start >= min_len:
                found.append((target.group(1), i + 1 - start, collections.Counter(o for o, _ in instrs[start:i + 1])))
        yield name, len(instrs), found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binary", help=".cubin, .ptx, or a saved nvdisasm listing (.sass/.txt)")
    ap.add_argument("pattern", help="a substring of the (mangled) kernel name")
    ap.add_argument("--min", type=int, default=100, help="shortest loop to list (default 100 instructions)")
    args = ap.parse_args()
    hits = 0
    for name, total, found in loops(disassemble(args.binary), args.pattern, args.min):
        hits += 1
        print(f"{name}: {total} instructions")
        for label, length, ops in found:
            print(f"  loop {label}: {length} instructions: " + ", ".join(f"{o} {n}" for o, n in ops.most_common()))
    if not hits:
        sys.exit(f"sass_loops.py: no function matches {args.pattern!r}")


if __name__ == "__main__":
    main()
