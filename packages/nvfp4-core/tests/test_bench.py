"""The benchmark suite (``nvfp4 bench``): the CPU smoke run end to end, and that no result is dropped."""

from __future__ import annotations

import dataclasses
import json
import math
import time

import pytest
import torch

import nvfp4
from nvfp4.bench import BenchConfig, run_sweep
from nvfp4.bench import shapes as S
from nvfp4.bench.check import Oracle
from nvfp4.bench.report import _auto_section, auto_outliers, render_markdown, summarize
from nvfp4.bench.sweep import _has_contender
from nvfp4.bench.timing import Ceilings
from nvfp4.cli import main as cli_main
from nvfp4.problem import GemmProblem
from nvfp4.reference import gemm_ref_f64

FAST = ["--warmup-ms", "1", "--rep-ms", "3", "--no-progress"]


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_tiny_smoke_run_through_the_cli(tmp_path, capsys, fresh_registry):
    rc = cli_main(["bench", "--tiny", "--device", "cpu", "--backends", "reference", "--out-dir", str(tmp_path),
                   "--name", "smoke", "--strict", *FAST])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "geomean speedup over torch BF16" in printed and "wrote " in printed

    doc = json.loads((tmp_path / "smoke.json").read_text())
    meta = doc["meta"]
    assert meta["card"] == "cpu" and meta["torch"] == torch.__version__ and meta["nvfp4"] == nvfp4.__version__
    assert meta["command"].startswith("nvfp4 bench --shapes 256x128 --m 1,16 --modes weight-only,w4a4")
    assert {"name": "reference", "timed": True}.items() <= next(
        b for b in meta["backends"] if b["name"] == "reference").items()
    assert doc["complete"] is True
    ceil = meta["ceilings"]
    assert ceil["copy_GB_per_s"] > 0 and ceil["bf16_matmul_TFLOP_per_s"] > 0

    points = doc["points"]
    assert [(p["mode"], p["n"], p["k"], p["m"]) for p in points] == [
        (mode, 256, 128, m) for m in (1, 16) for mode in ("weight-only", "w4a4")]
    for p in points:
        tr = S.traffic(p["m"], p["n"], p["k"], p["mode"])
        floor = max(tr.bytes / (ceil["copy_GB_per_s"] * 1e9), tr.flops / (ceil["bf16_matmul_TFLOP_per_s"] * 1e12))
        assert p["floor_us"] == pytest.approx(floor * 1e6, rel=1e-9)
        assert p["bf16_us"] > 0
        assert p["floor_speedup"] == pytest.approx(p["bf16_us"] / p["floor_us"])
        # the read ceiling, timed with the contenders: a plain read of the packed weight data
        assert p["read_us"] > 0 and p["read_speedup"] == pytest.approx(p["bf16_us"] / p["read_us"])
        for name in ("reference", "auto"):
            r = p["results"][name]
            assert r["status"] == "ok", r
            assert r["time_us"] > 0 and r["speedup"] == pytest.approx(p["bf16_us"] / r["time_us"])
            assert r["check"]["ok"] and 0 <= r["check"]["worst_vs_bound"] <= 1
        assert p["results"]["auto"]["chosen"] in [b.name for b in nvfp4.backends()]
        assert (p["quantize_act_us"] is not None) == (p["mode"] == "w4a4")

    ref = doc["summary"]["weight-only"]["M<=16"]["reference"]
    assert ref["ok"] == ref["points"] == 2
    speedups = [p["results"]["reference"]["speedup"] for p in points if p["mode"] == "weight-only"]
    assert ref["geomean"] == pytest.approx(math.sqrt(speedups[0] * speedups[1]))
    assert "M 64-256" not in doc["summary"]["w4a4"]  # no point in that bucket: no row claiming one
    # the read ceiling is summarized only over buckets whose points are all memory-bound
    for mode, buckets in doc["summary"].items():
        for label, lo, hi in S.M_BUCKETS:
            if label in buckets:
                pts = [p for p in points if p["mode"] == mode and lo <= p["m"] <= hi]
                assert (buckets[label]["read"]["geomean"] is not None) == all(
                    p["floor_bound"] == "memory" for p in pts)

    md = (tmp_path / "smoke.md").read_text()
    assert md.startswith("# NVFP4 GEMM benchmark: cpu, ")
    assert f"torch {torch.__version__}" in md and "nvfp4 bench --shapes 256x128" in md
    assert "| N x K | M | floor us (bound) | read us | bf16 us | reference | auto |" in md
    assert "| read | " in md and "read = a plain read of the packed weight data" in md
    assert "| 256 x 128 | 16 |" in md
    assert "## Not measured" not in md
    if _has_matplotlib():
        png = tmp_path / "smoke.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "![speedup over BF16](smoke.png)" in md
    else:
        assert "matplotlib is not installed" in printed


