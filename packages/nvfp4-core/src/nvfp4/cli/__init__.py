"""The ``nvfp4`` command line: one module a subcommand, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand modules, in the order ``nvfp4 --help`` lists them.
COMMANDS = ("backends", "demo", "tune", "explain", "quantize", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nvfp4", description="NVFP4 GEMM: backends, demo, tuning and tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (ValueError, TypeError, RuntimeError) as exc:
        print(f"nvfp4 {args.command}: error: {exc}", file=sys.stderr)
        return 2
