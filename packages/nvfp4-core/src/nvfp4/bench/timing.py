"""One timing method for every contender of a run, and the card's two ceilings.

The method is chosen once per run, so the baseline, every backend and auto are
timed alike: on a GPU, CUDA events around each call, each after L2 is flushed
by reading 256 MiB (the tuner's measurement; a read leaves clean lines, where
the write triton's ``do_bench`` flushes with leaves dirty ones that the timed
call pays to write back), median; on the CPU ``perf_counter`` (median).
Callables run many times; each must leave its inputs unchanged.
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
    compute-bound sizes, depending on where in the sequence it came. Each round starts at a different callable
    (``round_order``): with the same order in every round, auto (timed last) still came out 5-14% slower than
    the backend it chose, with the same tactic, at 2-6 compute-bound points of each H100 run of 2026-12-07.
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
        return "cuda_events" if self.device.type == "cuda" else "perf_counter"

    def describe(self) -> str:
        return {
            "cuda_events": "CUDA events around each call, median, L2 flushed before each by reading 256 MiB",
            "perf_counter": "time.perf_counter around each call (synchronised), median",
        }[self.method] + f"; warmup {self.warmup_ms:g} ms, repetitions for {self.rep_ms:g} ms" + (
            f" in {self.rounds} rounds that alternate the contenders of a point, each round starting at another"
            " (the median of the rounds)"
            if self.rounds > 1 else "")

    def interleaved_ms(self, fns: dict[str, Callable[[], object]]) -> dict[str, float | Exception]:
        """The median over ``rounds`` alternating rounds of each callable's time; a callable that raised gets
        its exception (and is not run again)."""
        part = Timer(self.device, self.warmup_ms, self.rep_ms / self.rounds, self.method)
        samples: dict[str, list[float] | Exception] = {name: [] for name in fns}
        for r in range(self.rounds):
            for name in round_order(list(fns), r, self.rounds):
                fn, got = fns[name], samples[name]
                if isinstance(got, Exception):
                    continue
                try:
                    got.append(part.median_ms(fn))
                except Exception as exc:  # the caller reports it against that contender
                    samples[name] = exc
        return {name: got if isinstance(got, Exception) else statistics.median(got) for name, got in samples.items()}

    def median_ms(self, fn: Callable[[], object]) -> float:
        return self._events(fn) if self.method == "cuda_events" else self._host(fn)

    # -- the two methods --------------------------------------------------------------------------
    def _events(self, fn) -> float:
        # The tuner's measurement (CUDA events around each call, L2 flushed before each), repeated.
        time_reps(fn, self.device, 1)  # first call and flush-buffer allocation, outside the estimate below
        t0 = time.perf_counter()
        est = statistics.median(time_reps(fn, self.device, 3))
        # rep_ms bounds the wall time of the repetitions, flushes included (as triton's do_bench counts them): a
        # 25 us kernel after a ~75 us flush would otherwise take four times its budget
        per_rep_ms = max((time.perf_counter() - t0) * 1e3 / 3, est, 1e-3)
        warm = max(1, math.ceil(self.warmup_ms / max(est, 1e-3)))
        for _ in range(min(warm, MAX_REPS)):
            fn()
        reps = int(min(MAX_REPS, max(MIN_REPS, self.rep_ms / per_rep_ms)))
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


def round_order(names: list, r: int, rounds: int) -> list:
    """The order of round ``r``: ``names`` rotated to start ``r / rounds`` of the way along, so that over the
    rounds each callable is timed early, midway and late rather than always in the same place."""
    start = (r * len(names)) // rounds
    return names[start:] + names[:start]


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