class _Scaled(nvfp4.Backend):
    """Finite but wrong: the right answer times 1.05 (the tuner cannot tell, the oracle must)."""

    name = "bench-test-wrong"

    def run(self, problem, tactic, a, b, *, bias, out):
        out.copy_(gemm_ref_f64(a, b, bias) * 1.05)


class _Raises(nvfp4.Backend):
    name = "bench-test-raises"

    def run(self, problem, tactic, a, b, *, bias, out):
        raise RuntimeError("kernel launch failed")


class _Declines(nvfp4.Backend):
    name = "bench-test-declines"

    def supports(self, problem):
        return f"only K >= 4096 (got K = {problem.k})"


class _Absent(nvfp4.Backend):
    name = "bench-test-absent"

    def availability(self):
        return nvfp4.Availability(False, "needs an sm_90a GPU")


def test_every_failure_is_reported_never_dropped(fresh_registry):
    for b in (_Scaled(), _Raises(), _Declines(), _Absent()):
        nvfp4.register_backend(b)
    names = ("bench-test-wrong", "bench-test-raises", "bench-test-declines", "bench-test-absent", "reference")
    config = BenchConfig(shapes=S.TINY_SHAPES, ms=(1, 16), device="cpu", backends=names, warmup_ms=1, rep_ms=3,
                         progress=False, tiny=True)
    doc = run_sweep(config)
    assert len(doc["points"]) == 4
    for p in doc["points"]:
        r = p["results"]
        assert set(r) == set(names) | {"auto"}
        assert r["bench-test-wrong"]["status"] == "wrong"
        assert "off the float64 reference" in r["bench-test-wrong"]["detail"]
        assert r["bench-test-raises"]["status"] == "failed"
        assert "kernel launch failed" in r["bench-test-raises"]["detail"]
        assert r["bench-test-declines"]["status"] == "unsupported"
        assert "only K >= 4096" in r["bench-test-declines"]["detail"]
        assert r["bench-test-absent"] == {"status": "unavailable", "detail": "needs an sm_90a GPU", "speedup": None}
        assert r["reference"]["status"] == "ok"
        # auto measured the wrong backend as fastest or not: either way its output was checked.
        assert r["auto"]["status"] == ("wrong" if r["auto"].get("chosen") == "bench-test-wrong" else "ok")
    doc["summary"] = summarize(doc)
    assert doc["summary"]["w4a4"]["M<=16"]["bench-test-wrong"] == {"geomean": None, "ok": 0, "points": 2}
    md = render_markdown(doc)
    assert "## Not measured, and why" in md
    assert "- card: " in md and "GiB" not in md  # a CPU run has no GPU properties
    doc["meta"].update(capability="sm_90", sm_count=132, memory_GiB=139.8, gpu_uuid="GPU-1f9a4ed2")
    assert "(sm_90, 132 SMs, 139.8 GiB; GPU-1f9a4ed2)" in render_markdown(doc)  # which physical card ran it
    for text in ("**bench-test-wrong** wrong", "**bench-test-raises** failed", "**bench-test-declines** unsupported",
                 "**bench-test-absent** unavailable", "needs an sm_90a GPU"):
        assert text in md


@dataclasses.dataclass(frozen=True)
class _Delay:
    ms: float


class _Delays(nvfp4.Backend):
    """Right, after a pause its tactic names: the tuner's ranking of its tactics is known in advance (the pauses
    differ by far more than the float64 reference's own time varies on a busy CPU)."""

    name = "bench-test-delays"

    def tactics(self, problem):
        return [_Delay(80.0), _Delay(0.0), _Delay(40.0), _Delay(120.0), _Delay(160.0)]

    def run(self, problem, tactic, a, b, *, bias, out):
        time.sleep(tactic.ms / 1e3)
        out.copy_(gemm_ref_f64(a, b, bias))


