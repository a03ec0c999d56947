#!/usr/bin/env python3
"""NVFP4 GEMM benchmark: every installed backend and auto against torch BF16 and the card's floor.

The implementation is ``nvfp4.bench`` (also ``nvfp4 bench``); this entry point
only writes to ``benchmarks/results/`` by default.

    python benchmarks/gemm.py                       # full Llama-3 sweep on the GPU
    python benchmarks/gemm.py --tiny --device cpu   # CI smoke run, seconds
    python benchmarks/gemm.py --shapes 8192x8192 --m 1,16 --modes w4a4 --backends cutlass
"""

import sys
from pathlib import Path

from nvfp4.bench import main

if __name__ == "__main__":
    sys.exit(main(default_out_dir=Path(__file__).resolve().parent / "results", prog="benchmarks/gemm.py"))
