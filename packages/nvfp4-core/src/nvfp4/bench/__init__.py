"""The benchmark suite behind ``nvfp4 bench`` and ``benchmarks/gemm.py``.

Every installed backend (at its best tactic, found by the tuner) and
``backend="auto"`` against torch's BF16 matmul on pre-dequantized weights and
against the floor of the card (bytes over measured copy bandwidth, FLOPs over
the measured BF16 matmul rate) and the read ceiling (a plain read of the
weight's packed bytes, timed with the contenders), on Llama-3 linear layers,
in one process.

Modules: ``shapes`` (what is swept and the floor arithmetic), ``timing``
(one timing method for every contender, and the two ceilings), ``check``
(the float64 oracle every output is checked against), ``sweep`` (the loop),
``report`` (JSON, markdown, summary lines), ``plot`` (the PNG), ``options``
(the command line both entry points share).
"""

from __future__ import annotations

from .options import add_arguments, config_from_args, main, run_from_args
from .sweep import BenchConfig, run_sweep

__all__ = ["BenchConfig", "add_arguments", "config_from_args", "main", "run_from_args", "run_sweep"]