def test_results_record_the_tuners_fastest_tactics(fresh_registry):
    """Each result keeps the tuner's four fastest measurements, fastest first: how close the choice was."""
    nvfp4.register_backend(_Delays())
    config = BenchConfig(shapes=S.TINY_SHAPES, ms=(1,), modes=("weight-only",), device="cpu",
                         backends=("bench-test-delays", "reference"), warmup_ms=1, rep_ms=3, progress=False, tiny=True)
    (point,) = run_sweep(config)["points"]
    r = point["results"]["bench-test-delays"]
    assert r["status"] == "ok" and r["tactics_profiled"] == 5
    fastest = r["tuner_fastest"]
    assert [f["tactic"] for f in fastest] == [f"_Delay(ms={ms})" for ms in (0.0, 40.0, 80.0, 120.0)]
    assert {f["backend"] for f in fastest} == {"bench-test-delays"}
    assert fastest[0]["tactic"] == r["tactic"] and fastest[0]["tuner_us"] == r["tuner_us"]
    assert all(a["tuner_us"] < b["tuner_us"] for a, b in zip(fastest, fastest[1:]))
    assert fastest[1]["tuner_us"] > 40e3  # a 40 ms pause, measured
    # auto ranks every backend's tactics together, each named with its backend
    auto = point["results"]["auto"]
    assert auto["tuner_fastest"][0]["backend"] == auto["chosen"]
    assert {f["backend"] for f in auto["tuner_fastest"]} <= {"bench-test-delays", "reference"}


class _DropsBias(nvfp4.Backend):
    """Right except that it leaves the bias out."""

    name = "bench-test-drops-bias"

    def run(self, problem, tactic, a, b, *, bias, out):
        out.copy_(gemm_ref_f64(a, b))


def test_bias_runs_checks_and_reports_the_biased_problem(tmp_path, capsys, fresh_registry):
    nvfp4.register_backend(_DropsBias())
    rc = cli_main(["bench", "--tiny", "--device", "cpu", "--bias", "--backends", "reference,bench-test-drops-bias",
                   "--out-dir", str(tmp_path), "--name", "bias", *FAST])
    assert rc == 0, capsys.readouterr()
    doc = json.loads((tmp_path / "bias.json").read_text())
    assert doc["meta"]["config"]["bias"] is True and " --bias" in doc["meta"]["command"]
    for p in doc["points"]:
        r = p["results"]
        assert r["reference"]["status"] == "ok", r["reference"]  # the oracle and the baseline carry the bias
        assert r["bench-test-drops-bias"]["status"] == "wrong", r["bench-test-drops-bias"]
        assert r["auto"]["status"] == ("wrong" if r["auto"].get("chosen") == "bench-test-drops-bias" else "ok")
    assert "bias: bf16 [N] (baseline: torch.addmm)" in (tmp_path / "bias.md").read_text()

    rc = cli_main(["bench", "--tiny", "--device", "cpu", "--backends", "reference", "--out-dir", str(tmp_path),
                   "--name", "nobias", *FAST])
    assert rc == 0
    doc = json.loads((tmp_path / "nobias.json").read_text())
    assert doc["meta"]["config"]["bias"] is False and "--bias" not in doc["meta"]["command"]
    assert "; no bias" in (tmp_path / "nobias.md").read_text()


def test_read_ceiling_is_summarized_only_where_memory_bound():
    """The read is what a memory-bound GEMM can reach; at compute-bound M it is no ceiling (the H100 run of
    2026-12-07 summarized 27x at M >= 1024), so a bucket with any compute-bound point has no read geomean."""
    def point(m, bound, read):
        return {"mode": "weight-only", "m": m, "floor_bound": bound, "floor_speedup": 2.0, "read_speedup": read,
                "results": {}}
    doc = {"meta": {"config": {"modes": ["weight-only"]}, "backends": []},
           "points": [point(1, "memory", 2.0), point(16, "memory", 8.0), point(64, "memory", 3.0),
                      point(256, "compute", 3.0), point(4096, "compute", 30.0)]}
    summary = summarize(doc)["weight-only"]
    assert summary["M<=16"]["read"]["geomean"] == pytest.approx(4.0)
    assert summary["M 64-256"]["read"] == {"geomean": None, "ok": 0, "points": 2}
    assert summary["M>=1024"]["read"]["geomean"] is None
    assert summary["M>=1024"]["floor"]["geomean"] == pytest.approx(2.0)  # the floor stays everywhere


