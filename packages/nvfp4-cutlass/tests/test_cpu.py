"""CPU-side checks (CI, no GPU): import safety, availability reason, tactic listing and validity."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nvfp4
from nvfp4.problem import GemmProblem
from nvfp4_cutlass import CutlassBackend, CutlassQuantizer, CutlassTactic, valid_tactics
from nvfp4_cutlass.tactics import (
    BASE_CONFIGS,
    GEMV_MAX_SLICE_CHUNKS,
    KERNEL_GEMV,
    KERNEL_TMA_M1,
    TMA_M1_MAX_SLICE_CHUNKS,
    chunks_per_split,
    is_valid,
)

CUDA = torch.device("cuda")


def problem(m, n, k, a_format="bf16", out=torch.bfloat16, layout="linear", device=CUDA):
    return GemmProblem(m, n, k, a_format, out, False, layout, device)


def test_import_without_gpu_does_not_touch_cuda():
    code = ("import torch, nvfp4_cutlass, nvfp4_cutlass.plugin; "
            "assert not torch.cuda.is_initialized(); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"CUDA_VISIBLE_DEVICES": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_registered_through_entry_point():
    names = [b.name for b in nvfp4.backends()]
    assert "cutlass" in names


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU reason")
def test_availability_reason_without_gpu():
    av = CutlassBackend().availability()
    assert not av.ok
    assert "CUDA" in av.reason or "_native" in av.reason
    assert CutlassQuantizer().availability().reason == av.reason


def test_availability_reason_without_native_module(monkeypatch):
    from nvfp4_cutlass import native

    reason = "the compiled module nvfp4_cutlass._native cannot be imported (x)"
    monkeypatch.setattr(native, "load", lambda: (None, reason))
    av = CutlassBackend().availability()
    assert not av.ok and "_native" in av.reason


def test_fp32_activations_declined_with_reason():
    reason = CutlassBackend().supports(problem(4, 64, 64, a_format="fp32"))
    assert reason and "fp32" in reason


def test_cpu_problem_declined():
    reason = CutlassBackend().supports(problem(4, 64, 64, device=torch.device("cpu")))
    assert reason and "CUDA" in reason


@pytest.mark.parametrize("m", [1, 7, 16, 17, 64, 200, 1024, 8192])
@pytest.mark.parametrize("n,k", [(1, 16), (130, 48), (8192, 8192), (57344, 8192), (8192, 28672)])
def test_valid_tactics_are_valid(m, n, k):
    p = problem(m, n, k)
    tactics = valid_tactics(p, BASE_CONFIGS)
    assert tactics, "at least one tactic"
    assert len(set(tactics)) == len(tactics)
    for t in tactics:
        assert isinstance(t, CutlassTactic)
        assert is_valid(p, t, BASE_CONFIGS) is None
        assert t.config in BASE_CONFIGS
        chunks = -(-k // 128)
        assert 1 <= t.split_k <= chunks
        per = -(-chunks // t.split_k)
        assert (t.split_k - 1) * per < chunks, "no empty K slice"


def test_heuristic_small_m_fills_the_gpu():
    t = valid_tactics(problem(2, 8192, 8192), BASE_CONFIGS)[0]
    assert t.tile_m == 8 and not t.tma_m1
    assert (8192 // t.tile_n) * t.split_k * t.warps >= 132 * 8, "at least 8 warps per SM"
    t = valid_tactics(problem(16, 57344, 8192), BASE_CONFIGS)[0]
    assert t.tile_m == 16 and t.split_k == 1
    # the 16-wide wgmma tile aims at 16 warps an SM: 128 tiles of 4 warps, 4 K slices
    t = valid_tactics(problem(16, 8192, 8192), BASE_CONFIGS)[0]
    assert t.wgmma and t.tile_m == 16 and t.warps == 4 and t.split_k == 4
    # the tuner also gets the powers of two around the heuristic's split (6 here; 4 measured best)
    splits = {t.split_k for t in valid_tactics(problem(16, 6144, 4096), BASE_CONFIGS) if t.wgmma and t.warps == 4}
    assert {4, 6, 8} <= splits


def test_heuristic_split_follows_the_sm_count():
    # fewer SMs (an H100 PCIe has 114, an H20 78) want fewer K slices to fill them
    p = problem(2, 8192, 8192)
    full = valid_tactics(p, BASE_CONFIGS, sm_count=132)[0]
    small = valid_tactics(p, BASE_CONFIGS, sm_count=66)[0]
    assert full.config == small.config
    assert small.split_k < full.split_k
    assert valid_tactics(p, BASE_CONFIGS) == valid_tactics(p, BASE_CONFIGS, sm_count=132)


def test_medium_and_large_m_prefer_the_wgmma_kernel():
    # H100, 8192x8192: M=64 64 -> 56 us, M=256 143 -> 93 us, M=1024 560 -> 266 us against the mma.sync tiles
    t = valid_tactics(problem(64, 8192, 8192), BASE_CONFIGS)[0]
    assert t.wgmma and t.tile_m == 64 and t.stages >= 3
    assert {t.tile_m for t in valid_tactics(problem(200, 8192, 8192), BASE_CONFIGS)} <= {64, 128, 256}
    assert valid_tactics(problem(200, 8192, 8192), BASE_CONFIGS)[0].wgmma
    big = valid_tactics(problem(4096, 8192, 8192), BASE_CONFIGS)[0]
    assert big.wgmma and big.tile_m == 256 and big.split_k == 1
    # decode sizes run the 16-wide wgmma tile or mma.sync: a 64-wide wgmma tile would waste most of its MMAs
    assert all(t.tile_m == 16 for t in valid_tactics(problem(16, 8192, 8192), BASE_CONFIGS))
    # the 16-wide wgmma tile first on every layer (H200 sweeps, four A register sets in flight)
    assert valid_tactics(problem(16, 8192, 8192), BASE_CONFIGS)[0].wgmma
    assert valid_tactics(problem(16, 57344, 8192), BASE_CONFIGS)[0].wgmma


def test_base_configurations_are_compiled():
    from nvfp4_cutlass.native import compiled_configs

    compiled = compiled_configs()
    if compiled is None:
        pytest.skip("the native module is not importable here")
    missing = BASE_CONFIGS - compiled
    assert not missing, f"tactics.BASE_CONFIGS lists what csrc/gemm_sm90.cuh does not build: {missing}"


def test_wgmma_rules():
    assert "split_k=1" in is_valid(problem(512, 256, 1024), CutlassTactic(256, 128, 2, 1, 3, True), BASE_CONFIGS)
    assert is_valid(problem(512, 256, 1024), CutlassTactic(128, 128, 2, 1, 4, True), BASE_CONFIGS) is None
    assert "K % 128" in is_valid(problem(512, 256, 1040), CutlassTactic(128, 128, 1, 1, 4, True), BASE_CONFIGS)
    assert all(not t.wgmma for t in valid_tactics(problem(512, 256, 1040), BASE_CONFIGS))


def test_cp_async_stages_need_whole_chunks():
    assert any(t.stages >= 3 for t in valid_tactics(problem(1, 256, 1024), BASE_CONFIGS))
    assert all(t.stages < 3 for t in valid_tactics(problem(1, 256, 1040), BASE_CONFIGS))
    assert "K % 128" in is_valid(problem(1, 256, 1040), CutlassTactic(8, 64, 1, 1, 8), BASE_CONFIGS)


def test_is_valid_rejects():
    p = problem(4, 256, 256)
    assert "not compiled" in is_valid(p, CutlassTactic(24, 64, 1, 1, 1), BASE_CONFIGS)
    assert "split_k" in is_valid(p, CutlassTactic(8, 64, 3, 2, 1), BASE_CONFIGS)  # 2 chunks cannot make 3 slices
    assert "CutlassTactic" in is_valid(p, "fast", BASE_CONFIGS)


def test_two_row_groups_a_warp():
    t = CutlassTactic(16, 128, 1, 1, 4, False, 32)
    assert t.warps == 4 and t.config == (16, 4, 1, 4, 0, 32)
    p = problem(16, 8192, 8192)
    assert is_valid(p, t, BASE_CONFIGS) is None
    assert "not compiled" in is_valid(p, CutlassTactic(16, 96, 1, 1, 4, False, 24), BASE_CONFIGS)
    assert "not compiled" in is_valid(p, CutlassTactic(16, 120, 1, 1, 4, False, 32), BASE_CONFIGS)
    # offered at M = 16 with the split that fills the GPU: 8192 / 128 tiles x 4 warps x split >= 132 x 8 / 2
    ts = [t for t in valid_tactics(p, BASE_CONFIGS) if t.warp_rows == 32]
    assert ts and all(t.tile_n == 32 * t.warps for t in ts)
    assert 64 * ts[0].warps * ts[0].split_k >= 132 * 4


def test_w4a4_act_fp16_tactics():
    # W4A4 offers a dequantize-once-then-FP16 variant of every tactic: first from M = 33 on, after the in-kernel
    # decode below that
    for m in (1, 16, 32, 33, 64, 300, 4096):
        ts = valid_tactics(problem(m, 8192, 8192, "nvfp4"), BASE_CONFIGS)
        rest = [t for t in ts if not t.tma_m1]  # the row GEMV (M = 1) decodes in-kernel or takes act_fp16 too
        fp16 = [t for t in rest if t.act_fp16]
        assert rest[0].act_fp16 == (m >= 33) and len(fp16) * 2 == len(rest)
        assert [dataclasses.replace(t, act_fp16=False) for t in fp16] == [t for t in rest if not t.act_fp16]
        # the TMA M = 1 kernel decodes a W4A4 activation row itself (first) or takes it through act_fp16
        tma = [t for t in ts if t.tma_m1]
        assert bool(tma) == (m == 1) and {t.act_fp16 for t in tma} == ({False, True} if m == 1 else set())
        assert m != 1 or (ts[0].gemv and not ts[0].act_fp16)
    assert not any(t.act_fp16 for t in valid_tactics(problem(300, 8192, 8192, "bf16"), BASE_CONFIGS))
    t = CutlassTactic(128, 128, 1, 1, 4, True, act_fp16=True)
    assert is_valid(problem(300, 8192, 8192, "nvfp4"), t, BASE_CONFIGS) is None
    assert "act_fp16" in is_valid(problem(300, 8192, 8192, "fp16"), t, BASE_CONFIGS)


def test_tma_m1_rules():
    # the TMA kernel runs M = 1 with bf16, fp16 or NVFP4 activations, linear scales, K % 256 == 0 and slices it can
    # stage
    t = next(t for t in valid_tactics(problem(1, 8192, 8192), BASE_CONFIGS) if t.tma_m1)
    assert t.config[4] == KERNEL_TMA_M1 and t.split_k == 2
    assert any(t.tma_m1 for t in valid_tactics(problem(1, 8192, 8192, "fp16"), BASE_CONFIGS))
    assert not any(t.tma_m1 for t in valid_tactics(problem(1, 8192, 8192, layout="swizzled"), BASE_CONFIGS))
    assert not any(t.tma_m1 for t in valid_tactics(problem(1, 8192, 8320), BASE_CONFIGS))
    assert not any(t.tma_m1 for t in valid_tactics(problem(2, 8192, 8192), BASE_CONFIGS))
    assert not any(t.tma_m1 for t in valid_tactics(problem(1, 8192, 8192, "fp32"), BASE_CONFIGS))
    # long K: only splits whose slices fit the staged activation row
    long = [t for t in valid_tactics(problem(1, 4096, 57344), BASE_CONFIGS) if t.tma_m1]
    assert long and all(chunks_per_split(57344, t.split_k) <= TMA_M1_MAX_SLICE_CHUNKS for t in long)
    tma = CutlassTactic(8, 64, 1, 4, 3, tma_m1=True)
    assert is_valid(problem(1, 8192, 8192), tma, BASE_CONFIGS) is None
    for p, words in ((problem(2, 8192, 8192), "M = 1 only"), (problem(1, 8192, 8192, layout="swizzled"), "linear"),
                     (problem(1, 8192, 8320), "K % 256"), (problem(1, 8192, 8192, "fp32"), "NVFP4 activation")):
        assert words in is_valid(p, tma, BASE_CONFIGS)
    assert is_valid(problem(1, 8192, 8192, "nvfp4"), tma, BASE_CONFIGS) is None  # W4A4: decoded while staged
    assert "stages at most" in is_valid(problem(1, 4096, 57344), tma, BASE_CONFIGS)
    # 32 chunks in 3 slices of 11: odd, so a stage would start its scale box 8 bytes off
    assert "even number" in is_valid(problem(1, 6144, 4096), dataclasses.replace(tma, split_k=3), BASE_CONFIGS)
    for k in (4096, 8192, 12288, 28672, 57344):
        assert all(chunks_per_split(k, t.split_k) % 2 == 0
                   for t in valid_tactics(problem(1, 6144, k), BASE_CONFIGS) if t.tma_m1)
    assert is_valid(problem(1, 8192, 8192, "nvfp4"), dataclasses.replace(tma, act_fp16=True), BASE_CONFIGS) is None
    assert "different kernels" in is_valid(problem(1, 8192, 8192), dataclasses.replace(tma, wgmma=True),
                                           BASE_CONFIGS | {(8, 4, 4, 3, 1, 16)})
    assert "not compiled" in is_valid(problem(1, 8192, 8192), dataclasses.replace(tma, stages=5), BASE_CONFIGS)


def test_gemv_rules():
    # the row GEMV runs M = 1 with bf16, fp16 or NVFP4 activations, either scale layout, K % 32 == 0 and slices it
    # can stage; it comes first at M = 1 (H200 microbench: 8192x8192 21.9 -> 19.0 us against the TMA kernel)
    for a_format in ("bf16", "fp16", "nvfp4"):
        for layout in ("linear", "swizzled"):
            t = valid_tactics(problem(1, 8192, 8192, a_format, layout=layout), BASE_CONFIGS)[0]
            assert t.gemv and t.config[4] == KERNEL_GEMV and t.warp_rows in (2, 4) and not t.act_fp16
    assert valid_tactics(problem(1, 8192, 8192), BASE_CONFIGS)[0].split_k == 1
    assert not any(t.gemv for t in valid_tactics(problem(2, 8192, 8192), BASE_CONFIGS))
    assert not any(t.gemv for t in valid_tactics(problem(1, 8192, 8208), BASE_CONFIGS))  # K % 32 == 16
    assert any(t.gemv for t in valid_tactics(problem(1, 8192, 8224), BASE_CONFIGS))
    # long K: the heuristic raises the split until a slice fits the staged activation row
    long = [t for t in valid_tactics(problem(1, 4096, 57344), BASE_CONFIGS) if t.gemv]
    assert long and all(chunks_per_split(57344, t.split_k) <= GEMV_MAX_SLICE_CHUNKS for t in long)
    gemv = valid_tactics(problem(1, 8192, 8192), BASE_CONFIGS)[0]
    for p, words in ((problem(2, 8192, 8192), "M = 1 only"), (problem(1, 8192, 8208), "K % 32"),
                     (problem(1, 8192, 8192, "fp32"), "NVFP4 activation")):
        assert words in is_valid(p, gemv, BASE_CONFIGS)
    assert "stages at most" in is_valid(problem(1, 4096, 57344), gemv, BASE_CONFIGS)
    assert is_valid(problem(1, 8192, 8192, "nvfp4"), dataclasses.replace(gemv, act_fp16=True), BASE_CONFIGS) is None
    assert "different kernels" in is_valid(problem(1, 8192, 8192), dataclasses.replace(gemv, tma_m1=True),
                                           BASE_CONFIGS)
    assert "not compiled" in is_valid(problem(1, 8192, 8192), dataclasses.replace(gemv, warp_rows=16, tile_n=128),
                                      BASE_CONFIGS)


def test_tactic_is_frozen_and_hashable():
    t = CutlassTactic(8, 64, 4, 1, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.tile_m = 16
    assert hash(t) == hash(CutlassTactic(8, 64, 4, 1, 8))
    assert t.warps == 4


def test_heuristic_priority_follows_the_measured_buckets():
    be = CutlassBackend()
    assert be.heuristic_priority(problem(256, 8192, 8192)) == be.priority
    assert be.heuristic_priority(problem(1024, 8192, 8192)) == 0


def _microbench_csv(path, rows, check="check: 0 mismatches over 2 configurations"):
    path.write_text("\n".join([check, "shape,M,config,split,us,weight_TBps", *rows]) + "\n")
    return str(path)


def test_microbench_ab_keeps_each_builds_best_and_refuses_a_failed_check(tmp_path):
    # scripts/microbench_ab.py compares two microbench builds on the GPU machine (scripts/gpu_validate.sh
    # microbench-ab): a point's time is a build's fastest configuration over its rounds.
    script = str(Path(__file__).resolve().parents[1] / "scripts" / "microbench_ab.py")
    a1 = _microbench_csv(tmp_path / "a1.csv", ["8192x8192,64,tm64_w4,1,42.0,0.9", "8192x8192,64,tm64_w8,2,40.0,0.9"])
    a2 = _microbench_csv(tmp_path / "a2.csv", ["8192x8192,64,tm64_w4,1,41.0,0.9", "6144x4096,16,tm16,4,18.0,0.5"])
    a = f"{a1},{a2}"
    b = _microbench_csv(tmp_path / "b1.csv", ["8192x8192,64,tm64_w4,1,32.0,0.9"])
    out = subprocess.run([sys.executable, script, a, b, "--names", "main,new"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "main     40.0 us (tm64_w8 sk2)  new     32.0 us (tm64_w4 sk1)  1.250x" in out.stdout
    assert "6144x4096    M=16    only in main" in out.stdout
    assert out.stdout.strip().endswith("geomean main/new 1.250")
    bad = _microbench_csv(tmp_path / "bad.csv", ["8192x8192,64,tm64_w4,1,1.0,0.9"],
                          check="check: 3 mismatches over 2 configurations")
    out = subprocess.run([sys.executable, script, a, bad], capture_output=True, text=True)
    assert out.returncode == 1 and "B: host check failed" in out.stderr
