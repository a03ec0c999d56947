"""Correctness sweep and benchmark of the cutedsl backend against torch BF16, on one GPU.

    python gpu_check.py correct      # every tactic on odd shapes, all formats and layouts
    python gpu_check.py correct-regs # the same, weight_regs tactics only
    python gpu_check.py sweep-mid    # candidates and weight_regs variants at M 64-1024, timed
    python gpu_check.py bench        # N x K in {8192x8192, 8192x28672}, M in {1,16,256,1024,8192}

Prints one line per check (flushed, so a hang shows where it stopped) and a
table last. Timings: triton.testing.do_bench median (L2 flushed), torch BF16
``x @ w_bf16.T`` on the dequantized weight in the same process.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback

import torch

import nvfp4
from nvfp4.problem import GemmProblem
from nvfp4.testing.numerics import assert_close_to_reference, make_problem_inputs
from nvfp4_cutedsl.backend import CuteDslBackend

OUT_DIR = os.environ.get("OUT", ".")
DEV = torch.device("cuda")


def log(msg: str) -> None:
    print(msg, flush=True)
    with open(os.path.join(OUT_DIR, "gpu_check.log"), "a") as f:
        f.write(msg + "\n")


def correct(smoke: bool = False, regs_only: bool = False) -> int:
    be = CuteDslBackend()
    shapes = [(1, 256, 256), (17, 96, 160), (33, 384, 512), (5, 256, 8192), (200, 520, 1024), (300, 264, 2048),
              (100, 200, 768)]  # one shape per M bucket of candidate_tactics, and more
    if smoke:
        shapes = [(17, 96, 160)]
    outs = [torch.bfloat16, torch.float16, torch.float32]
    fails = runs = 0
    i = 0
    for a_format in ("bf16", "fp16", "nvfp4"):
        for layout in ("linear", "swizzled"):
            for m, n, k in (shapes if layout == "linear" or smoke else shapes[1::2]):
                i += 1
                out_dtype = outs[i % 3]
                has_bias = bool(i % 2)
                problem = GemmProblem(m, n, k, a_format, out_dtype, has_bias, layout, DEV)
                reason = be.supports(problem)
                if reason:
                    log(f"SKIP {problem.describe()}: {reason}")
                    continue
                a, b, bias = make_problem_inputs(m, n, k, a_format, layout, DEV,
                                                 bias_dtype=out_dtype if has_bias else None, seed=i)
                tactics = [t for t in be.tactics(problem) if t.weight_regs or not regs_only]
                for tactic in tactics[:1] if smoke else tactics:
                    runs += 1
                    out = torch.full((m, n), float("nan"), dtype=out_dtype, device=DEV)
                    try:
                        be.run(problem, tactic, a, b, bias=bias, out=out)
                        torch.cuda.synchronize()
                        # twice: split-K must leave its workspace clean for the next call
                        be.run(problem, tactic, a, b, bias=bias, out=out)
                        torch.cuda.synchronize()
                        a_cpu = a.cpu() if isinstance(a, torch.Tensor) else a.to("cpu")
                        assert_close_to_reference(out.cpu(), a_cpu, b.to("cpu"), None if bias is None else bias.cpu(),
                                                  what="")
                        log(f"PASS {problem.describe()} {tactic}")
                    except Exception as exc:
                        fails += 1
                        log(f"FAIL {problem.describe()} {tactic}: {type(exc).__name__}: {str(exc)[:300]}")
                        if fails <= 2:
                            traceback.print_exc()
    log(f"correctness: {runs - fails}/{runs} runs passed")
    return fails


def bench() -> None:
    from triton.testing import do_bench

    be = CuteDslBackend()
    rows = []
    for n, k in ((8192, 8192), (8192, 28672)):
        w = torch.randn(n, k, device=DEV)
        b = nvfp4.quantize(w, layout="linear")
        w_bf16 = nvfp4.dequantize(b, torch.bfloat16)
        del w
        for m in (1, 16, 256, 1024, 8192):
            x = torch.randn(m, k, device=DEV).to(torch.bfloat16)
            t_torch = do_bench(lambda x=x, w=w_bf16: x @ w.T, return_mode="median") * 1e3
            problem = GemmProblem(m, n, k, "bf16", torch.bfloat16, False, "linear", DEV)
            out = torch.empty(m, n, dtype=torch.bfloat16, device=DEV)
            best = None
            for tactic in be.tactics(problem):
                try:
                    t0 = time.perf_counter()
                    be.run(problem, tactic, x, b, bias=None, out=out)
                    torch.cuda.synchronize()
                    first = time.perf_counter() - t0
                    t = do_bench(lambda p=problem, t_=tactic, x=x, b=b, o=out: be.run(p, t_, x, b, bias=None, out=o),
                                 return_mode="median") * 1e3
                except Exception as exc:
                    log(f"BENCH-FAIL N={n} K={k} M={m} {tactic}: {type(exc).__name__}: {str(exc)[:200]}")
                    continue
                log(f"bench N={n} K={k} M={m} {tactic}: {t:.1f} us (first call incl. compile {first:.2f} s)")
                if best is None or t < best[0]:
                    best = (t, tactic)
            # Kernel time without Python launch overhead: one call captured in a CUDA graph, replayed.
            t_torch_g = t_graph = float("nan")
            if best is not None:
                try:
                    t_torch_g = _graph_time(lambda x=x, w=w_bf16: torch.matmul(x, w.T), do_bench)
                    def ours(p=problem, t_=best[1], x=x, b=b, o=out):
                        be.run(p, t_, x, b, bias=None, out=o)

                    t_graph = _graph_time(ours, do_bench)
                except Exception as exc:
                    log(f"GRAPH-FAIL N={n} K={k} M={m}: {type(exc).__name__}: {str(exc)[:200]}")
            # correctness of the benchmarked configuration on a sample of rows
            if best is not None:
                be.run(problem, best[1], x, b, bias=None, out=out)
                ref = (x[:4].float() @ w_bf16.float().T).to(torch.bfloat16)
                err = (out[:4].float() - ref.float()).abs().max().item()
                scale = ref.float().abs().max().item()
            else:
                err, scale = float("nan"), 1.0
            rows.append((n, k, m, t_torch, best, err / max(scale, 1e-30), t_torch_g, t_graph))
            del x
        del b, w_bf16
        torch.cuda.empty_cache()
    log("")
    log(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    log("| N x K | M | torch bf16 (us) | cutedsl (us) | speedup | graph: torch / cutedsl (us) | graph speedup "
        "| best tactic | rel err |")
    log("|---|---|---|---|---|---|---|---|---|")
    for n, k, m, tt, best, rel, tg, cg in rows:
        if best is None:
            log(f"| {n}x{k} | {m} | {tt:.1f} | - | - | - | - | none ran | - |")
        else:
            t, tac = best
            log(f"| {n}x{k} | {m} | {tt:.1f} | {t:.1f} | {tt / t:.2f}x | {tg:.1f} / {cg:.1f} | {tg / cg:.2f}x | "
                f"w{tac.tile_w} x{tac.tile_x} s{tac.stages} {'swap' if tac.swap_ab else 'noswap'} "
                f"sk{tac.split_k}{' regs' if tac.weight_regs else ''} | {rel:.1e} |")


def _time_tactics(be, problem, tacs, x, b, out) -> list:
    """(median us, tactic) of each of ``tacs`` on one problem, fastest first."""
    from triton.testing import do_bench

    res = []
    for tac in tacs:
        be.run(problem, tac, x, b, bias=None, out=out)
        t = do_bench(lambda t_=tac: be.run(problem, t_, x, b, bias=None, out=out), return_mode="median") * 1e3
        res.append((t, tac))
    return sorted(res, key=lambda r: r[0])


def sweep() -> None:
    """Time weight_regs tactic variants at decode sizes (to choose the candidates), best first: every
    split 1-12 (the CTAs resident at once, not only powers of two) at depths 4, 6 and 8, and the candidates."""
    from nvfp4_cutedsl.tactics import Sm90Tactic, tactic_problem

    be = CuteDslBackend()
    shapes = ((8192, 8192), (8192, 28672), (57344, 8192), (6144, 4096), (10240, 8192), (4096, 14336))
    for n, k in shapes[:int(os.environ.get("SWEEP_SHAPES", len(shapes)))]:
        b = nvfp4.quantize(torch.randn(n, k, device=DEV), layout="linear")
        for m in (1, 16):
            x = torch.randn(m, k, device=DEV).to(torch.bfloat16)
            out = torch.empty(m, n, dtype=torch.bfloat16, device=DEV)
            problem = GemmProblem(m, n, k, "bf16", torch.bfloat16, False, "linear", DEV)
            tx = 8 if m <= 8 else 16
            cands = [t for t in be.tactics(problem) if t.weight_regs]
            tacs = list(cands)
            for sk in (1,) + tuple(range(2, 13)):
                for stages in (4, 6, 8):
                    tac = Sm90Tactic(64, tx, stages, True, sk, weight_regs=True)
                    if tac not in tacs and not tactic_problem(tac, problem):
                        tacs.append(tac)
            res = _time_tactics(be, problem, tacs, x, b, out)
            for t, tac in res[:6] + [r for r in res[6:] if r[1] in cands]:
                log(f"sweep N={n} K={k} M={m}: {t:.1f} us {'cand' if tac in cands else 'new'} w{tac.tile_w} "
                    f"x{tac.tile_x} s{tac.stages} sk{tac.split_k}")
        del b
        torch.cuda.empty_cache()


def sweep_mid() -> None:
    """Time the current candidates and tactic variants at M 64-1024, one line each, best first.

    ``SWEEP_FORMAT=nvfp4`` times W4A4 (shared-memory kernel variants), else bf16 activations
    (register-sourced variants)."""
    from nvfp4_cutedsl.backend import _split_for
    from nvfp4_cutedsl.tactics import Sm90Tactic, tactic_problem

    be = CuteDslBackend()
    w4a4 = os.environ.get("SWEEP_FORMAT", "bf16") == "nvfp4"
    variants = {  # (tile_w, tile_x, stages, split multiplier of _split_for)
        64: [(64, 64, 6, 0.5), (64, 64, 6, 1), (64, 64, 10, 1), (64, 64, 6, 2), (128, 64, 6, 0.5)],
        256: [(64, 256, 4, 1), (64, 256, 5, 1), (64, 128, 6, 1), (128, 128, 6, 1), (128, 256, 5, 1),
              (64, 256, 5, 2)],
        1024: [(64, 256, 5, 1), (128, 256, 5, 1), (128, 256, 4, 1), (128, 128, 6, 1)],
    }
    if w4a4:
        variants = {64: [(64, 64, 6, 0.5), (128, 64, 6, 0.5), (64, 64, 8, 1)],
                    256: [(64, 256, 4, 1), (64, 128, 5, 1), (128, 256, 4, 1), (64, 128, 5, 2)],
                    1024: [(128, 256, 4, 1), (64, 256, 4, 1)]}
    for n, k in ((8192, 8192), (8192, 28672), (57344, 8192), (6144, 4096)):
        b = nvfp4.quantize(torch.randn(n, k, device=DEV), layout="linear")
        for m, var in variants.items():
            x = torch.randn(m, k, device=DEV).to(torch.bfloat16)
            if w4a4:
                x = nvfp4.quantize(x, layout="linear")
            out = torch.empty(m, n, dtype=torch.bfloat16, device=DEV)
            problem = GemmProblem(m, n, k, "nvfp4" if w4a4 else "bf16", torch.bfloat16, False, "linear", DEV)
            cands = be.tactics(problem)
            tacs = list(cands)
            for tw, tx, stages, mul in var:
                sk = max(1, int(_split_for(problem, tw, tx) * mul)) if mul != 1 or tx < 256 else 1
                tac = Sm90Tactic(tw, tx, stages, True, sk, weight_regs=not w4a4)
                if tac not in tacs and not tactic_problem(tac, problem):
                    tacs.append(tac)
            for t, tac in _time_tactics(be, problem, tacs, x, b, out):
                kind = "cand" if tac in cands else "new"
                log(f"sweep-mid {problem.a_format} N={n} K={k} M={m}: {t:.1f} us {kind} w{tac.tile_w} "
                    f"x{tac.tile_x} s{tac.stages} sk{tac.split_k}{' regs' if tac.weight_regs else ''}")
        del b
        torch.cuda.empty_cache()


def one(n: int, k: int, m: int, tw: int, tx: int, stages: int, sk: int, regs: int) -> None:
    """Run one tactic ten times (a target for Nsight Compute)."""
    from nvfp4_cutedsl.tactics import Sm90Tactic

    be = CuteDslBackend()
    b = nvfp4.quantize(torch.randn(n, k, device=DEV), layout="linear")
    x = torch.randn(m, k, device=DEV).to(torch.bfloat16)
    out = torch.empty(m, n, dtype=torch.bfloat16, device=DEV)
    problem = GemmProblem(m, n, k, "bf16", torch.bfloat16, False, "linear", DEV)
    tac = Sm90Tactic(tw, tx, stages, True, sk, weight_regs=bool(regs))
    for _ in range(10):
        be.run(problem, tac, x, b, bias=None, out=out)
    torch.cuda.synchronize()


def _graph_time(fn, do_bench) -> float:
    """Median microseconds of ``fn`` captured once in a CUDA graph and replayed."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()  # warm up outside the capture (allocations, compiles)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return do_bench(graph.replay, return_mode="median") * 1e3


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    rc = 0
    if what == "smoke":
        rc = 1 if correct(smoke=True) else 0
    if what in ("correct", "all"):
        rc = 1 if correct() else 0
    if what == "correct-regs":  # only the register-sourced (weight_regs) tactics
        rc = 1 if correct(regs_only=True) else 0
    if what == "one":
        one(*(int(v) for v in sys.argv[2:10]))
    if what == "sweep":
        sweep()
    if what == "sweep-mid":
        sweep_mid()
    if what in ("bench", "all"):
        bench()
    sys.exit(rc)
