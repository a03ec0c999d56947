"""Time every tactic a backend offers for one GEMM in alternating rounds, with the tuner's own profiler.

`nvfp4 explain` shows one profiling pass; this repeats it (each round starts at another tactic, the benchmark's
`round_order`, so drift evens out) to
tell whether a choice is stable, and to compare with a kernel-level microbench on the same machine:

    python scripts/tactic_rounds.py --backend cutlass --shape 8192x8192 --m 256 [--mode w4a4] [--match tile_m=256]
"""
import argparse
import statistics

import torch

from nvfp4.bench.timing import round_order
from nvfp4.problem import GemmProblem
from nvfp4.registry import REGISTRY
from nvfp4.tuning import profiler
from nvfp4.tuning.serialize import tactic_id


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="cutlass")
    ap.add_argument("--shape", default="8192x8192", help="N x K of the weight")
    ap.add_argument("--m", type=int, default=256)
    ap.add_argument("--mode", default="weight-only", choices=("weight-only", "w4a4"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--match", default="", help="only tactics whose repr contains this text")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    n, k = (int(v) for v in args.shape.lower().split("x"))
    problem = GemmProblem(args.m, n, k, "bf16" if args.mode == "weight-only" else "nvfp4", torch.bfloat16, False,
                          "linear", torch.device(args.device))
    backend = REGISTRY.entry(args.backend).backend
    tactics = [t for t in backend.tactics(problem) if args.match in repr(t)]
    if not tactics:
        raise SystemExit(f"{args.backend} offers no tactic matching {args.match!r} for {problem.describe()}")
    inputs = profiler.make_inputs(problem)
    times: dict[str, list[float]] = {tactic_id(t): [] for t in tactics}
    names = {tactic_id(t): repr(t) for t in tactics}
    for r in range(args.rounds):
        for t in round_order(tactics, r, args.rounds):
            m = profiler.measure(backend, problem, t, inputs)
            times[tactic_id(t)].append(float("nan") if m.error else m.time_ms * 1e3)
    card = torch.cuda.get_device_name(problem.device) if problem.device.type == "cuda" else "cpu"
    print(f"{card}; {problem.describe()}; median of {args.rounds} alternating rounds (us)")
    for i, v in sorted(times.items(), key=lambda kv: statistics.median(kv[1])):
        print(f"{statistics.median(v):9.1f}  [{' '.join(f'{x:.1f}' for x in v)}]  {names[i]}")


if __name__ == "__main__":
    main()
