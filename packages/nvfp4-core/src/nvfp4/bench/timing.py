"""One timing method for every contender of a run, and the card's two ceilings.

The method is chosen once per run, so the baseline, every backend and auto are
timed alike: ``triton.testing.do_bench`` (median, L2 flushed before each call)
when triton is importable on a GPU, else CUDA events around each call after a
256 MiB write that flushes L2 (median), else ``perf_counter`` on the CPU
(median). Callables run many times; each must leave its inputs unchanged.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..tuning.profiler import release_flush_buffers, time_reps

MIN_REPS, MAX_REPS = 3, 2000


class Timer:
    """``median_ms(fn)``: the median time of ``fn`` in milliseconds, by this run's method.

    ``interleaved_ms(fns)`` times several callables in ``rounds`` alternating rounds (each round times every
    callable once, for ``rep_ms / rounds``) and gives each the median of its rounds: whatever drifts while a
    point is measured (clocks after the tuner's bursts, the card's temperature) then reaches every callable
    alike. Timed one after another instead, the same kernel measured up to 15% apart on an H200 at
    compute-bound sizes, depending on where in the sequence it came.
    """

    def __init__(self, device: torch.device, warmup_ms: float, rep_ms: float, method: str | None = None,
                 rounds: int = 1):
        if warmup_ms < 0 or rep_ms <= 0 or rounds < 1:
            raise ValueError(f"warmup_ms must be >= 0, rep_ms > 0 and rounds >= 1, got {warmup_ms}, {rep_ms} "
                             f"and {rounds}")
        self.device, self.warmup_ms, self.rep_ms = device, float(warmup_ms), float(rep_ms)
        self.rounds = int(rounds)
        self.method = method or self._pick()

    def _pick(self) -> str:
        if self.device.type != "cuda":
            return "perf_counter"
        try:
            import triton.testing  # noqa: F401
        except Exception:  # triton missing or broken: events give the same numbers, minus its bookkeeping
            return "cuda_events"
        return "triton_do_bench"

    def describe(self) -> str:
        return {
            "triton_do_bench": "triton.testing.do_bench, median, L2 flushed before each call",
            "cuda_events": "CUDA events around each call, median, 256 MiB write flushes L2 before each",
            "perf_counter": "time.perf_counter around each call (synchronised), median",
        }[self.method] + f"; warmup {self.warmup_ms:g} ms, repetitions for {self.rep_ms:g} ms" + (
            f" in {self.rounds} rounds that alternate the contenders of a point (the median of the rounds)"
            if self.rounds > 1 else "")

    def interleaved_ms(self, fns: dict[str, Callable[[], object]]) -> dict[str, float | Exception]:
        """The median over ``rounds`` alternating rounds of each callable's time; a callable that raised gets
        its exception (and is not run again)."""
        part = Timer(self.device, self.warmup_ms, self.rep_ms / self.rounds, self.method)
        samples: dict[str, list[float] | Exception] = {name: [] for name in fns}
        for _ in range(self.rounds):
            for name, fn in fns.items():
                got = samples[name]
                if isinstance(got, Exception):
                    continue
                try:
                    got.append(part.median_ms(fn))
                except Exception as exc:  # the caller reports it against that contender
                    samples[name] = exc
        return {name: got if isinstance(got, Exception) else statistics.median(got) for name, got in samples.items()}

    def median_ms(self, fn: Callable[[], object]) -> float:
        if self.method == "triton_do_bench":
            return self._do_bench(fn)
        if self.method == "cuda_events":
            return self._events(fn)
        return self._host(fn)

    # -- the three methods ------------------------------------------------------------------------
    def _do_bench(self, fn) -> float:
        import triton.testing

        try:
            return float(triton.testing.do_bench(fn, warmup=self.warmup_ms, rep=self.rep_ms, return_mode="median"))
        except TypeError:  # triton before return_mode: ask for the 0.5 quantile instead
            return float(triton.testing.do_bench(fn, warmup=self.warmup_ms, rep=self.rep_ms, quantiles=[0.5]))

    def _events(self, fn) -> float:
        # The tuner's measurement (CUDA events around each call, L2 flushed before each), repeated.
        fn()
        torch.cuda.synchronize(self.device)
        est = statistics.median(time_reps(fn, self.device, 3))
        warm = max(1, math.ceil(self.warmup_ms / max(est, 1e-3)))
        for _ in range(min(warm, MAX_REPS)):
            fn()
        reps = int(min(MAX_REPS, max(MIN_REPS, self.rep_ms / max(est, 1e-3))))
        return statistics.median(time_reps(fn, self.device, reps))

    def _host(self, fn) -> float:
        def once() -> float:
            return time_reps(fn, self.device, 1)[0]

        est = once()
        deadline = time.perf_counter() + self.warmup_ms / 1e3
        while time.perf_counter() < deadline:
            once()
        reps = int(min(MAX_REPS, max(MIN_REPS, self.rep_ms / max(est, 1e-3))))
        return statistics.median(once() for _ in range(reps))

    def release(self) -> None:
        """Free the L2-flush buffer the timing shares with the tuner."""
        release_flush_buffers()


@dataclass(frozen=True)
class Ceilings:
    """Measured on this card in this run: device copy bandwidth and BF16 matmul rate."""

    copy_bytes_per_s: float
    matmul_flops_per_s: float
    copy_size_bytes: int
    matmul_size: int

    def floor_s(self, n_bytes: int, flops: int) -> tuple[float, str]:
        """The larger of the two lower bounds, and which one it is ("memory" or "compute")."""
        t_mem, t_flop = n_bytes / self.copy_bytes_per_s, flops / self.matmul_flops_per_s
        return (t_mem, "memory") if t_mem >= t_flop else (t_flop, "compute")

    def to_json(self) -> dict:
        return {"copy_GB_per_s": self.copy_bytes_per_s / 1e9, "bf16_matmul_TFLOP_per_s": self.matmul_flops_per_s / 1e12,
                "copy_size_bytes": self.copy_size_bytes, "matmul_size": self.matmul_size}


def measure_ceilings(timer: Timer, copy_bytes: int, matmul_size: int) -> Ceilings:
    """A device-to-device copy (bytes read plus bytes written) and a square BF16 matmul, on random data."""
    t_copy = _copy_seconds(timer, copy_bytes)
    t_mm = _matmul_seconds(timer, matmul_size)
    return Ceilings(2 * copy_bytes / t_copy, 2 * matmul_size ** 3 / t_mm, copy_bytes, matmul_size)


def _copy_seconds(timer: Timer, n_bytes: int) -> float:
    # Separate functions so each buffer is freed on return, before the next one is made.
    src = torch.randint(0, 256, (n_bytes,), dtype=torch.uint8, device=timer.device)
    dst = torch.empty_like(src)
    return timer.median_ms(lambda: dst.copy_(src)) / 1e3


def _matmul_seconds(timer: Timer, n: int) -> float:
    a = torch.randn(n, n, device=timer.device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=timer.device, dtype=torch.bfloat16)
    c = torch.empty(n, n, device=timer.device, dtype=torch.bfloat16)
    return timer.median_ms(lambda: torch.mm(a, b, out=c)) / 1e3
