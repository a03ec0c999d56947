"""Time the cutlass kernels against torch's BF16 matmul on pre-dequantized weights (same run, same card).

Prints a short table last; writes every figure to $OUT/cutlass_bench.json when $OUT is set.
Times: triton.testing.do_bench medians in microseconds (L2 flushed between runs).
"""

from __future__ import annotations

import json
import os
import sys

import torch
import triton.testing as tt

import nvfp4
from nvfp4.problem import GemmProblem
from nvfp4_cutlass import CutlassBackend, CutlassQuantizer

SHAPES = [(8192, 8192), (57344, 8192), (8192, 28672)]
MS = [int(v) for v in os.environ.get("BENCH_MS", "1,16,64,256,1024,8192").split(",")]
SWEEP_MAX_M = int(os.environ.get("BENCH_SWEEP_MAX_M", "256"))  # profile every tactic up to this M
HBM = 3.02e12  # measured device-to-device copy on the project's H100 (nvfp4-facts.md)


def bench(fn, rep=50):
    return tt.do_bench(fn, warmup=10, rep=rep, return_mode="median") * 1e3  # us


def main() -> None:
    dev = torch.device("cuda")
    be, q = CutlassBackend(), CutlassQuantizer()
    av = be.availability()
    if not av.ok:
        sys.exit(f"cutlass unavailable: {av.reason}")
    card = torch.cuda.get_device_name()
    rows, qrows, w4rows = [], [], []
    for n, k in SHAPES:
        torch.manual_seed(0)
        w = torch.randn(n, k, device=dev, dtype=torch.bfloat16)
        from nvfp4.quantize import default_global_scale

        gs = default_global_scale(w)
        t_q = bench(lambda w=w, gs=gs: q.quantize(w, gs, "linear"))
        qbytes = n * k * (2 + 0.5 + 1 / 16)
        qrows.append(dict(n=n, k=k, us=t_q, gbps=qbytes / t_q / 1e3, frac_hbm=qbytes / (t_q * 1e-6) / HBM))
        b = q.quantize(w, gs, "linear")
        del w
        w_deq = nvfp4.dequantize(b, torch.bfloat16)
        wbytes = n * k // 2 + n * k // 16
        for m in MS:
            x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
            t_torch = bench(lambda x=x, w=w_deq: torch.matmul(x, w.T))
            p = GemmProblem(m, n, k, "bf16", torch.bfloat16, False, "linear", dev)
            out = torch.empty((m, n), dtype=torch.bfloat16, device=dev)
            tactics = list(be.tactics(p))
            timed = {}
            for tac in (tactics if m <= SWEEP_MAX_M else tactics[:1]):
                timed[tac] = bench(lambda p=p, tac=tac, x=x, b=b, out=out: be.run(p, tac, x, b, bias=None, out=out),
                                   rep=30 if m <= 256 else 100)
            best = min(timed, key=timed.get)
            heur = tactics[0]
            # one launch in a CUDA graph: the kernel without Python's per-call cost
            g = torch.cuda.CUDAGraph()
            be.run(p, best, x, b, bias=None, out=out)
            with torch.cuda.graph(g):
                be.run(p, best, x, b, bias=None, out=out)
            t_graph = bench(g.replay)
            t_best = timed[best]
            rows.append(dict(n=n, k=k, m=m, torch_us=t_torch, heuristic_us=timed[heur], best_us=t_best,
                             graph_us=t_graph, best_tactic=repr(best), heuristic_tactic=repr(heur),
                             speedup=t_torch / min(t_best, t_graph),
                             weight_tbps=wbytes / (min(t_best, t_graph) * 1e-6) / 1e12))
            print(f"N={n} K={k} M={m}: torch {t_torch:.1f} us, cutlass best {t_best:.1f} (graph {t_graph:.1f}) "
                  f"heur {timed[heur]:.1f} {best}", flush=True)
            if m <= 16:  # W4A4 (activations NVFP4 too) on the same weights, every tactic
                xq = q.quantize(x, default_global_scale(x), "linear")
                p4 = GemmProblem(m, n, k, "nvfp4", torch.bfloat16, False, "linear", dev)
                t4 = {tac: bench(lambda p4=p4, tac=tac, xq=xq, b=b, out=out: be.run(p4, tac, xq, b, bias=None, out=out),
                                 rep=30) for tac in be.tactics(p4)}
                b4 = min(t4, key=t4.get)
                w4rows.append(dict(n=n, k=k, m=m, torch_us=t_torch, best_us=t4[b4], best_tactic=repr(b4),
                                   speedup=t_torch / t4[b4]))
            del x, out, g
        del w_deq, b
        torch.cuda.empty_cache()

    result = dict(card=card, rows=rows, quantize=qrows, w4a4=w4rows)
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "cutlass_bench.json"), "w") as f:
            json.dump(result, f, indent=1)
    print(f"\n== nvfp4-cutlass vs torch bf16 matmul (dequantized W), {card}, do_bench median us ==")
    print(f"{'N x K':>12} {'M':>5} {'torch':>9} {'cutlass':>9} {'graph':>9} {'speedup':>8} {'W TB/s':>7}  tactic")
    for r in rows:
        print(f"{r['n']:>6}x{r['k']:<5} {r['m']:>5} {r['torch_us']:>9.1f} {r['best_us']:>9.1f} {r['graph_us']:>9.1f} "
              f"{r['speedup']:>7.2f}x {r['weight_tbps']:>7.2f}  {r['best_tactic']}")
    for r in w4rows:
        print(f"W4A4 {r['n']}x{r['k']} M={r['m']}: {r['best_us']:.1f} us vs torch bf16 {r['torch_us']:.1f} us "
              f"({r['speedup']:.2f}x) {r['best_tactic']}")
    for r in qrows:
        print(f"quantize bf16 {r['n']}x{r['k']} linear: {r['us']:.1f} us, {r['gbps']:.0f} GB/s "
              f"({100 * r['frac_hbm']:.0f}% of 3.02 TB/s)")


if __name__ == "__main__":
    main()
