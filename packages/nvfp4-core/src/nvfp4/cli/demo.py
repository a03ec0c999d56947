"""``nvfp4 demo``: every available backend and auto on one random problem: error and time."""

from __future__ import annotations

import statistics
import time

import torch

from .. import registry
from ..explain import explain
from ..gemm import gemm
from ..problem import FORMAT_DTYPES
from ..quantize import quantize
from ..reference import gemm_ref_f64
from .common import MODES, OUT_DTYPES, best_device, parse_shapes
from .table import show


def add_parser(sub):
    p = sub.add_parser("demo", help="quantize a random weight and activation; run every backend and auto")
    p.add_argument("--shape", default=None, help="N x K of the weight (default 4096x4096 on GPU, 512x512 on CPU)")
    p.add_argument("--m", type=int, default=16, help="rows of the activation")
    p.add_argument("--modes", default="weight-only,w4a4")
    p.add_argument("--out-dtype", default="bf16", choices=sorted(OUT_DTYPES))
    p.add_argument("--device", default=None)
    return p


def _time(fn, device, reps=20) -> float:
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        times = []
        for _ in range(reps):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e))
        return statistics.median(times) * 1e3
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times)


def run(args) -> int:
    device = best_device(args.device)
    shape = args.shape or ("4096x4096" if device.type == "cuda" else "512x512")
    ((n, k),) = parse_shapes(shape)
    out_dtype = OUT_DTYPES[args.out_dtype]
    print(f"nvfp4 demo on {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}: "
          f"weight {n}x{k}, M={args.m}, out {args.out_dtype}")
    torch.manual_seed(0)
    w = quantize(torch.randn(n, k, device=device))
    rows = []
    for mode in [m.strip() for m in args.modes.split(",")]:
        x = torch.randn(args.m, k, device=device)
        fmt = MODES[mode]
        a = quantize(x) if fmt == "nvfp4" else x.to(FORMAT_DTYPES[fmt])
        ref = gemm_ref_f64(a, w)
        names = [b.name for b in registry.backends() if b.available] + ["auto"]
        for name in names:
            try:
                out = gemm(a, w, out_dtype=out_dtype, backend=name)
                err = float((out.double() - ref).norm() / ref.norm())
                us = _time(lambda a=a, name=name: gemm(a, w, out_dtype=out_dtype, backend=name), device)
                chosen = ""
                if name == "auto":
                    chosen = f" -> {explain(a, w, out_dtype=out_dtype).backend}"
                rows.append((mode, name + chosen, f"{err:.2e}", f"{us:.1f}"))
            except Exception as exc:  # a backend that declines or fails is shown, not hidden
                rows.append((mode, name, "-", f"{type(exc).__name__}: {exc}"[:90]))
    show(("mode", "backend", "rel. error vs float64", "time (us)"), rows, title="nvfp4 demo")
    for b in registry.backends():
        if not b.available:
            print(f"unavailable: {b.name} ({b.reason})")
    return 0
