"""Does the way L2 is flushed before each timed call change the ratios the benchmark reports?

triton's do_bench flushes L2 by writing 256 MiB (and so did nvfp4's tuner and benchmark until 2026-12-01),
which leaves the cache full of dirty lines that the timed kernel's reads must evict (written back first). This
times torch's BF16 matmul and one NVFP4 backend after three flushes: that write, a 256 MiB read (clean lines),
and the write followed by the read.

    python benchmarks/l2_flush_check.py [--backend cutlass] [--reps 200]

Result on an H200 (2026-12-01, results/nvidia-h200-2026-12-01-l2-flush-write-vs-read.txt): after the read flush
BF16 ran 3-11 us faster per call and the cutlass kernels from 3 us slower to 25 us faster (57344x8192, M = 256).
The ratios dropped on the small layers (8192x8192, M = 1: 1.78x after the write, 1.64x after the read; 6144x4096,
M = 16: 1.08x and 0.91x) and held on the large ones (57344x8192, M = 1: 2.34x and 2.40x). The write flattered the
NVFP4 kernels, so the benchmark and the tuner now flush with the read.
"""

from __future__ import annotations

import argparse
import statistics

import torch

import nvfp4

SHAPES = ((8192, 8192), (57344, 8192), (6144, 4096), (8192, 28672))
MS = (1, 16, 256)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="cutlass", help="the NVFP4 backend to time (default: cutlass)")
    ap.add_argument("--reps", type=int, default=200, help="timed calls per case (median)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("l2_flush_check.py needs a CUDA device")
    dev = torch.device("cuda")
    buf = torch.empty(256 << 20, dtype=torch.uint8, device=dev)
    words = buf.view(torch.int32)
    flushes = {"write": buf.zero_, "read": words.sum, "both": lambda: (buf.zero_(), words.sum())}

    def median_us(fn, flush) -> float:
        for _ in range(5):
            flush()
            fn()
        events = []
        for _ in range(args.reps):
            flush()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            events.append((start, end))
        torch.cuda.synchronize()
        return statistics.median(s.elapsed_time(e) for s, e in events) * 1e3

    # a tiny kernel: what the event window costs after each flush (with no flush at all the host's launch
    # latency is no longer hidden behind a queued flush, so it is not a baseline)
    small = torch.empty(1024, device=dev)
    print("flush     tiny-kernel us")
    for name, flush in {**flushes, "none": lambda: None}.items():
        print(f"{name:9s} {median_us(lambda: small.add_(1), flush):8.1f}")
    for n, k in SHAPES:
        wq = nvfp4.quantize(torch.randn(n, k, device=dev))
        wd = nvfp4.dequantize(wq).to(torch.bfloat16)
        for m in MS:
            x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
            out = torch.empty(m, n, device=dev, dtype=torch.bfloat16)
            nvfp4.gemm(x, wq, backend=args.backend)  # tune once, outside the timing
            fns = {"bf16": lambda x=x, wd=wd: torch.mm(x, wd.t()),
                   args.backend: lambda x=x, wq=wq, out=out: nvfp4.gemm(x, wq, backend=args.backend, out=out)}
            cells = []
            for name, flush in flushes.items():
                t = {c: median_us(f, flush) for c, f in fns.items()}
                cells.append(f"{name}: bf16 {t['bf16']:7.1f} {args.backend} {t[args.backend]:7.1f} "
                             f"({t['bf16'] / t[args.backend]:.2f}x)")
            print(f"{n}x{k} M={m}: " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