def test_reference_is_not_timed_above_its_limit(fresh_registry):
    config = BenchConfig(shapes=S.TINY_SHAPES, ms=(16,), modes=("weight-only",), device="cpu",
                         backends=("reference",), warmup_ms=1, rep_ms=3, progress=False,
                         reference_max_macs=256 * 128)
    (p,) = run_sweep(config)["points"]
    assert p["results"]["reference"]["status"] == "skipped"
    assert "oracle" in p["results"]["reference"]["detail"]
    problem = GemmProblem(16, 256, 128, "bf16", torch.bfloat16, False, "linear", torch.device("cpu"))
    if _has_contender(problem):
        assert p["results"]["auto"]["status"] == "ok"
    else:
        assert p["results"]["auto"]["status"] == "skipped"
        assert "fallback" in p["results"]["auto"]["detail"]


def test_oracle_catches_wrong_rows_outside_the_sample():
    gen = torch.Generator().manual_seed(1)
    w = nvfp4.quantize(torch.randn(96, 64, generator=gen))
    x = torch.randn(64, 64, generator=gen).to(torch.bfloat16)
    exact = gemm_ref_f64(x, w).to(torch.bfloat16)
    baseline = x @ nvfp4.dequantize(w, torch.bfloat16).t()
    oracle = Oracle(x, w, baseline, max_rows=4, seed=3)
    assert oracle.check(exact).ok
    rows = set(oracle.rows.tolist())
    assert {0, 63} <= rows and len(rows) == 4
    bad = exact.clone()
    victim = next(r for r in range(64) if r not in rows)
    bad[victim] = -bad[victim]
    res = oracle.check(bad)
    assert not res.ok and "BF16 baseline" in res.message
    hole = exact.clone()
    hole[victim, 5] = float("nan")
    assert "non-finite" in oracle.check(hole).message


def test_parsing_and_floor_arithmetic():
    assert S.parse_shapes("8192x8192, 6144X4096") == ((8192, 8192), (6144, 4096))
    assert S.parse_ms("16,1,16") == (1, 16)
    assert S.parse_modes("w4a4,weight-only") == ("weight-only", "w4a4")
    for bad, fn in (("8192x8190", S.parse_shapes), ("8192", S.parse_shapes), ("0", S.parse_ms),
                    ("w8a8", S.parse_modes), ("", S.parse_ms)):
        with pytest.raises(ValueError, match="--"):
            fn(bad)
    tr = S.traffic(1, 8192, 8192, "weight-only")
    assert tr.weight_bytes == 8192 * (4096 + 512) + 4 and tr.act_bytes == 8192 * 2 and tr.out_bytes == 8192 * 2
    assert S.traffic(16, 8192, 8192, "w4a4").act_bytes == 16 * (4096 + 512) + 4
    c = Ceilings(copy_bytes_per_s=3.02e12, matmul_flops_per_s=731e12, copy_size_bytes=1 << 30, matmul_size=8192)
    t, bound = c.floor_s(tr.bytes, tr.flops)
    assert bound == "memory" and t * 1e6 == pytest.approx(12.5, rel=0.01)  # the H100 anchor in the design notes
    big = S.traffic(8192, 8192, 8192, "weight-only")
    t, bound = c.floor_s(big.bytes, big.flops)
    assert bound == "compute" and t * 1e6 == pytest.approx(1504, rel=0.01)


def test_cli_rejects_bad_options(tmp_path, capsys):
    out = tmp_path / "never-made"
    assert cli_main(["bench", "--device", "cpu", "--backends", "no-such-backend", "--tiny", "--out-dir", str(out),
                     *FAST]) == 2
    assert "no-such-backend not installed" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit):
        cli_main(["bench", "--shapes", "8192x100"])
    assert "--shapes" in capsys.readouterr().err


def test_auto_slower_than_its_own_choice_is_listed():
    def point(m, auto_us, chosen_us, tactic="t1"):
        return {"mode": "weight-only", "n": 64, "k": 128, "m": m, "results": {
            "x": {"status": "ok", "time_us": chosen_us, "tactic": "t1"},
            "auto": {"status": "ok", "time_us": auto_us, "chosen": "x", "tactic": tactic}}}
    doc = {"points": [point(1, 10.4, 10.0), point(2, 30.0, 10.0), point(3, 12.0, 10.0, tactic="t2"),
                      {"mode": "weight-only", "n": 64, "k": 128, "m": 4,
                       "results": {"auto": {"status": "failed", "detail": "boom"}}}]}
    compared, slow = auto_outliers(doc)
    assert compared == 3  # the failed auto point has nothing to compare
    assert [p["m"] for p, _, _ in slow] == [2, 3]
    text = "\n".join(_auto_section(doc))
    assert "at 1 of 3 points. Slower at:" in text
    assert "| weight-only | 64 x 128 | 2 | x | 30.0 | 10.0 | yes |" in text
    assert "| weight-only | 64 x 128 | 3 | x | 12.0 | 10.0 | no |" in text
    assert _auto_section({"points": []}) == []


