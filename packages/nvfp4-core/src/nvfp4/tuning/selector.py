"""Choosing the (backend, tactic) that runs a problem, by measuring them.

The first call of a key profiles every tactic of every candidate backend
(``backend="auto"``) or of the one forced backend; later calls of the key hit
an in-memory table: one tuple, one dict lookup, no allocation, no device sync.
Auto and forced calls share the same per-backend records, so forcing after
auto reuses auto's measurements and auto after forcing profiles only the
backends it has not measured yet.

While a CUDA graph is being captured nothing is profiled: the cached choice
is used, else the heuristic (the candidate of highest
``Backend.heuristic_priority(problem)``, then name, with its ``heuristic_tactic``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ..backend import describe_tactic
from ..errors import NoBackendError
from ..gemm import AUTO, check_runnable
from ..problem import GemmProblem
from ..registry import REGISTRY
from . import cache as cache_file
from . import profiler
from .keys import bucket_problem, device_identity, key_string, m_bucket
from .serialize import find_tactic, tactic_id, tactic_to_json

log = logging.getLogger("nvfp4")


def capturing_graph(device: torch.device) -> bool:
    """True while the current CUDA stream is capturing a graph (profiling would break the capture)."""
    return device.type == "cuda" and torch.cuda.is_current_stream_capturing()


@dataclass
class TacticResult:
    tactic: Any
    time_ms: float | None
    error: str | None = None

    def to_json(self) -> dict:
        return {"tactic": tactic_to_json(self.tactic), "id": tactic_id(self.tactic),
                "time_ms": self.time_ms, "error": self.error}


@dataclass
class BackendRecord:
    results: list[TacticResult] = field(default_factory=list)
    complete: bool = False

    def best(self) -> TacticResult | None:
        ok = [r for r in self.results if r.time_ms is not None]
        return min(ok, key=lambda r: r.time_ms) if ok else None


@dataclass
class Candidate:
    """One backend's part in a decision."""

    backend: str
    status: str  # "profiled", "cached", "unavailable", "unsupported", "not profiled"
    reason: str = ""
    results: list[TacticResult] = field(default_factory=list)


@dataclass
class Decision:
    """What ``nvfp4.explain`` returns: the choice for a problem and why."""

    key: str
    problem: GemmProblem
    requested: str
    backend: str
    tactic: Any
    time_ms: float | None
    source: str  # "profiled", "cache", "heuristic"
    candidates: list[Candidate]
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str, str, str]]:
        rows = []
        for c in self.candidates:
            if not c.results:
                rows.append((c.backend, "-", "-", f"{c.status}: {c.reason}" if c.reason else c.status))
            for r in sorted(c.results, key=lambda r: (r.time_ms is None, r.time_ms or 0.0)):
                chosen = c.backend == self.backend and r.tactic == self.tactic
                status = ("CHOSEN" if chosen else "ok") if r.time_ms is not None else f"failed: {r.error}"
                t = f"{r.time_ms * 1e3:.1f}" if r.time_ms is not None else "-"
                rows.append((c.backend, describe_tactic(r.tactic), t, status))
        return rows

    def __str__(self) -> str:
        head = [f"problem  {self.problem.describe()} (M is the bucket this decision serves)",
                f"chosen   {self.backend} / {describe_tactic(self.tactic)}"
                + (f" ({self.time_ms * 1e3:.1f} us)" if self.time_ms is not None else "")
                + f" [{self.source}]"]
        head += [f"note     {n}" for n in self.notes]
        rows = [("backend", "tactic", "time (us)", "status")] + self.rows()
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        return "\n".join(head + [""] + lines)


