"""Compare two builds of scripts/microbench.cu: per (shape, M), the best configuration of each and A/B.

    python microbench_ab.py A_r1.csv,A_r2.csv B_r1.csv,B_r2.csv [--names main,branch]

Each argument is one build's CSVs (rounds, comma-separated); a point's time is the build's fastest configuration
over its rounds, which is what the tuner would pick. Prints one line a point and the geomean of A/B over the
points both builds measured (> 1: B is faster). A build whose host check found mismatches is reported and fails
the comparison: timing a wrong kernel says nothing.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path


def read_rounds(paths: list[Path]) -> tuple[dict[tuple[str, int], tuple[float, str]], list[str]]:
    """Best (us, 'config skN') per (shape, M) over the rounds, and the check lines of the CSVs."""
    best: dict[tuple[str, int], tuple[float, str]] = {}
    checks = []
    for path in paths:
        lines = path.read_text().splitlines()
        checks += [line for line in lines if line.startswith("check:")]
        for row in csv.DictReader(line for line in lines if not line.startswith("check:")):
            key = (row["shape"], int(row["M"]))
            us = float(row["us"])
            if key not in best or us < best[key][0]:
                best[key] = (us, f"{row['config']} sk{row['split']}")
    return best, checks


def compare(a: dict, b: dict, names: tuple[str, str]) -> tuple[list[str], float | None]:
    lines, ratios = [], []
    for key in sorted(set(a) | set(b)):
        shape, m = key
        if key not in a or key not in b:
            lines.append(f"{shape:12s} M={m:<5d} only in {names[0] if key in a else names[1]}")
            continue
        ratio = a[key][0] / b[key][0]
        ratios.append(ratio)
        lines.append(f"{shape:12s} M={m:<5d} {names[0]} {a[key][0]:8.1f} us ({a[key][1]})  "
                     f"{names[1]} {b[key][0]:8.1f} us ({b[key][1]})  {ratio:.3f}x")
    geomean = math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else None
    return lines, geomean


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="build A's CSVs, comma-separated")
    ap.add_argument("b", help="build B's CSVs, comma-separated")
    ap.add_argument("--names", default="A,B", help="the two builds' names (default: A,B)")
    args = ap.parse_args(argv)
    names = tuple(args.names.split(","))
    if len(names) != 2:
        ap.error(f"--names: two names separated by a comma, got {args.names!r}")
    builds = []
    for name, spec in zip(names, (args.a, args.b)):
        paths = [Path(p) for p in spec.split(",") if p]
        missing = [str(p) for p in paths if not p.is_file()]
        if not paths or missing:
            ap.error(f"{name}: no such CSV: {', '.join(missing) or spec!r}")
        best, checks = read_rounds(paths)
        bad = [c for c in checks if not c.startswith("check: 0 mismatches")]
        if bad or not checks:
            print(f"{name}: host check failed or missing: {bad or 'no check line'}", file=sys.stderr)
            return 1
        builds.append(best)
    lines, geomean = compare(builds[0], builds[1], names)
    print("\n".join(lines))
    print(f"geomean {names[0]}/{names[1]} " + (f"{geomean:.3f}" if geomean else "- (no common point)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
