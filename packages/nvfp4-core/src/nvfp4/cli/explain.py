"""``nvfp4 explain``: which backend and tactic a GEMM of a given shape runs, and every candidate's time."""

from __future__ import annotations

import torch

from ..explain import explain
from ..problem import FORMAT_DTYPES
from ..quantize import quantize
from ..tuning import autotune
from .common import MODES, OUT_DTYPES, best_device, parse_shapes


def add_parser(sub):
    p = sub.add_parser("explain", help="show the backend/tactic chosen for one GEMM shape, and why")
    p.add_argument("--shape", default="4096x4096", help="N x K of the weight")
    p.add_argument("--m", type=int, default=16, help="rows of the activation")
    p.add_argument("--mode", default="weight-only", choices=sorted(MODES))
    p.add_argument("--out-dtype", default="bf16", choices=sorted(OUT_DTYPES))
    p.add_argument("--layout", default="linear", choices=("linear", "swizzled"))
    p.add_argument("--bias", action="store_true")
    p.add_argument("--backend", default="auto")
    p.add_argument("--cache", default=None, help="tuning cache to read and update")
    p.add_argument("--device", default=None)
    return p


def run(args) -> int:
    ((n, k),) = parse_shapes(args.shape)
    if args.m < 1:
        raise ValueError(f"--m must be >= 1, got {args.m}")
    device = best_device(args.device)
    w = quantize(torch.randn(n, k, device=device), layout=args.layout)
    x = torch.randn(args.m, k, device=device)
    fmt = MODES[args.mode]
    a = quantize(x, layout=args.layout) if fmt == "nvfp4" else x.to(FORMAT_DTYPES[fmt])
    bias = torch.randn(n, device=device) if args.bias else None
    with autotune(cache=args.cache):
        d = explain(a, w, bias=bias, out_dtype=OUT_DTYPES[args.out_dtype], backend=args.backend)
    print(d)
    return 0
