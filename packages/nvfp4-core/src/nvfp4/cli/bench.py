"""``nvfp4 bench``: every backend and auto against torch BF16 and the card's floor (the benchmark suite)."""

from __future__ import annotations

from ..bench.options import DESCRIPTION, add_arguments, run_from_args


def add_parser(sub):
    p = sub.add_parser("bench", help="benchmark every backend and auto against torch BF16 (JSON, markdown, plot)",
                       description=DESCRIPTION)
    add_arguments(p, default_out_dir="nvfp4-bench")
    return p


def run(args) -> int:
    return run_from_args(args)
