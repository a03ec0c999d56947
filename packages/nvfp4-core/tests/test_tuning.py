"""Auto-selection: measuring, choosing, caching, persisting and explaining (deterministic, CPU)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import nvfp4
from core_fakes import CLOCK, CostedBackend
from nvfp4.tuning import TUNER, m_bucket, selector, stats
from nvfp4.tuning.keys import key_string


@pytest.fixture
def tuner(fresh_registry, monkeypatch):
    TUNER.timer = CLOCK.timer
    monkeypatch.delenv("NVFP4_TUNING_CACHE", raising=False)
    monkeypatch.setattr(sys.modules["nvfp4.tuning.autotune"], "_env_loaded", False)
    return TUNER


def _ops(m=4, n=32, k=64):
    return torch.randn(m, k).bfloat16(), nvfp4.quantize(torch.randn(n, k))


def test_m_buckets_are_powers_of_two_capped():
    assert [m_bucket(m) for m in (1, 2, 3, 16, 17, 1000, 8192, 100000)] == [1, 2, 4, 16, 32, 1024, 8192, 8192]


def test_auto_picks_the_cheapest_backend_and_tactic(tuner):
    slow, fast = CostedBackend("slow", [5.0, 3.0]), CostedBackend("fast", [2.0, 1.0, 4.0])
    nvfp4.register_backend(slow)
    nvfp4.register_backend(fast)
    x, w = _ops()
    d = nvfp4.explain(x, w)
    assert (d.backend, d.tactic.cost_ms, d.time_ms) == ("fast", 1.0, 1.0)
    names = {c.backend for c in d.candidates}
    assert {"slow", "fast", "reference"} <= names
    ref = next(c for c in d.candidates if c.backend == "reference")
    assert ref.status == "not profiled"  # the fallback is not a contender when others support the problem
    text = str(d)
    assert "CHOSEN" in text and "slow" in text and "fast" in text
    before = fast.calls
    y = nvfp4.gemm(x, w)
    assert fast.calls == before + 1 and stats()["hits"] >= 0
    torch.testing.assert_close(y, nvfp4.gemm_ref(x, w))


def test_a_key_hit_profiles_nothing(tuner):
    nvfp4.register_backend(CostedBackend("one", [1.0, 2.0]))
    x, w = _ops()
    nvfp4.gemm(x, w)
    profiled = stats()["profiled_tactics"]
    for m in (3, 4):  # same bucket
        nvfp4.gemm(torch.randn(m, 64).bfloat16(), w)
    assert stats()["profiled_tactics"] == profiled and stats()["hits"] == 2


def test_failing_and_nan_tactics_are_never_chosen(tuner):
    nvfp4.register_backend(CostedBackend("flaky", [0.5, 0.7, 3.0], fail=[0.5], nan=[0.7]))
    nvfp4.register_backend(CostedBackend("steady", [2.0]))
    x, w = _ops()
    d = nvfp4.explain(x, w)
    assert (d.backend, d.tactic.cost_ms) == ("steady", 2.0)
    results = {r.tactic.cost_ms: r for c in d.candidates if c.backend == "flaky" for r in c.results}
    assert "RuntimeError: tactic crashed" in results[0.5].error
    assert "non-finite" in results[0.7].error
    assert results[3.0].time_ms == 3.0


def test_every_tactic_failing_is_an_error(tuner):
    nvfp4.register_backend(CostedBackend("broken", [1.0], fail=[1.0]))
    x, w = _ops()
    with pytest.raises(nvfp4.NoBackendError, match="every tactic failed.*tactic crashed"):
        nvfp4.gemm(x, w, backend="broken")


def test_forced_and_auto_interleave_without_reusing_wrong_entries(tuner):
    a, b = CostedBackend("a", [3.0, 2.5]), CostedBackend("b", [1.0])
    nvfp4.register_backend(a)
    nvfp4.register_backend(b)
    x, w = _ops()
    assert nvfp4.explain(x, w, backend="a").tactic.cost_ms == 2.5  # forced: a's best tactic
    n_forced = stats()["profiled_tactics"]
    assert n_forced == 2
    d = nvfp4.explain(x, w)  # auto now profiles only b; a's records are reused
    assert d.backend == "b" and stats()["profiled_tactics"] == 3
    nvfp4.gemm(x, w, backend="a")
    nvfp4.gemm(x, w)
    calls_a, calls_b = a.calls, b.calls
    nvfp4.gemm(x, w, backend="a")
    assert a.calls == calls_a + 1 and b.calls == calls_b
    nvfp4.gemm(x, w)
    assert b.calls == calls_b + 1
    # A different set of installed backends is a different key: nothing stale is reused.
    nvfp4.unregister_backend("b")
    d2 = nvfp4.explain(x, w)
    assert d2.backend == "a" and d2.key != d.key
    nvfp4.gemm(x, w)
    assert b.calls == calls_b + 1


def test_key_changes_with_backend_version(tuner):
    x, w = _ops()
    nvfp4.register_backend(CostedBackend("v", [1.0]), version="1.0")
    k1 = nvfp4.explain(x, w).key
    nvfp4.unregister_backend("v")
    nvfp4.register_backend(CostedBackend("v", [1.0]), version="1.1")
    k2 = nvfp4.explain(x, w).key
    assert k1 != k2 and k1.split("|")[0] == k2.split("|")[0]


def test_key_holds_the_problem_and_device():
    p = nvfp4.GemmProblem(300, 64, 128, "nvfp4", torch.float16, True, "swizzled", torch.device("cpu"))
    assert key_string(p, ()).startswith("m512_n64_k128_a-nvfp4_out-float16_bias1_swizzled|cpu|backends-")


def test_cache_file_round_trip_and_second_process_profiles_nothing(tuner, tmp_path):
    cache = tmp_path / "tune.json"
    nvfp4.register_backend(CostedBackend("fast", [1.0, 2.0]), version="7")
    x, w = _ops()
    with nvfp4.autotune(cache=cache):
        nvfp4.gemm(x, w)
    doc = json.loads(cache.read_text())
    assert doc["format"] == "nvfp4-tuning-cache" and doc["header"]["torch"] == torch.__version__
    (entry,) = doc["entries"].values()
    assert entry["fast"]["complete"] and len(entry["fast"]["results"]) == 2
    script = textwrap.dedent(f"""
        import sys, torch, nvfp4
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from core_fakes import CostedBackend
        nvfp4.register_backend(CostedBackend("fast", [1.0, 2.0]), version="7")
        torch.manual_seed(0)
        x, w = torch.randn(4, 64).bfloat16(), nvfp4.quantize(torch.randn(32, 64))
        d = nvfp4.explain(x, w)
        nvfp4.gemm(x, w)
        from nvfp4.tuning import stats
        print(d.backend, d.tactic.cost_ms, d.source, stats()["profiled_tactics"])
    """)
    env = dict(os.environ, NVFP4_TUNING_CACHE=str(cache))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["fast", "1.0", "cache", "0"]


def test_env_cache_is_written_after_profiling(tuner, tmp_path, monkeypatch):
    cache = tmp_path / "env.json"
    monkeypatch.setenv("NVFP4_TUNING_CACHE", str(cache))
    nvfp4.register_backend(CostedBackend("fast", [1.0]))
    nvfp4.gemm(*_ops())
    assert cache.exists() and json.loads(cache.read_text())["entries"]


@pytest.mark.parametrize("content,match", [
    ("{not json", "corrupt"),
    (json.dumps({"format": "something-else"}), "corrupt"),
    (json.dumps({"format": "nvfp4-tuning-cache", "version": 1, "header": {"device": "Other GPU"},
                 "entries": {}}), "was made for"),
])
def test_corrupt_or_foreign_cache_is_ignored_with_a_warning(tuner, tmp_path, content, match):
    cache = tmp_path / "bad.json"
    cache.write_text(content)
    nvfp4.register_backend(CostedBackend("fast", [1.0]))
    with pytest.warns(RuntimeWarning, match=match):
        with nvfp4.autotune(cache=cache):
            y = nvfp4.gemm(*_ops())
    assert y.shape == (4, 32)
    assert json.loads(cache.read_text())["format"] == "nvfp4-tuning-cache"  # replaced by a valid one


def test_cache_entry_for_a_tactic_that_no_longer_exists_is_reprofiled(tuner, tmp_path):
    cache = tmp_path / "t.json"
    nvfp4.register_backend(CostedBackend("fast", [1.0, 2.0]), version="1")
    x, w = _ops()
    with nvfp4.autotune(cache=cache):
        nvfp4.gemm(x, w)
    TUNER.reset()
    TUNER.timer = CLOCK.timer
    nvfp4.unregister_backend("fast")
    nvfp4.register_backend(CostedBackend("fast", [3.0, 2.0]), version="1")  # same version, tactics changed
    with nvfp4.autotune(cache=cache):
        d = nvfp4.explain(x, w)
    assert d.tactic.cost_ms == 2.0 and d.source == "profiled"


def test_budget_stops_profiling_and_says_so(tuner):
    nvfp4.register_backend(CostedBackend("fast", [1.0, 2.0]))
    x, w = _ops()
    with pytest.warns(RuntimeWarning, match="budget ran out"):
        with nvfp4.autotune(budget_s=0):
            d = nvfp4.explain(x, w)
    assert d.source == "heuristic" and any("budget" in n for n in d.notes)
    assert stats()["profiled_tactics"] == 0
    d2 = nvfp4.explain(x, w)  # outside the budget, the next decision finishes profiling
    assert d2.source == "profiled" and d2.tactic.cost_ms == 1.0
    with pytest.raises(ValueError, match="budget_s must be >= 0"):
        with nvfp4.autotune(budget_s=-1):
            pass


def test_budget_keeps_the_best_measured_so_far(tuner, monkeypatch):
    nvfp4.register_backend(CostedBackend("fast", [4.0, 1.0, 2.0]))
    ticks = iter([0.0, 0.0, 0.0, 100.0, 100.0, 100.0])
    monkeypatch.setattr(selector.time, "monotonic", lambda: next(ticks, 100.0))
    with pytest.warns(RuntimeWarning, match="budget"):
        with nvfp4.autotune(budget_s=1.0):
            d = nvfp4.explain(*_ops())
    measured = [r.tactic.cost_ms for c in d.candidates for r in c.results]
    assert 0 < len(measured) < 3 and d.tactic.cost_ms == min(measured) and d.source == "profiled"


def test_graph_capture_never_profiles(tuner, monkeypatch):
    nvfp4.register_backend(CostedBackend("low", [1.0], priority=0))
    nvfp4.register_backend(CostedBackend("high", [5.0], priority=10))
    monkeypatch.setattr(selector, "capturing_graph", lambda device: True)
    x, w = _ops()
    runs = CLOCK.runs
    d = nvfp4.explain(x, w)
    assert d.source == "heuristic" and d.backend == "high" and stats()["profiled_tactics"] == 0
    nvfp4.gemm(x, w)
    assert CLOCK.runs == runs + 1  # only the real call ran
    monkeypatch.setattr(selector, "capturing_graph", lambda device: False)
    assert nvfp4.explain(torch.randn(3, 64).bfloat16(), w).source == "heuristic"  # explain reports the record
    TUNER._decisions.clear()
    assert nvfp4.explain(x, w).backend == "low"  # once capture ends, it measures


def test_heuristic_priority_may_depend_on_the_problem(tuner, monkeypatch):
    class SmallM(CostedBackend):
        def heuristic_priority(self, problem):
            return 100 if problem.m <= 8 else 0

    nvfp4.register_backend(SmallM("small-m", [1.0]))
    nvfp4.register_backend(CostedBackend("steady", [2.0], priority=10))
    monkeypatch.setattr(selector, "capturing_graph", lambda device: True)
    w = nvfp4.quantize(torch.randn(32, 64))
    assert nvfp4.explain(torch.randn(4, 64).bfloat16(), w).backend == "small-m"
    assert nvfp4.explain(torch.randn(64, 64).bfloat16(), w).backend == "steady"


def test_auto_with_no_capable_backend_explains_why(fresh_registry, monkeypatch):
    monkeypatch.setenv("NVFP4_DISABLED_PLUGINS", "reference")
    fresh_registry.reset()
    nvfp4.register_backend(CostedBackend("picky", [1.0], supports_reason="needs a GPU"))
    with pytest.raises(nvfp4.NoBackendError, match="picky: unsupported .needs a GPU."):
        nvfp4.gemm(*_ops())
