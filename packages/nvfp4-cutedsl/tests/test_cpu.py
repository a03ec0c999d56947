"""CPU-side checks (run in CI): install, import, registration, availability reason, tactics, bit tricks."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch

import nvfp4
from nvfp4 import e2m1, layouts
from nvfp4.problem import GemmProblem
from nvfp4_cutedsl import CuteDslBackend, Sm90Tactic, tactic_problem
from nvfp4_cutedsl.backend import candidate_tactics
from nvfp4_cutedsl.kernels.decode import (
    BF16_APART_MASK,
    BF16_APART_MUL,
    BF16_HI,
    BF16_NIBBLES,
    F16_HI,
    F16_NIBBLE_MASKS,
    F16_PAIR_SEL,
    GATHER_JOIN,
    PAIR_SEL_BF16,
    PAIR_SEL_F16,
    SIGN_SEL,
    bf16_pair_sel,
    emulate_fp4x4,
    emulate_gather,
    emulate_pairs_bf16,
    emulate_pairs_f16,
    fp4_pairs_ptx,
    fp4x8_ptx,
    gather_ptx,
    prmt,
    scale_pair_ptx,
    scale_pairs_ptx,
)
from nvfp4_cutedsl.kernels.scale_layout import scale_layout_spec
from nvfp4_cutedsl.tactics import split_k_partials


def _problem(m=16, n=256, k=256, a_format="bf16", out=torch.bfloat16, bias=False, layout="linear",
             device="cuda"):
    return GemmProblem(m, n, k, a_format, out, bias, layout, torch.device(device))


def test_registered_through_entry_point():
    names = [b.name for b in nvfp4.backends()]
    assert "cutedsl" in names
    assert not [e for e in nvfp4.plugin_errors() if e.plugin == "cutedsl"]


def test_availability_says_why():
    av = CuteDslBackend().availability()
    if not torch.cuda.is_available():
        assert not av.ok and av.reason, "without a GPU the backend must be unavailable with a reason"
    assert av.ok or av.reason


def test_declines_with_reasons():
    be = CuteDslBackend()
    assert "fp32 activations" in be.supports(_problem(a_format="fp32"))
    assert "multiple of 32" in be.supports(_problem(k=48))
    assert "CUDA" in be.supports(_problem(device="cpu"))
    for a_format, layout in itertools.product(("bf16", "fp16", "nvfp4"), ("linear", "swizzled")):
        assert be.supports(_problem(a_format=a_format, layout=layout)) is None


@pytest.mark.parametrize("m", (1, 7, 16, 17, 64, 65, 256, 257, 4096))
@pytest.mark.parametrize("a_format", ("bf16", "fp16", "nvfp4"))
def test_every_bucket_has_valid_tactics(m, a_format):
    p = _problem(m=m, n=8192, k=8192, a_format=a_format)
    tactics = CuteDslBackend().tactics(p)
    assert tactics
    for t in tactics:
        assert tactic_problem(t, p) is None
    # a bucket's tactics must serve every M in the bucket (the tuner decides per power-of-two bucket)
    bucket = 1 << (m - 1).bit_length()
    for t in tactics:
        assert tactic_problem(t, _problem(m=bucket, n=8192, k=8192, a_format=a_format)) is None


def test_tactic_validity_reasons():
    p = _problem()
    assert "64 or 128" in tactic_problem(Sm90Tactic(tile_w=96, tile_x=16), p)
    assert "multiple of 8" in tactic_problem(Sm90Tactic(tile_w=64, tile_x=12), p)
    assert "shared memory" in tactic_problem(Sm90Tactic(tile_w=128, tile_x=256, stages=8), p)
    assert "W4A4" in tactic_problem(Sm90Tactic(tile_w=64, tile_x=8), _problem(a_format="nvfp4"))
    assert "split_k" in tactic_problem(Sm90Tactic(split_k=8), _problem(k=256))
    assert ">= 3" in tactic_problem(Sm90Tactic(stages=2), p)
    assert tactic_problem(Sm90Tactic(), p) is None
    assert all(t.threads in (128, 256, 384) for t in candidate_tactics(_problem(m=8192)))


def test_split_k_workspace_stays_within_32_bit_offsets():
    """The split-K epilogue stores one whole CTA tile per output tile and K slice, indexed in 32 bits."""
    t = Sm90Tactic(tile_w=64, tile_x=8, stages=8, split_k=4, weight_regs=True)
    assert split_k_partials(t, 5, 100) == 2 * 1 * 4 * 64 * 8  # N 100 -> 2 tiles of 64, M 5 -> 1 tile of 8
    assert tactic_problem(t, _problem(m=5, n=100, k=8192)) is None
    wide = Sm90Tactic(tile_w=128, tile_x=256, stages=3, split_k=2, weight_regs=True)
    reason = tactic_problem(wide, _problem(m=32768, n=40000, k=8192))
    assert reason is not None and "32-bit" in reason and "split_k 2" in reason
    assert tactic_problem(dataclasses.replace(wide, split_k=1), _problem(m=32768, n=40000, k=8192)) is None


def test_weight_regs_tactics():
    p = _problem()
    t = Sm90Tactic(tile_w=128, tile_x=16, stages=2, weight_regs=True)
    assert tactic_problem(t, p) is None and t.threads == 256 + 32
    assert "swap_ab" in tactic_problem(Sm90Tactic(tile_w=16, tile_x=64, swap_ab=False, weight_regs=True), p)
    assert "weight-only" in tactic_problem(Sm90Tactic(weight_regs=True), _problem(a_format="nvfp4"))
    assert ">= 2" in tactic_problem(Sm90Tactic(stages=1, weight_regs=True), p)
    # 128-wide K stages: register-sourced kernel only, twice the ring bytes, slices of at least two stages
    wide = Sm90Tactic(64, 16, 4, weight_regs=True, tile_k=128)
    assert tactic_problem(wide, p) is None
    assert wide.smem_bytes("bf16") == 4 * (64 * 64 + 16 * 128 * 2) + 2048
    assert "tile_k" in tactic_problem(Sm90Tactic(64, 16, 4, tile_k=128), p)
    assert "tile_k" in tactic_problem(dataclasses.replace(wide, tile_k=256), p)
    assert "K tiles of 128" in tactic_problem(dataclasses.replace(wide, split_k=2), _problem(k=384))
    assert tactic_problem(dataclasses.replace(wide, split_k=2), _problem(k=512)) is None
    assert "shared memory" in tactic_problem(Sm90Tactic(64, 256, 4, weight_regs=True, tile_k=128), p)
    # a producer warp, or a producer warpgroup whose registers go to the consumers of a wide accumulator
    assert Sm90Tactic(64, 16, weight_regs=True).producer_warps == 1
    assert Sm90Tactic(128, 256, weight_regs=True).producer_warps == 4
    assert Sm90Tactic(128, 256, weight_regs=True).threads == 384 and Sm90Tactic(128, 256).threads == 256
    # offered (first) for weight-only problems; for W4A4 only behind the FP16 dequantize (act_fp16)
    # (M = 1: after the row GEMV, which is register-fed too)
    for m in (1, 16, 64, 256, 4096):
        first = CuteDslBackend().tactics(_problem(m=m, n=8192, k=8192))[0]
        assert first.gemv_rows if m == 1 else first.weight_regs
        w4a4 = CuteDslBackend().tactics(_problem(m=m, n=8192, k=8192, a_format="nvfp4"))
        assert all(t.act_fp16 == (t.weight_regs or t.gemv_rows > 0) for t in w4a4) and w4a4[0].act_fp16
        assert any(not t.act_fp16 for t in w4a4), "the shared-memory W4A4 kernel stays a candidate"


def test_wide_k_and_half_wide_candidates():
    """128-wide K stages are offered at M 17-64 only; half-wide activation tiles at M 65-256 only where the
    full-width grid has fewer 64-row CTAs than SMs (132 without a GPU)."""
    tk = {m: {t.tile_k for t in candidate_tactics(_problem(m=m, n=8192, k=8192)) if t.weight_regs}
          for m in (1, 16, 64, 256, 4096)}
    assert tk == {1: {64}, 16: {64}, 64: {64, 128}, 256: {64}, 4096: {64}}
    for m, full in ((128, 128), (256, 256)):
        narrow = {(t.tile_x, t.split_k) for t in candidate_tactics(_problem(m=m, n=4096, k=14336)) if t.weight_regs}
        assert {(full // 2, 1), (full // 2, 2)} <= narrow
        wide = {t.tile_x for t in candidate_tactics(_problem(m=m, n=57344, k=8192)) if t.weight_regs}
        assert wide == {full}


def test_gemv_rules():
    """The M = 1 row GEMV: offered first at M = 1 only (weight-only, and W4A4 through act_fp16), and its validity
    function says why it cannot run a problem."""
    from nvfp4_cutedsl.tactics import GEMV_MAX_STEPS, gemv_slice_steps

    p = _problem(m=1, n=8192, k=8192)
    gemv = [t for t in candidate_tactics(p) if t.gemv_rows]
    assert gemv and candidate_tactics(p)[0] == gemv[0]
    assert all(t.tile_x == 1 and t.threads == 32 * t.tile_w // t.gemv_rows for t in gemv)
    assert not [t for m in (2, 16, 64) for t in candidate_tactics(_problem(m=m, n=8192, k=8192)) if t.gemv_rows]
    assert all(t.act_fp16 for t in candidate_tactics(_problem(m=1, a_format="nvfp4")) if t.gemv_rows)
    t = Sm90Tactic(32, 1, 1, True, 1, gemv_rows=4)
    assert tactic_problem(t, _problem(m=1, n=8, k=32)) is None
    assert "M = 1" in tactic_problem(t, _problem(m=2))
    assert "weight-only" in tactic_problem(t, _problem(m=1, a_format="nvfp4"))
    assert tactic_problem(dataclasses.replace(t, act_fp16=True), _problem(m=1, a_format="nvfp4")) is None
    assert "gemv_rows" in tactic_problem(dataclasses.replace(t, tile_w=30, gemv_rows=3), _problem(m=1))
    assert "tile_w" in tactic_problem(dataclasses.replace(t, tile_w=132), _problem(m=1))
    assert "tile_x" in tactic_problem(dataclasses.replace(t, tile_x=8), _problem(m=1))
    assert "stages" in tactic_problem(dataclasses.replace(t, stages=5), _problem(m=1))
    assert "empty K slice" in tactic_problem(dataclasses.replace(t, split_k=3), _problem(m=1, k=64))
    # the staged activations bound a slice: K = 28672 needs two slices of at most 24 steps of 1024
    assert gemv_slice_steps(28672, 1) == 28 > GEMV_MAX_STEPS
    assert "raise split_k" in tactic_problem(t, _problem(m=1, k=28672))
    assert tactic_problem(dataclasses.replace(t, split_k=2), _problem(m=1, k=28672)) is None
    assert all(tactic_problem(t, _problem(m=1, n=8192, k=28672)) is None
               for t in candidate_tactics(_problem(m=1, n=8192, k=28672)) if t.gemv_rows)


def test_act_fp16_tactics():
    t = Sm90Tactic(64, 8, 8, True, 1, weight_regs=True, act_fp16=True)
    assert tactic_problem(t, _problem(m=1, a_format="nvfp4")) is None
    assert "NVFP4 activation" in tactic_problem(t, _problem(m=1, a_format="bf16"))
    assert "M*K" in tactic_problem(t, _problem(m=1 << 18, k=8192, a_format="nvfp4"))
    # it is judged as the FP16 weight-only GEMM it runs: tile_x 8 is fine there, not for the W4A4 dequantizer
    assert tactic_problem(dataclasses.replace(t, weight_regs=False, stages=4), _problem(a_format="nvfp4")) is None
    assert "W4A4" in tactic_problem(dataclasses.replace(t, weight_regs=False, act_fp16=False, stages=4),
                                    _problem(a_format="nvfp4"))


def _lane_values(word: int, bf16: bool) -> list[float]:
    lanes = [word & 0xFFFF, word >> 16]
    if bf16:
        return [float(np.array([h << 16], dtype=np.uint32).view(np.float32)[0]) for h in lanes]
    return [float(np.array([h], dtype=np.uint16).view(np.float16)[0]) for h in lanes]


@pytest.mark.parametrize("bf16", (True, False), ids=("bf16", "fp16"))
def test_prmt_decoder_matches_e2m1_table(bf16):
    """The byte-permute decoder (same constants as the kernel's PTX) on every 16-bit input."""
    table = e2m1.code_values(dtype=torch.float32).tolist()
    for y in range(1 << 16):
        w0, w1 = emulate_fp4x4(y | (0xA5C3 << 16), bf16)  # bits above the 4 codes must be ignored
        got = _lane_values(w0, bf16) + _lane_values(w1, bf16)
        want = [table[(y >> (4 * i)) & 0xF] for i in range(4)]
        assert got == want and [math.copysign(1, g) for g in got] == [math.copysign(1, w) for w in want], hex(y)


def test_prmt_model():
    assert prmt(0x33221100, 0x77665544, 0x3210) == 0x33221100
    assert prmt(0x33221100, 0x77665544, 0x7654) == 0x77665544
    assert prmt(0x000080FF, 0, 0x4449) == 0x000000FF  # byte 1 (0x80) sign-replicated; others from b = 0


def test_ptx_uses_the_tested_constants():
    for bf16 in (True, False):
        ptx = fp4x8_ptx(bf16)
        for c in (BF16_HI if bf16 else F16_HI) + ((SIGN_SEL,) + (PAIR_SEL_BF16 if bf16 else PAIR_SEL_F16)):
            assert f"{c:#x}" in ptx
        assert ("mul.rn.bf16x2" if bf16 else "mul.rn.f16x2") in ptx
        assert "cvt.rn.f16x2.e4m3x2" in scale_pair_ptx(bf16)


def test_gather_takes_byte_t_of_each_word():
    rng = np.random.default_rng(0)
    for _ in range(200):
        words = [int(w) for w in rng.integers(0, 1 << 32, size=4, dtype=np.uint64)]
        for t in range(4):
            want = sum(((words[i] >> (8 * t)) & 0xFF) << (8 * i) for i in range(4))
            assert emulate_gather(words, t) == want


def _bf16_bits(bits: int) -> float:
    return float(np.array([bits << 16], dtype=np.uint32).view(np.float32)[0])


@pytest.mark.parametrize("bf16", (True, False), ids=("bf16", "fp16"))
def test_register_decoder_matches_e2m1_table(bf16):
    """Every byte value (two codes) in every position, before the block multiplier: BF16 value * 2^-126,
    FP16 E4M3 bytes worth value * 2^-6; after the multiplier (scale * 2^118 / scale * 64) exact."""
    table = e2m1.code_values(dtype=torch.float32).tolist()
    e4m3 = torch.arange(256, dtype=torch.uint8).view(torch.float8_e4m3fn).float().tolist()
    for byte in range(256):
        for pos in range(4):
            g = (byte << (8 * pos)) | (0x5A << (8 * ((pos + 1) % 4)))  # a neighbour byte must not leak in
            want = [table[byte & 0xF], table[byte >> 4]]
            if bf16:
                reg = emulate_pairs_bf16(g)[pos]
                got = [_bf16_bits(reg & 0xFFFF) * 2.0 ** 126, _bf16_bits(reg >> 16) * 2.0 ** 126]
            else:
                pair = emulate_pairs_f16(g)[pos]
                got = [e4m3[pair & 0xFF] * 64, e4m3[pair >> 8] * 64]
            assert got == want and [math.copysign(1, v) for v in got] == [math.copysign(1, v) for v in want], \
                (byte, pos)
    # the multiplier keeps every product exact and in range: value * scale * 2^-8 (BF16) or value * scale
    for s in e4m3:
        if s != s or s <= 0:
            continue
        for v in table:
            prod = v * s * (2.0 ** -8 if bf16 else 1.0)
            if bf16:
                assert _bf16_bits(int(np.array([prod], dtype=np.float32).view(np.uint32)[0]) >> 16) == prod
            else:
                assert float(np.float16(prod)) == prod


def test_register_decoder_ptx_uses_the_tested_constants():
    assert f"{GATHER_JOIN:#x}" in gather_ptx()
    ptx = fp4_pairs_ptx(True)
    for c in (BF16_NIBBLES, BF16_APART_MUL, BF16_APART_MASK) + tuple(bf16_pair_sel(i) for i in range(4)):
        assert f"{c:#x}" in ptx
    assert ptx.count("mul.rn.bf16x2") == 4
    ptx = fp4_pairs_ptx(False)
    for c in F16_NIBBLE_MASKS + F16_PAIR_SEL:
        assert f"{c:#x}" in ptx
    assert ptx.count("cvt.rn.f16x2.e4m3x2") == 4
    assert "0f7A800000" in scale_pairs_ptx(True) and "0x54005400" in scale_pairs_ptx(False)


def _offset(shape, stride, r, kb):
    """CuTe's colexicographic (row, k-block) -> offset for the (shape, stride) spec."""
    def mode(coord, shp, std):
        if isinstance(shp, tuple):
            off = 0
            for s, d in zip(shp, std):
                off += (coord % s) * d
                coord //= s
            return off
        return coord * std
    return mode(r, shape[0], stride[0]) + mode(kb, shape[1], stride[1])


@pytest.mark.parametrize("rows,k", ((1, 16), (130, 48), (300, 1040), (128, 64)))
def test_swizzled_scale_spec_matches_core(rows, k):
    shape, stride = scale_layout_spec(rows, k, "swizzled")
    for r in range(rows):
        for kb in range(k // 16):
            assert _offset(shape, stride, r, kb) == layouts.swizzled_offset(r, kb, k)
    shape, stride = scale_layout_spec(rows, k, "linear")
    assert _offset(shape, stride, rows - 1, k // 16 - 1) == rows * (k // 16) - 1


def test_imports_and_reports_without_the_dsl():
    """With the DSL missing, importing still works and availability names the DSL as the reason."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['cutlass'] = None; sys.modules['cuda'] = None\n"
            "import nvfp4_cutedsl\n"
            "from nvfp4_cutedsl.backend import CuteDslBackend\n"
            "av = CuteDslBackend().availability()\n"
            "assert not av.ok and 'CuTe DSL' in av.reason, av\n"
            "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def _dsl_importable() -> bool:
    try:
        import cutlass.cute  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.skipif(not _dsl_importable(), reason="CuTe DSL (nvidia-cutlass-dsl) is not installed")
@pytest.mark.parametrize("m,a_format,out,layout", (
    (1, "bf16", torch.bfloat16, "linear"),      # weight_regs (producer warp) and shared-memory, split-K
    (64, "bf16", torch.bfloat16, "linear"),     # 128-wide K stages (tile_k=128)
    (256, "fp16", torch.float16, "swizzled"),   # two consumer warpgroups
    (4096, "bf16", torch.float32, "linear"),    # producer warpgroup with setmaxnreg; swap_ab=False
    (16, "nvfp4", torch.bfloat16, "swizzled"),  # W4A4
))
def test_candidate_kernels_compile_for_sm90a(m, a_format, out, layout):
    """Every candidate tactic traces and compiles to an sm_90a cubin (no GPU needed): a DSL tracing or
    IR error fails here, in CI, instead of on the GPU machine."""
    from nvfp4_cutedsl import runner

    p = _problem(m=m, n=8192, k=8192, a_format=a_format, out=out, layout=layout)
    for tactic in candidate_tactics(p):
        assert tactic_problem(tactic, p) is None
        assert runner.get_compiled(tactic, a_format, out, layout) is not None
    if a_format == "nvfp4":
        assert runner.get_dequantize(layout) is not None  # the act_fp16 tactics' first step


def test_odd_scale_address_is_refused_with_its_name():
    """The 16-bit scale loads need an even address: a view at an odd byte is refused before any launch."""
    b = nvfp4.quantize(torch.randn(64, 64), layout="linear")
    raw = torch.zeros(b.scale.numel() + 1, dtype=torch.uint8)
    odd = raw[1:].view(torch.float8_e4m3fn).view(b.scale.shape)
    bad = nvfp4.NVFP4Tensor(b.data, odd, b.global_scale, "linear", b.shape)
    p = _problem(m=16, n=64, k=64)
    tactic = CuteDslBackend().tactics(p)[0]
    with pytest.raises(ValueError, match="b.scale must be 2-byte aligned"):
        CuteDslBackend().run(p, tactic, torch.zeros(16, 64, dtype=torch.bfloat16), bad, bias=None,
                             out=torch.empty(16, 64, dtype=torch.bfloat16))