class Tuner:
    def __init__(self):
        self._lock = threading.RLock()
        self._fast: dict[tuple, tuple[Any, Any]] = {}
        self._decisions: dict[tuple, Decision] = {}
        self._records: dict[str, dict[str, BackendRecord]] = {}
        self._raw: dict[str, dict[str, dict]] = {}  # loaded from files, resolved lazily
        self._dirty: set[tuple[str, str]] = set()
        self._inputs: tuple[GemmProblem, profiler.Inputs] | None = None
        self.timer = profiler.time_reps
        self.deadline: float | None = None
        self.budget_note: str | None = None
        self.autosave_path: str | None = None
        self.stats = {"profiled_tactics": 0, "hits": 0, "decisions": 0, "loaded_entries": 0}

    # -- the hot path ----------------------------------------------------------------------------
    def select(self, problem: GemmProblem, backend: str):
        fast = (REGISTRY.fingerprint, backend, m_bucket(problem.m), problem.n, problem.k, problem.a_format,
                problem.out_dtype, problem.has_bias, problem.layout, problem.device)
        hit = self._fast.get(fast)
        if hit is not None:
            self.stats["hits"] += 1
            return hit
        decision = self.decide(problem, backend)
        entry = REGISTRY.entry(decision.backend)
        return entry.backend, decision.tactic

    # -- the slow path -----------------------------------------------------------------------------
    def decide(self, problem: GemmProblem, backend: str) -> Decision:
        REGISTRY.ensure_loaded()
        with self._lock:
            fingerprint = REGISTRY.fingerprint
            if backend != AUTO:
                check_runnable(backend, problem)  # raises with the reason
            bp = bucket_problem(problem)
            key = key_string(bp, fingerprint)
            capturing = capturing_graph(bp.device)
            candidates, runnable = self._candidates(bp, backend)
            notes = []
            profiled = False
            for name in runnable:
                rec = self._record(key, name, bp)
                if rec.complete:
                    continue
                if capturing:
                    notes.append(f"{name}: not profiled during CUDA graph capture")
                    continue
                profiled |= self._profile(key, name, bp, rec, notes)
            decision = self._choose(key, bp, backend, candidates, runnable, notes, profiled)
            fast = (fingerprint, backend, bp.m, bp.n, bp.k, bp.a_format, bp.out_dtype, bp.has_bias,
                    bp.layout, bp.device)
            self._decisions[(key, backend)] = decision
            if decision.source != "heuristic":
                self._fast[fast] = (REGISTRY.entry(decision.backend).backend, decision.tactic)
            self.stats["decisions"] += 1
            log.debug("nvfp4: %s [%s] -> %s / %s (%s us, %s)", key, backend, decision.backend,
                      describe_tactic(decision.tactic),
                      "-" if decision.time_ms is None else f"{decision.time_ms * 1e3:.1f}", decision.source)
            if profiled and self.autosave_path:
                self.save(self.autosave_path)
            return decision

    def _candidates(self, bp: GemmProblem, backend: str) -> tuple[list[Candidate], list[str]]:
        names = [backend] if backend != AUTO else REGISTRY.names()
        candidates, runnable, fallbacks = [], [], []
        for name in names:
            av = REGISTRY.availability(name)
            if not av.ok:
                candidates.append(Candidate(name, "unavailable", av.reason))
                continue
            b = REGISTRY.entry(name).backend
            reason = b.supports(bp)
            if reason is not None:
                candidates.append(Candidate(name, "unsupported", reason))
                continue
            (fallbacks if b.fallback_only and backend == AUTO else runnable).append(name)
        if backend == AUTO and not runnable:
            runnable = fallbacks
        else:
            for name in fallbacks:
                candidates.append(Candidate(name, "not profiled", "a fallback, and faster backends support this"))
        if not runnable:
            reasons = "; ".join(f"{c.backend}: {c.status} ({c.reason})" for c in candidates) or "none installed"
            raise NoBackendError(f"no available backend supports {bp.describe()}: {reasons}")
        return candidates, runnable

    def _record(self, key: str, name: str, bp: GemmProblem) -> BackendRecord:
        per_key = self._records.setdefault(key, {})
        rec = per_key.get(name)
        if rec is None:
            rec = per_key[name] = self._from_raw(key, name, bp) or BackendRecord()
        return rec

    def _from_raw(self, key: str, name: str, bp: GemmProblem) -> BackendRecord | None:
        raw = self._raw.get(key, {}).get(name)
        if raw is None:
            return None
        tactics = REGISTRY.entry(name).backend.tactics(bp)
        results = []
        for item in raw.get("results", []):
            tactic = find_tactic(tactics, item.get("id", ""))
            if tactic is None:  # the backend no longer offers it: profile afresh
                return None
            results.append(TacticResult(tactic, item.get("time_ms"), item.get("error")))
        self.stats["loaded_entries"] += 1
        return BackendRecord(results, bool(raw.get("complete")))

    def _profile(self, key: str, name: str, bp: GemmProblem, rec: BackendRecord, notes: list[str]) -> bool:
        backend = REGISTRY.entry(name).backend
        done = {tactic_id(r.tactic) for r in rec.results}
        todo = [t for t in backend.tactics(bp) if tactic_id(t) not in done]
        if not todo and rec.results:
            rec.complete = True
            return False
        if not todo:
            raise RuntimeError(f"backend {name!r} offered no tactic for {bp.describe()}")
        inputs = self._inputs_for(bp)
        profiled = False
        for tactic in todo:
            if self.deadline is not None and time.monotonic() > self.deadline:
                self.budget_note = "tuning budget ran out: the best tactic measured so far is used"
                notes.append(f"{name}: {self.budget_note}")
                break
            m = profiler.measure(backend, bp, tactic, inputs, self.timer)
            rec.results.append(TacticResult(tactic, m.time_ms, m.error))
            self.stats["profiled_tactics"] += 1
            profiled = True
            if m.error:
                log.info("nvfp4: %s / %s failed on %s: %s", name, describe_tactic(tactic), bp.describe(), m.error)
        else:
            rec.complete = True
        self._dirty.add((key, name))
        return profiled

    def _inputs_for(self, bp: GemmProblem) -> profiler.Inputs:
        # One set of inputs per problem, shared by every tactic of every backend.
        if self._inputs is None or self._inputs[0] != bp:
            self._inputs = None  # free the previous problem's buffers first
            self._inputs = (bp, profiler.make_inputs(bp))
        return self._inputs[1]

    def _choose(self, key, bp, backend, candidates, runnable, notes, profiled) -> Decision:
        best_name, best = None, None
        for name in runnable:
            rec = self._records[key][name]
            status = "profiled" if (key, name) in self._dirty else "cached"
            candidates.append(Candidate(name, status, "", list(rec.results)))
            b = rec.best()
            if b is not None and (best is None or b.time_ms < best.time_ms):
                best_name, best = name, b
        if best is not None:
            source = "profiled" if profiled else "cache"
            return Decision(key, bp, backend, best_name, best.tactic, best.time_ms, source, candidates, notes)
        # Nothing measured (graph capture, budget spent, or every tactic failed).
        if not any(self._records[key][n].results for n in runnable) or not all(
                self._records[key][n].complete for n in runnable):
            ranked = sorted(runnable, key=lambda n: (-REGISTRY.entry(n).backend.heuristic_priority(bp), n))
            name = ranked[0]
            tactic = REGISTRY.entry(name).backend.heuristic_tactic(bp)
            notes.append("nothing measured yet: heuristic choice (highest priority backend, its heuristic tactic)")
            return Decision(key, bp, backend, name, tactic, None, "heuristic", candidates, notes)
        failures = "; ".join(f"{c.backend} / {describe_tactic(r.tactic)}: {r.error}"
                             for c in candidates for r in c.results)
        raise NoBackendError(f"every tactic failed for {bp.describe()}: {failures}")

    # -- explain, persistence, budget ---------------------------------------------------------------
    def explain(self, problem: GemmProblem, backend: str) -> Decision:
        bp = bucket_problem(problem)
        key = key_string(bp, REGISTRY.fingerprint)
        with self._lock:
            if (key, backend) not in self._decisions:
                self.decide(problem, backend)
            return self._decisions[(key, backend)]

    def load(self, path) -> int:
        entries = cache_file.load(path, self.header())
        with self._lock:
            for key, per_backend in entries.items():
                if isinstance(per_backend, dict):
                    self._raw.setdefault(key, {}).update(per_backend)
        return len(entries)

    def save(self, path, only_dirty: bool = False) -> None:
        with self._lock:
            entries: dict[str, dict] = {}
            for key, per_backend in self._records.items():
                for name, rec in per_backend.items():
                    if only_dirty and (key, name) not in self._dirty:
                        continue
                    if rec.results:
                        entries.setdefault(key, {})[name] = {"complete": rec.complete,
                                                             "results": [r.to_json() for r in rec.results]}
            for key, per_backend in self._raw.items():  # loaded but not used in this process: keep them
                for name, raw in per_backend.items():
                    if not only_dirty and name not in self._records.get(key, {}):
                        entries.setdefault(key, {})[name] = raw
        cache_file.save(path, self.header(), entries)

    def header(self) -> dict:
        REGISTRY.ensure_loaded()
        dev = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
        return cache_file.make_header(device_identity(dev), REGISTRY.fingerprint)

    def forget_incomplete(self) -> None:
        """Drop fast-path entries built on partial records, so the next call finishes profiling."""
        with self._lock:
            incomplete = {key for key, per in self._records.items() if not all(r.complete for r in per.values())}
            for key, backend in list(self._decisions):
                if key in incomplete:
                    del self._decisions[(key, backend)]
            if incomplete:
                self._fast.clear()

    def reset(self) -> None:
        with self._lock:
            self.__init__()


TUNER = Tuner()
