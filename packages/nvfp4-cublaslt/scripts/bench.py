"""Benchmarks of the cublaslt backend on one GPU: the dequantize kernel's bandwidth, and the GEMM against
torch's BF16 matmul on pre-dequantized weights (triton.testing.do_bench medians, L2 flushed).

Prints a table last; writes everything as JSON to the path given by --json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys

import torch
from triton.testing import do_bench

import nvfp4
from nvfp4.problem import GemmProblem
from nvfp4.registry import REGISTRY
from nvfp4.tensor import NVFP4Tensor

SHAPES = ((8192, 8192), (57344, 8192), (8192, 28672))
MS = (1, 16, 256, 1024, 4096, 8192)


def random_nvfp4(rows: int, k: int, layout: str, gen: torch.Generator) -> NVFP4Tensor:
    """Random codes and random power-of-two-ish E4M3 scales: a valid NVFP4 tensor without quantizing."""
    data = torch.randint(0, 256, (rows, k // 2), dtype=torch.uint8, device="cuda", generator=gen)
    exps = torch.randint(-6, 3, (rows, k // 16), device="cuda", generator=gen).float()
    mant = 1 + torch.randint(0, 8, (rows, k // 16), device="cuda", generator=gen).float() / 8
    scale = (torch.pow(2.0, exps) * mant).to(torch.float8_e4m3fn)
    return NVFP4Tensor.from_raw(data, nvfp4.layouts.swizzle(scale) if layout == "swizzled" else scale,
                                0.01, layout=layout, shape=(rows, k))


def bench(fn, rep=40) -> float:
    return do_bench(fn, warmup=10, rep=rep, return_mode="median") * 1e3  # microseconds


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="cublaslt_bench.json")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    be = REGISTRY.entry("cublaslt").backend
    av = REGISTRY.availability("cublaslt")
    if not av.ok:
        print(f"cublaslt unavailable: {av.reason}")
        return 1
    dev = torch.device("cuda", torch.cuda.current_device())
    gen = torch.Generator(device="cuda")
    gen.manual_seed(0)
    res = {"device": torch.cuda.get_device_name(), "date": datetime.date.today().isoformat(),
           "torch": torch.__version__,
           "cublaslt_version": __import__("nvfp4_cublaslt")._library._native.library_version(),
           "dequant": [], "gemm": []}

    # Ceiling: a device-to-device copy (bytes read + written).
    x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    t = bench(lambda x=x, y=y: y.copy_(x))
    copy_tbs = 2 * x.numel() / t / 1e6
    res["copy_TBps"] = copy_tbs
    del x, y

    # Dequantize kernel bandwidth: bytes = packed data + scales read, dense output written.
    for rows, k in ((57344, 8192), (8192, 28672)):
        for layout in ("linear", "swizzled"):
            w = random_nvfp4(rows, k, layout, gen)
            for dt in (torch.bfloat16, torch.float16):
                out = torch.empty(rows, k, dtype=dt, device="cuda")
                t = bench(lambda w=w, out=out: be.dequantize_into(w, out))
                nbytes = rows * k // 2 + w.scale.numel() + rows * k * out.element_size()
                tbs = nbytes / t / 1e6
                res["dequant"].append({"rows": rows, "k": k, "layout": layout, "dtype": str(dt), "us": t,
                                       "TBps": tbs, "of_copy": tbs / copy_tbs})
                del out
            del w
    torch.cuda.empty_cache()

    shapes = SHAPES[:1] if args.quick else SHAPES
    for n, k in shapes:
        w = random_nvfp4(n, k, "swizzled", gen)
        wd = torch.empty(n, k, dtype=torch.bfloat16, device="cuda")
        be.dequantize_into(w, wd)
        wd.mul_(float(w.global_scale))  # the baseline multiplies pre-dequantized weights (global scale in)
        for m in MS:
            xa = torch.randn(m, k, device="cuda", dtype=torch.bfloat16, generator=gen)
            t_torch = bench(lambda xa=xa, wd=wd: torch.matmul(xa, wd.T))
            row = {"n": n, "k": k, "m": m, "torch_bf16_us": t_torch}
            for a_format in ("bf16", "nvfp4"):
                a = xa if a_format == "bf16" else nvfp4.quantize(xa.float(), layout="swizzled")
                p = GemmProblem(m, n, k, a_format, torch.bfloat16, False, "swizzled", dev)
                out = torch.empty(m, n, dtype=torch.bfloat16, device="cuda")
                tactics = be.tactics(p)
                times = []
                for tac in tactics:
                    try:
                        times.append((bench(lambda p=p, tac=tac, a=a, w=w, out=out: be.run(p, tac, a, w, bias=None,
                                                                                          out=out), rep=25), tac))
                    except Exception as exc:  # a tactic cuBLASLt refuses is reported, not fatal
                        print(f"  tactic failed {tac}: {exc}", file=sys.stderr)
                heur = times[0][0] if times else float("nan")
                best = min(times, key=lambda x: x[0]) if times else (float("nan"), None)
                best1 = min((x for x in times if x[1].chunks == 1), key=lambda x: x[0], default=(float("nan"), None))
                row[a_format] = {"heuristic_us": heur, "best_us": best[0], "best_tactic": repr(best[1]),
                                 "best_unpipelined_us": best1[0], "n_tactics": len(tactics)}
                del out
            res["gemm"].append(row)
            print(f"N={n} K={k} M={m}: torch {t_torch:.1f} us, w-only best {row['bf16']['best_us']:.1f}, "
                  f"w4a4 best {row['nvfp4']['best_us']:.1f}", file=sys.stderr, flush=True)
        del w, wd
        torch.cuda.empty_cache()

    # The two alpha pointer modes, best tactic of each (weight-only bf16, where the GEMM dominates).
    res["pointer_modes"] = []
    for n, k in shapes:
        w = random_nvfp4(n, k, "swizzled", gen)
        for m in (1024, 4096):
            xa = torch.randn(m, k, device="cuda", dtype=torch.bfloat16, generator=gen)
            p = GemmProblem(m, n, k, "bf16", torch.bfloat16, False, "swizzled", dev)
            out = torch.empty(m, n, dtype=torch.bfloat16, device="cuda")
            row = {"n": n, "k": k, "m": m}
            for vec in (False, True):
                times = [bench(lambda p=p, tac=tac, xa=xa, w=w, out=out: be.run(p, tac, xa, w, bias=None, out=out),
                               rep=25)
                         for tac in be.heuristic_tactics(p, "dequant", alpha_vector=vec)]
                row["vector" if vec else "scalar"] = min(times) if times else None
            res["pointer_modes"].append(row)
        del w
        torch.cuda.empty_cache()

    with open(args.json, "w") as f:
        json.dump(res, f, indent=1)

    tac_modes = sorted({t.alpha_vector for t in be.tactics(GemmProblem(1024, 8192, 8192, "bf16", torch.bfloat16,
                                                                           False, "swizzled", dev))})
    print(f"\n(tactics() offers alpha_vector = {tac_modes})")
    print(f"\n== cublaslt on {res['device']} (torch {res['torch']}, cuBLASLt {res['cublaslt_version']}) ==")
    print(f"copy ceiling: {copy_tbs:.2f} TB/s")
    for d in res["dequant"]:
        print(f"dequant {d['rows']}x{d['k']} {d['layout']:8s} {d['dtype'][6:]:8s}: {d['us']:8.1f} us "
              f"{d['TBps']:.2f} TB/s = {100 * d['of_copy']:.0f}% of copy")
    print(f"{'N x K':>12} {'M':>5} {'torch':>8} | {'w-only':>8} {'ratio':>6} {'unpipe':>6} | "
          f"{'w4a4':>8} {'ratio':>6} {'unpipe':>6}")
    for r in res["gemm"]:
        b, q = r["bf16"], r["nvfp4"]
        tt = r["torch_bf16_us"]
        print(f"{r['n']:>6}x{r['k']:<5} {r['m']:>5} {tt:8.1f} | {b['best_us']:8.1f} {b['best_us'] / tt:6.2f} "
              f"{b['best_unpipelined_us'] / tt:6.2f} | {q['best_us']:8.1f} {q['best_us'] / tt:6.2f} "
              f"{q['best_unpipelined_us'] / tt:6.2f}")
    print("alpha pointer mode, best tactic (us), weight-only bf16:")
    for r in res["pointer_modes"]:
        print(f"  {r['n']:>6}x{r['k']:<5} M={r['m']:>5}: device scalars {r['scalar']}, per-row vector {r['vector']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
