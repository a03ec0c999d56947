"""Test backends with known costs, and a clock the tuner reads instead of the real one."""

from __future__ import annotations

from dataclasses import dataclass

import nvfp4
from nvfp4.reference import gemm_ref_f64


class FakeClock:
    """Backends add their declared cost when they run; the tuner's timer reads the difference."""

    def __init__(self):
        self.now = 0.0
        self.runs = 0

    def timer(self, fn, device, reps):
        times = []
        for _ in range(reps):
            t0 = self.now
            fn()
            times.append(self.now - t0)
        return times


CLOCK = FakeClock()


@dataclass(frozen=True)
class Speed:
    cost_ms: float


class CostedBackend(nvfp4.Backend):
    """Computes the right answer; pretends each tactic takes its ``cost_ms``."""

    def __init__(self, name, costs, *, fail=(), nan=(), supports_reason=None, available=True, priority=0):
        self.name = name
        self.costs = costs
        self.fail, self.nan = set(fail), set(nan)
        self.supports_reason = supports_reason
        self.available = available
        self.priority = priority
        self.calls = 0

    def availability(self):
        return nvfp4.Availability(self.available, "" if self.available else "fake: no such device")

    def supports(self, problem):
        return self.supports_reason

    def tactics(self, problem):
        return [Speed(c) for c in self.costs]

    def run(self, problem, tactic, a, b, *, bias, out):
        self.calls += 1
        CLOCK.runs += 1
        if tactic.cost_ms in self.fail:
            raise RuntimeError("tactic crashed")
        CLOCK.now += tactic.cost_ms
        out.copy_(gemm_ref_f64(a, b, bias))
        if tactic.cost_ms in self.nan:
            out.fill_(float("nan"))
