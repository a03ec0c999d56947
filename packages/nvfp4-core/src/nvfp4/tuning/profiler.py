"""Timing one (backend, tactic) on the real device, with the problem's shapes.

Inputs are made once per problem and shared by every tactic. Each timed
repetition runs after the L2 cache is flushed (a 256 MiB read, see
``_flush_l2``), timed with CUDA events on a GPU and ``perf_counter`` on the
CPU; the median is kept. A
tactic that raises, or writes non-finite values on finite inputs (the output
is poisoned with NaN first, so unwritten elements count), has failed.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..problem import FORMAT_DTYPES, GemmProblem
from ..quantize import default_global_scale, quantize

#: Timed work per tactic is about this long (more repetitions for fast tactics).
TARGET_MS = 25.0
MIN_REPS, MAX_REPS, WARMUP = 3, 50, 2
FLUSH_BYTES = 256 << 20


@dataclass
class Inputs:
    a: Any
    b: Any
    bias: torch.Tensor | None
    out: torch.Tensor


def make_inputs(problem: GemmProblem, seed: int = 0) -> Inputs:
    """Random operands of the problem's shapes on its device (never zeros: they time too fast)."""
    dev = problem.device
    gen = torch.Generator(device=dev).manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, device=dev, dtype=torch.float32)

    w = randn(problem.n, problem.k)
    b = quantize(w, global_scale=default_global_scale(w), layout=problem.layout, check_finite=False)
    del w
    x = randn(problem.m, problem.k)
    if problem.a_format == "nvfp4":
        a = quantize(x, layout=problem.layout, check_finite=False)
    else:
        a = x.to(FORMAT_DTYPES[problem.a_format])
    bias = randn(problem.n).to(problem.out_dtype) if problem.has_bias else None
    out = torch.empty((problem.m, problem.n), dtype=problem.out_dtype, device=dev)
    return Inputs(a, b, bias, out)


_flush: dict[torch.device, torch.Tensor] = {}


def _flush_l2(device: torch.device) -> None:
    # A read, not a write: writing the buffer (triton's do_bench zeroes one) leaves L2 full of dirty lines, so the
    # timed call's first reads wait for their write-back. A layer in a model finds read-only lines there (the
    # previous layer's weights), and the write-back charges bandwidth-bound kernels more than latency-bound ones:
    # on an H200 BF16 matmul ran 3-11 us slower after a write, the NVFP4 kernels less, and the small layers'
    # ratios came out up to 19% high (benchmarks/l2_flush_check.py).
    buf = _flush.get(device)
    if buf is None:
        buf = _flush[device] = torch.empty(FLUSH_BYTES // 4, dtype=torch.int32, device=device)
    buf.sum()


def release_flush_buffers() -> None:
    """Free the flush buffers (256 MiB a device) once timing is over."""
    _flush.clear()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_reps(fn: Callable[[], None], device: torch.device, reps: int) -> list[float]:
    """Milliseconds of each of ``reps`` calls of ``fn``, L2 flushed before each on a GPU."""
    if device.type == "cuda":
        events = []
        for _ in range(reps):
            _flush_l2(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            events.append((start, end))
        torch.cuda.synchronize(device)
        return [s.elapsed_time(e) for s, e in events]
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


class Measurement:
    """The result of profiling one tactic: a median time or a failure."""

    __slots__ = ("time_ms", "error")

    def __init__(self, time_ms: float | None, error: str | None = None):
        self.time_ms, self.error = time_ms, error


def measure(backend, problem: GemmProblem, tactic, inputs: Inputs,
            timer: Callable[[Callable[[], None], torch.device, int], list[float]] = time_reps) -> Measurement:
    """Warm up (checking the output), then time ``backend.run`` with ``tactic``."""

    def run():
        backend.run(problem, tactic, inputs.a, inputs.b, bias=inputs.bias, out=inputs.out)

    try:
        if inputs.out.is_floating_point():
            inputs.out.fill_(float("nan"))
        for _ in range(WARMUP):
            run()
        _sync(problem.device)
        if not bool(torch.isfinite(inputs.out).all()):
            return Measurement(None, "non-finite output on finite inputs (or elements left unwritten)")
        first = timer(run, problem.device, 1)[0]
        reps = MIN_REPS if first <= 0 else int(min(MAX_REPS, max(MIN_REPS, math.ceil(TARGET_MS / first))))
        times = timer(run, problem.device, reps)
    except Exception as exc:  # a failing tactic is recorded, never chosen
        return Measurement(None, f"{type(exc).__name__}: {exc}")
    return Measurement(statistics.median(times))
