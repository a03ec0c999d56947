"""The sweep: for each shape, each M and each mode, the baseline, every backend, auto and the floor.

Per shape the NVFP4 weight is quantized once and reused across M and modes; its
BF16 dequantization is the baseline's weight (``x_bf16 @ w_bf16.T``, what a
BF16 model runs). Per (M, mode) every contender is first checked against the
float64 oracle on the inputs it is then timed on; then the baseline and every
checked contender are timed with the run's one method, in rounds that alternate
them (``Timer.interleaved_ms``). A contender that is unavailable, declines the
problem, raises or computes a wrong result gets that status in the results:
never dropped.
"""

from __future__ import annotations

import contextlib
import gc
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .. import registry
from ..backend import describe_tactic
from ..errors import BackendUnavailableError, UnsupportedProblemError
from ..explain import explain
from ..gemm import AUTO, gemm
from ..layouts import LAYOUTS, LINEAR, SWIZZLED
from ..problem import GemmProblem
from ..quantize import default_global_scale, dequantize, quantize
from . import shapes as S
from .check import Oracle
from .report import READ
from .timing import Ceilings, Timer, measure_ceilings

OK, WRONG, FAILED, UNAVAILABLE, UNSUPPORTED, SKIPPED = "ok", "wrong", "failed", "unavailable", "unsupported", "skipped"
OUT_DTYPE = torch.bfloat16
#: Timing rounds of a point: each round times the baseline and every contender once (rep_ms / TIMING_ROUNDS).
TIMING_ROUNDS = 3
BASELINE = "bf16"