def test_timer_alternates_the_contenders_over_rounds():
    from nvfp4.bench.timing import Timer

    order = []

    def fn(name, fail_after=None):
        def run():
            order.append(name)
            if fail_after is not None and order.count(name) > fail_after:
                raise RuntimeError(f"{name} broke")
        return run

    timer = Timer(torch.device("cpu"), 0.0, 3.0, rounds=3)
    assert "3 rounds" in timer.describe()
    got = timer.interleaved_ms({"a": fn("a"), "b": fn("b"), "c": fn("c", fail_after=0)})
    assert got["a"] > 0 and got["b"] > 0
    assert isinstance(got["c"], RuntimeError) and order.count("c") == 1  # not run again once it raised
    runs = [n for i, n in enumerate(order) if i == 0 or order[i - 1] != n]
    # round 1 a, b, c; round 2 starts at b (b, then c is skipped, a); round 3 at c (skipped: a, b)
    assert runs == ["a", "b", "c", "b", "a", "b"]
    with pytest.raises(ValueError, match="rounds"):
        Timer(torch.device("cpu"), 0.0, 3.0, rounds=0)


def test_each_round_starts_at_another_contender():
    from nvfp4.bench.timing import round_order

    names = ["bf16", "read", "cublaslt", "cutedsl", "cutlass", "auto"]
    orders = [round_order(names, r, 3) for r in range(3)]
    assert [o[0] for o in orders] == ["bf16", "cublaslt", "cutlass"]
    for name in names:
        assert sorted(o.index(name) for o in orders) in ([0, 2, 4], [1, 3, 5])  # early, midway, late
    assert all(sorted(o) == sorted(names) for o in orders)
    assert round_order(names, 0, 1) == names and round_order([], 2, 3) == []


def test_a_contender_failing_only_while_timed_is_reported(fresh_registry, monkeypatch):
    from nvfp4.bench import timing

    original = timing.Timer.interleaved_ms

    def flaky(self, fns):
        got = original(self, fns)
        assert {"bf16", "reference", "auto"} <= set(got)  # the baseline is timed in the same rounds
        return {**got, "reference": RuntimeError("boom"), "bf16": RuntimeError("baseline boom")}

    monkeypatch.setattr(timing.Timer, "interleaved_ms", flaky)
    config = BenchConfig(shapes=S.TINY_SHAPES, ms=(1,), modes=("weight-only",), device="cpu",
                         backends=("reference",), warmup_ms=1, rep_ms=3, progress=False)
    (p,) = run_sweep(config)["points"]
    r = p["results"]["reference"]
    assert r["status"] == "failed" and r["detail"] == "timing: RuntimeError: boom" and r["speedup"] is None
    assert r["check"]["ok"]  # it was checked before it was timed
    assert p["bf16_us"] is None and p["bf16_error"] == "timing: RuntimeError: baseline boom"
    assert p["results"]["auto"]["status"] == "ok" and p["results"]["auto"]["time_us"] > 0
    assert p["results"]["auto"]["speedup"] is None  # no baseline time, no ratio


def test_gpu_timing_counts_the_flush_in_its_repetition_budget(monkeypatch):
    # The events method times each call after a 256 MiB flush; rep_ms must bound the repetitions' wall time,
    # flushes included, or a 25 us kernel after a 75 us flush takes four times its budget. Faked on the CPU:
    # each "timed" call reports 0.025 ms but costs 0.1 ms of wall time.
    import time as _time

    from nvfp4.bench import timing

    calls = []

    def fake_time_reps(fn, device, reps):
        calls.append(reps)
        _time.sleep(reps * 1e-4)
        return [0.025] * reps

    monkeypatch.setattr(timing, "time_reps", fake_time_reps)
    timer = timing.Timer(torch.device("cpu"), 0.0, 20.0, method="cuda_events")
    assert "reading 256 MiB" in timer.describe()
    assert timer.median_ms(lambda: None) == 0.025
    # 20 ms at >= 0.1 ms a repetition: at most 200 (sleep only lengthens it), not the 800 of 20 / 0.025
    assert calls[:2] == [1, 3] and timing.MIN_REPS <= calls[-1] <= 200
    assert timing.Timer(torch.device("cpu"), 0.0, 1.0).method == "perf_counter"
