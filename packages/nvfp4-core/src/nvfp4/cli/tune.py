"""``nvfp4 tune``: measure every backend and tactic for given shapes and M buckets; write the cache."""

from __future__ import annotations

import time

import torch

from ..explain import explain
from ..problem import FORMAT_DTYPES
from ..quantize import quantize
from ..tuning import autotune, m_bucket
from .common import (
    MODES,
    OUT_DTYPES,
    add_problem_args,
    best_device,
    default_cache_path,
    parse_ints,
    parse_modes,
    parse_shapes,
    progress,
)
from .table import show


def add_parser(sub):
    p = sub.add_parser("tune", help="profile backends and tactics for shapes and M buckets; save the choices")
    add_problem_args(p, shapes_default="4096x4096", m_default="1,16,64,256,1024,4096,8192")
    p.add_argument("--cache", default=None, help="tuning cache file (default: $NVFP4_TUNING_CACHE or "
                                                 "~/.cache/nvfp4/tuning.json)")
    p.add_argument("--budget", type=float, default=None, help="seconds of profiling at most")
    return p


def run(args) -> int:
    shapes = parse_shapes(args.shapes)
    ms = sorted({m_bucket(m) for m in parse_ints(args.m, "--m")})
    modes = parse_modes(args.modes)
    device = best_device(args.device)
    cache = default_cache_path() if args.cache is None else args.cache
    problems = [(n, k, m, mode) for n, k in shapes for mode in modes for m in ms]
    rows = []
    t0 = time.perf_counter()
    with autotune(cache=cache, budget_s=args.budget):
        weights = {}
        for n, k, m, mode in progress(problems, "tuning"):
            if (n, k) not in weights:
                weights.clear()  # one weight at a time on the device
                weights[(n, k)] = quantize(torch.randn(n, k, device=device), layout=args.layout)
            w = weights[(n, k)]
            x = torch.randn(m, k, device=device)
            a = quantize(x, layout=args.layout) if MODES[mode] == "nvfp4" else x.to(FORMAT_DTYPES[MODES[mode]])
            bias = torch.randn(n, device=device) if args.bias else None
            d = explain(a, w, bias=bias, out_dtype=OUT_DTYPES[args.out_dtype])
            failed = sum(1 for c in d.candidates for r in c.results if r.time_ms is None)
            rows.append((f"{n}x{k}", mode, m, d.backend, _short(d.tactic),
                         "-" if d.time_ms is None else f"{d.time_ms * 1e3:.1f}", d.source, failed))
    elapsed = time.perf_counter() - t0
    show(("N x K", "mode", "M bucket", "backend", "tactic", "time (us)", "source", "failed tactics"), rows,
         title=f"nvfp4 tune on {device} ({elapsed:.1f} s)")
    print(f"tuning cache written to {cache}")
    return 0


def _short(tactic) -> str:
    from ..backend import describe_tactic

    return describe_tactic(tactic)