@dataclass
class BenchConfig:
    shapes: tuple[tuple[int, int], ...] = S.LLAMA3_SHAPES
    ms: tuple[int, ...] = S.LLAMA3_MS
    modes: tuple[str, ...] = S.MODES
    #: Backend names to time (None: every installed one). Auto always chooses among all installed.
    backends: tuple[str, ...] | None = None
    device: str | None = None
    layout: str = LINEAR
    #: Add a bf16 bias of N values (the baseline then runs ``torch.addmm``).
    bias: bool = False
    warmup_ms: float = 10.0
    rep_ms: float = 40.0
    #: Stop starting new points after this long; the results say the run is incomplete.
    max_minutes: float | None = None
    tune_budget_s: float | None = None
    tuning_cache: str | None = None
    #: A fallback-only backend (the reference oracle) is not timed above this M*N*K (None: by device).
    reference_max_macs: int | None = None
    check_rows: int = 256
    seed: int = 0
    copy_bytes: int | None = None
    matmul_size: int | None = None
    progress: bool = True
    tiny: bool = False
    #: The command line recorded in the results (default: sys.argv).
    command: str | None = None
    #: Called with the partial results after each shape (the entry points write files from it).
    on_shape_done: Callable[[dict], None] | None = field(default=None, repr=False)

    def torch_device(self) -> torch.device:
        if self.device is None:
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if not isinstance(self.device, (str, torch.device)):
            raise TypeError(f"device must be a string or torch.device, got {type(self.device).__name__}")
        dev = torch.device(self.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {self.device!r}: CUDA is not available here (torch {torch.__version__})")
        if dev.type not in ("cuda", "cpu"):
            raise ValueError(f"--device must be cpu or cuda[:index], got {self.device!r}")
        return dev

    def resolved_device(self) -> torch.device:
        """``torch_device()`` with the CUDA index filled in (tuning keys and tensors name it)."""
        dev = self.torch_device()
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        return dev

    def validate(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"--layout must be one of {LAYOUTS}, got {self.layout!r}")
        if not self.shapes or not self.ms or not self.modes:
            raise ValueError("--shapes, --m and --modes each need at least one value")
        if self.check_rows < 2:
            raise ValueError(f"--check-rows must be >= 2, got {self.check_rows}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"--max-minutes must be > 0, got {self.max_minutes}")


def selected_backends(config: BenchConfig) -> list[str]:
    """The names to time: installed ones (fallback-only last), filtered by ``config.backends``."""
    installed = registry.REGISTRY.names()
    if config.backends is not None:
        unknown = [b for b in config.backends if b not in installed]
        if unknown:
            raise ValueError(f"--backends: {', '.join(unknown)} not installed (installed: "
                             f"{', '.join(installed) or 'none'})")
        installed = [b for b in installed if b in config.backends]
    return sorted(installed, key=lambda n: (registry.REGISTRY.entry(n).backend.fallback_only, n))


class _Progress:
    """A tqdm bar on a terminal, else one short line a point (logs stay readable); one line a shape."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        self.enabled = enabled
        self.total, self.count, self.t0 = total, 0, time.monotonic()
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="pt", mininterval=2.0, file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                pass

    def step(self, text: str) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.set_description(text, refresh=False)
            self.bar.update(1)
        elif self.enabled:
            print(f"  {text} ({self.count}/{self.total}, {time.monotonic() - self.t0:.0f} s)", flush=True)

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_sweep(config: BenchConfig) -> dict:
    """Run the benchmark and return its results (the JSON document ``report`` writes)."""
    from .report import collect_meta  # report imports sweep's constants

    config.validate()
    dev = config.resolved_device()
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    names = selected_backends(config)
    timer = Timer(dev, config.warmup_ms, config.rep_ms, rounds=TIMING_ROUNDS)
    copy_bytes = config.copy_bytes or ((1 << 30) if dev.type == "cuda" else (32 << 20))
    matmul_size = config.matmul_size or (8192 if dev.type == "cuda" else 512)
    ref_max = config.reference_max_macs or ((1 << 24) if dev.type == "cuda" else (1 << 32))
    t0 = time.monotonic()
    ceilings = measure_ceilings(timer, copy_bytes, matmul_size)
    results = {"schema": 1, "meta": collect_meta(config, dev, timer, ceilings, names, ref_max),
               "points": [], "complete": False}
    total = len(config.shapes) * len(config.ms)
    progress = _Progress(total, config.progress)
    progress.write(f"nvfp4 bench: {total} (shape, M) points x {len(config.modes)} modes on "
                   f"{results['meta']['card']}; contenders: bf16, {', '.join(names) or '(no backend)'}, auto; "
                   f"ceilings {ceilings.copy_bytes_per_s / 1e9:.0f} GB/s copy, "
                   f"{ceilings.matmul_flops_per_s / 1e12:.3g} TFLOP/s bf16")
    tune_scope = contextlib.nullcontext()
    if config.tune_budget_s is not None or config.tuning_cache is not None:
        from ..tuning import autotune

        tune_scope = autotune(config.tuning_cache, config.tune_budget_s)
    deadline = None if config.max_minutes is None else t0 + 60.0 * config.max_minutes
    done = 0
    try:
        with tune_scope:
            for si, (n, k) in enumerate(config.shapes):
                if deadline is not None and time.monotonic() > deadline:
                    break
                ts = time.monotonic()
                try:
                    runner = _ShapeRunner(config, dev, n, k, names, timer, ceilings, ref_max)
                except Exception as exc:  # e.g. out of memory making the weight: every point says so
                    _free_after_error(dev)
                    msg = f"weight setup: {type(exc).__name__}: {exc}"
                    for m in config.ms:
                        results["points"] += [failed_point(m, n, k, mode, names, msg) for mode in config.modes]
                        done += 1
                        progress.step(f"{n}x{k} M={m} (failed)")
                    continue
                try:
                    for m in config.ms:
                        if deadline is not None and time.monotonic() > deadline:
                            break
                        results["points"] += runner.run_m(m)
                        done += 1
                        progress.step(f"{n}x{k} M={m}")
                finally:
                    runner.release()
                progress.write(f"[{si + 1}/{len(config.shapes)}] {n}x{k} done in {time.monotonic() - ts:.1f} s "
                               f"({time.monotonic() - t0:.0f} s so far)")
                if config.on_shape_done is not None:
                    config.on_shape_done(results)
    finally:
        progress.close()
        timer.release()
    results["complete"] = done == total
    if done != total:
        results["incomplete_reason"] = (f"time limit of {config.max_minutes:g} min reached after {done} of "
                                        f"{total} (shape, M) points")
    results["elapsed_s"] = time.monotonic() - t0
    return results


class _ShapeRunner:
    """One weight shape: the weight quantized once, reused for every M and mode, freed at the end."""

    def __init__(self, config: BenchConfig, dev, n, k, names, timer: Timer, ceilings: Ceilings, ref_max: int):
        self.config, self.dev, self.n, self.k = config, dev, n, k
        self.names, self.timer, self.ceilings, self.ref_max = names, timer, ceilings, ref_max
        self.gen = torch.Generator(device=dev).manual_seed(config.seed * 1_000_003 + n * 131 + k)
        w = torch.randn(n, k, generator=self.gen, device=dev, dtype=torch.float32)
        self.w = {config.layout: quantize(w, layout=config.layout)}
        del w
        self.w_bf16 = dequantize(self.w[config.layout], torch.bfloat16)
        self.bias = (torch.randn(n, generator=self.gen, device=dev, dtype=torch.float32).to(OUT_DTYPE)
                     if config.bias else None)
        # What the read ceiling reads: the packed weight data, as 4-byte words where K allows (K % 8 == 0)
        data = self.w[config.layout].data
        self.w_words = data.view(torch.int32) if data.shape[-1] % 4 == 0 else data

    def read_weight(self) -> torch.Tensor:
        """A plain read of the packed weight data (every byte once), which every backend's kernel must do too."""
        # torch.any, not an int64 sum: on the H100 (2026-12-07, 8192x8192 packed, do_bench) torch.sum(int32 words,
        # dtype=int64) took 77.5 us where any() and a float32 sum took 24.6 and 24.4 us: the widening sum is not
        # bound by memory, so it measured its own arithmetic, not the read.
        return torch.any(self.w_words)

    def weight(self, layout: str):
        if layout not in self.w:
            self.w[layout] = self.w[self.config.layout].to_layout(layout)
        return self.w[layout]

    def release(self) -> None:
        self.w, self.w_bf16, self.w_words, self.bias = {}, None, None, None
        gc.collect()
        if self.dev.type == "cuda":
            torch.cuda.empty_cache()

    # -- one M: the baseline's output once, then each mode -----------------------------------------------
    def run_m(self, m: int) -> list[dict]:
        n, k = self.n, self.k
        x = torch.randn(m, k, generator=self.gen, device=self.dev, dtype=torch.float32).to(torch.bfloat16)
        base_out = torch.empty(m, n, device=self.dev, dtype=OUT_DTYPE)
        if self.bias is None:
            baseline, bf16_error = (lambda: torch.mm(x, self.w_bf16.t(), out=base_out)), None
        else:  # what a BF16 layer with a bias runs (F.linear's path)
            baseline, bf16_error = (lambda: torch.addmm(self.bias, x, self.w_bf16.t(), out=base_out)), None
        try:
            baseline()
        except Exception as exc:  # reported on every point of this M; the backends still run, unchecked by it
            bf16_error = f"{type(exc).__name__}: {exc}"
            baseline = base_out = None
            _free_after_error(self.dev)
        points = []
        for mode in self.config.modes:
            try:
                points.append(self.run_mode(m, mode, x, base_out, baseline, bf16_error))
            except Exception as exc:  # making the activation or the oracle failed (out of memory)
                _free_after_error(self.dev)
                msg = f"point setup: {type(exc).__name__}: {exc}"
                points.append(failed_point(m, self.n, self.k, mode, self.names, msg))
        return points

    def run_mode(self, m, mode, x, base_out, baseline, bf16_error) -> dict:
        n, k = self.n, self.k
        layout = self.config.layout
        tr = S.traffic(m, n, k, mode)
        floor_s, bound = self.ceilings.floor_s(tr.bytes, tr.flops)
        point = {"mode": mode, "n": n, "k": k, "m": m, "bytes": tr.bytes, "flops": tr.flops,
                 "floor_us": floor_s * 1e6, "floor_bound": bound, "read_us": None, "bf16_us": None,
                 "bf16_error": bf16_error, "quantize_act_us": None, "results": {}}
        acts = {}
        if mode == S.WEIGHT_ONLY:
            acts[layout] = x
            oracle_base = base_out
        else:
            gs = default_global_scale(x)
            acts[layout] = quantize(x, global_scale=gs, layout=layout, check_finite=False)
            with contextlib.suppress(Exception):  # optional column: a failing quantizer shows as "-"
                point["quantize_act_us"] = self.timer.median_ms(
                    lambda: quantize(x, global_scale=gs, layout=layout, check_finite=False)) * 1e3
            # The baseline output for W4A4 is the BF16 product of the dequantized activation.
            oracle_base = None if base_out is None else dequantize(acts[layout], torch.bfloat16) @ self.w_bf16.t()
            if oracle_base is not None and self.bias is not None:
                oracle_base += self.bias

        def act(lay: str):
            if lay not in acts:
                acts[lay] = x if mode == S.WEIGHT_ONLY else acts[layout].to_layout(lay)
            return acts[lay]

        oracle = Oracle(acts[layout], self.weight(layout), oracle_base, bias=self.bias, out_dtype=OUT_DTYPE,
                        max_rows=self.config.check_rows, seed=self.config.seed + m)
        out = torch.empty(m, n, device=self.dev, dtype=OUT_DTYPE)
        macs = m * n * k
        timed: dict[str, Callable[[], object]] = {} if baseline is None else {BASELINE: baseline}
        timed[READ] = self.read_weight
        for name in self.names:
            point["results"][name] = self._backend(name, m, mode, act, oracle, out, macs, timed)
        point["results"][AUTO] = self._auto(m, mode, acts[layout], oracle, out, macs, timed)
        for name, t in self.timer.interleaved_ms(timed).items():
            if name == READ:
                point["read_us"] = None if isinstance(t, Exception) else t * 1e3
            elif name == BASELINE:
                if isinstance(t, Exception):
                    point["bf16_error"] = f"timing: {type(t).__name__}: {t}"
                else:
                    point["bf16_us"] = t * 1e3
            elif isinstance(t, Exception):
                point["results"][name].update(status=FAILED, detail=f"timing: {type(t).__name__}: {t}")
            else:
                point["results"][name]["time_us"] = t * 1e3
        if any(isinstance(t, Exception) for t in timed.values()):
            _free_after_error(self.dev)
        bf16_us = point["bf16_us"]
        for r in point["results"].values():
            t = r.get("time_us")
            r["speedup"] = (bf16_us / t) if (t and bf16_us) else None
        point["floor_speedup"] = (bf16_us / point["floor_us"]) if bf16_us else None
        point["read_speedup"] = (bf16_us / point["read_us"]) if bf16_us and point["read_us"] else None
        return point

    # -- contenders ------------------------------------------------------------------------------------
    def _skip_fallback(self, macs: int) -> str | None:
        if macs > self.ref_max:
            return (f"an oracle, not a contender: not timed above M*N*K = 2^{int(math.log2(self.ref_max))} "
                    f"on {self.dev.type}")
        return None

    def _backend(self, name, m, mode, act, oracle, out, macs, timed) -> dict:
        reg = registry.REGISTRY
        av = reg.availability(name)
        if not av.ok:
            return {"status": UNAVAILABLE, "detail": av.reason}
        if reg.entry(name).backend.fallback_only:
            why = self._skip_fallback(macs)
            if why:
                return {"status": SKIPPED, "detail": why}
        other = SWIZZLED if self.config.layout == LINEAR else LINEAR
        declined = []
        for layout in (self.config.layout, other):
            a, w = act(layout), self.weight(layout)
            try:
                decision = explain(a, w, bias=self.bias, out_dtype=OUT_DTYPE, backend=name)
            except UnsupportedProblemError as exc:
                declined.append(f"{layout}: {exc}")
                continue
            except BackendUnavailableError as exc:
                return {"status": UNAVAILABLE, "detail": str(exc)}
            except Exception as exc:  # every tactic failed while tuning, or the backend raised
                _free_after_error(self.dev)
                return {"status": FAILED, "detail": f"tuning: {type(exc).__name__}: {exc}", "layout": layout}
            rec = _decision_fields(decision)
            rec["layout"] = layout
            rec.update(self._check(name, lambda o, a=a, w=w: gemm(a, w, bias=self.bias, out_dtype=OUT_DTYPE,
                                                                  backend=name, out=o),
                                   oracle, out, timed))
            return rec
        return {"status": UNSUPPORTED, "detail": "; ".join(declined)}

    def _auto(self, m, mode, a, oracle, out, macs, timed) -> dict:
        layout = self.config.layout
        w = self.weight(layout)
        problem = GemmProblem(m, self.n, self.k, S.MODE_A_FORMAT[mode], OUT_DTYPE, self.bias is not None, layout,
                              self.dev)
        if not _has_contender(problem):
            why = self._skip_fallback(macs)
            if why:
                return {"status": SKIPPED, "detail": f"auto would run a fallback backend (no other backend "
                                                     f"supports this problem), which is {why}"}
        try:
            decision = explain(a, w, bias=self.bias, out_dtype=OUT_DTYPE, backend=AUTO)
        except Exception as exc:  # NoBackendError included: reported, never dropped
            _free_after_error(self.dev)
            return {"status": FAILED, "detail": f"tuning: {type(exc).__name__}: {exc}", "layout": layout}
        rec = _decision_fields(decision)
        rec["chosen"] = decision.backend
        rec["layout"] = layout
        rec.update(self._check(AUTO, lambda o: gemm(a, w, bias=self.bias, out_dtype=OUT_DTYPE, backend=AUTO, out=o),
                               oracle, out, timed))
        return rec

    def _check(self, name: str, run: Callable[[torch.Tensor], object], oracle: Oracle, out: torch.Tensor,
               timed: dict) -> dict:
        """Run once into a NaN-filled ``out`` and check it; a correct contender joins ``timed`` (timed later,
        with the others, by run_mode) and its time_us is filled in then."""
        out.fill_(float("nan"))
        try:
            run(out)
            if self.dev.type == "cuda":
                torch.cuda.synchronize(self.dev)
        except Exception as exc:
            _free_after_error(self.dev)
            return {"status": FAILED, "detail": f"run: {type(exc).__name__}: {exc}"}
        check = oracle.check(out)
        if not check.ok:
            return {"status": WRONG, "detail": check.message, "check": check.to_json()}
        timed[name] = lambda: run(out)
        return {"status": OK, "time_us": None, "check": check.to_json()}


def failed_point(m, n, k, mode, names, message) -> dict:
    """A point whose setup failed: every contender carries the message."""
    tr = S.traffic(m, n, k, mode)
    return {"mode": mode, "n": n, "k": k, "m": m, "bytes": tr.bytes, "flops": tr.flops, "floor_us": None,
            "floor_bound": None, "read_us": None, "bf16_us": None, "bf16_error": None, "quantize_act_us": None,
            "floor_speedup": None, "read_speedup": None,
            "results": {name: {"status": FAILED, "detail": message, "speedup": None} for name in [*names, AUTO]}}


#: How many of the tuner's fastest measurements a result records (the choice and the runners-up).
TUNER_FASTEST = 4


def _decision_fields(decision) -> dict:
    tried = [(c.backend, r) for c in decision.candidates for r in c.results]
    measured = sorted((br for br in tried if br[1].time_ms is not None), key=lambda br: br[1].time_ms)
    fields = {"tactic": describe_tactic(decision.tactic), "decision_source": decision.source,
              "tuner_us": None if decision.time_ms is None else decision.time_ms * 1e3,
              "tactics_profiled": len(tried), "tactics_failed": sum(r.time_ms is None for _, r in tried),
              # the runners-up on record: how close the choice was, without another run to ask the tuner
              "tuner_fastest": [{"backend": b, "tactic": describe_tactic(r.tactic), "tuner_us": r.time_ms * 1e3}
                                for b, r in measured[:TUNER_FASTEST]]}
    if decision.notes:
        fields["notes"] = list(decision.notes)
    return fields


def _has_contender(problem: GemmProblem) -> bool:
    """Whether auto has a backend other than a fallback (the reference) for ``problem``."""
    reg = registry.REGISTRY
    for name in reg.names():
        b = reg.entry(name).backend
        if b.fallback_only or not reg.availability(name).ok:
            continue
        try:
            if b.supports(problem) is None:
                return True
        except Exception:  # a broken supports() is the tuner's to report
            return True
    return False


def _free_after_error(dev: torch.device) -> None:
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
