"""GPU checks beyond the shared suite: split-K counters reused, CUDA graphs, NaN-poisoned outputs, big K."""

import pytest
import torch

import nvfp4
from nvfp4.problem import GemmProblem
from nvfp4.testing.numerics import assert_close_to_reference, make_problem_inputs
from nvfp4_cutlass import CutlassBackend, CutlassTactic
from nvfp4_cutlass.native import compiled_configs
from nvfp4_cutlass.tactics import KERNEL_GEMV, KERNEL_TMA_M1, KERNEL_WGMMA, is_valid

be = CutlassBackend()
pytestmark = pytest.mark.skipif(not be.availability().ok, reason=f"cutlass unavailable: {be.availability().reason}")


def _run(m, n, k, a_format, layout, out_dtype, tactic=None, bias=True):
    dev = torch.device("cuda")
    p = GemmProblem(m, n, k, a_format, out_dtype, bias, layout, dev)
    a, b, bias_t = make_problem_inputs(m, n, k, a_format, layout, dev, bias_dtype=out_dtype if bias else None)
    out = torch.full((m, n), float("nan"), dtype=out_dtype, device=dev)
    be.run(p, tactic or be.tactics(p)[0], a, b, bias=bias_t, out=out)
    assert_close_to_reference(out.cpu(), a.to("cpu"), b.to("cpu"), None if bias_t is None else bias_t.cpu(),
                              what=f"{p.describe()} {tactic}")
    return p, a, b, bias_t, out


@pytest.mark.parametrize("a_format", ["bf16", "fp16", "nvfp4"])
@pytest.mark.parametrize("layout", ["linear", "swizzled"])
@pytest.mark.parametrize("m", [1, 5, 16, 40, 100, 300])
def test_split_k_odd_shapes(a_format, layout, m):
    for n, k in ((1, 16), (33, 208), (300, 4160), (1000, 2064), (70, 128), (200, 3072)):
        p = GemmProblem(m, n, k, a_format, torch.float32, True, layout, torch.device("cuda"))
        for tactic in be.tactics(p):
            _run(m, n, k, a_format, layout, torch.float32, tactic)


_WGMMA = sorted(c for c in (compiled_configs() or ()) if c[4] == KERNEL_WGMMA)
_TMA_M1 = sorted(c for c in (compiled_configs() or ()) if c[4] == KERNEL_TMA_M1)


#: Activation formats of the configuration sweeps: "-act_fp16" runs W4A4 through the dequantized FP16 activation.
_A_FORMATS = ["bf16", "fp16", "nvfp4", "nvfp4-act_fp16"]


@pytest.mark.parametrize("a_format", _A_FORMATS)
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_wgmma_configurations(a_format, out_dtype):
    # every compiled wgmma configuration: partial tiles in M and N, odd and even chunk counts, both scale
    # layouts, split-K where the tile allows it; W4A4 also through the dequantized FP16 activation
    assert _WGMMA, "the build has wgmma configurations"
    a_format, act_fp16 = a_format.split("-")[0], a_format.endswith("act_fp16")
    for tm, warps, unroll, stages, _, _ in _WGMMA:
        for m, n, k in ((1, 64, 128), (tm + 3, 200, 640), (2 * tm - 5, 16 * warps + 16, 1152)):
            for split in (1, 3):
                t = CutlassTactic(tm, 16 * warps, split, unroll, stages, True, act_fp16=act_fp16)
                layout = "swizzled" if m % 2 else "linear"
                if is_valid(GemmProblem(m, n, k, a_format, out_dtype, True, layout, torch.device("cuda")), t):
                    continue
                _run(m, n, k, a_format, layout, out_dtype, t)


def _m1_sweep(configs, shapes, tactic, layout, a_format, out_dtype, least):
    """Run every configuration at M = 1 over its (n, k) shapes and splits 1, 3, 5 wherever the tactic is valid."""
    for cfg in configs:
        ran = 0
        for n, k in shapes(cfg):
            for split in (1, 3, 5):
                t, lay = tactic(cfg, split), layout(n, split)
                if is_valid(GemmProblem(1, n, k, a_format, out_dtype, True, lay, torch.device("cuda")), t):
                    continue
                _run(1, n, k, a_format, lay, out_dtype, t)
                ran += 1
        assert ran >= least, cfg


@pytest.mark.parametrize("a_format", _A_FORMATS)
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_tma_m1_configurations(a_format, out_dtype):
    # every compiled TMA M = 1 configuration: N below one warp's 16 rows and past the CTA tile, K from one stage to
    # the longest slice it stages, slices ending inside a stage (boxes reaching into the next slice or past K),
    # split-K; W4A4 with the packed row decoded while staged, and through the dequantized FP16 activation
    assert _TMA_M1, "the build has TMA M = 1 configurations"
    a_format, act_fp16 = a_format.split("-")[0], a_format.endswith("act_fp16")
    _m1_sweep(_TMA_M1, lambda c: ((1, 256), (13, 768), (16 * c[1] + 5, 1280), (300, 4096), (70, 24576)),
              lambda c, split: CutlassTactic(c[0], 16 * c[1], split, c[2], c[3], tma_m1=True, act_fp16=act_fp16),
              lambda n, split: "linear", a_format, out_dtype, least=6)


_GEMV = sorted(c for c in (compiled_configs() or ()) if c[4] == KERNEL_GEMV)


@pytest.mark.parametrize("a_format", _A_FORMATS)
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_gemv_configurations(a_format, out_dtype):
    # every compiled row-GEMV configuration: N = 1, N below a warp's rows and past the CTA tile, K from one 32-value
    # segment (most lanes past K) to the longest slice it stages and past it, slices ending inside a 1024-wide step,
    # split-K, both scale layouts; W4A4 with the packed row decoded while staged, and through the dequantized FP16
    # activation
    assert _GEMV, "the build has row-GEMV configurations"
    a_format, act_fp16 = a_format.split("-")[0], a_format.endswith("act_fp16")
    _m1_sweep(_GEMV, lambda c: ((1, 32), (3, 96), (c[5] * c[1] + 5, 1280), (300, 4160), (70, 24576), (40, 28672)),
              lambda c, split: CutlassTactic(c[0], c[5] * c[1], split, c[2], c[3], False, c[5], act_fp16=act_fp16,
                                             gemv=True),
              lambda n, split: "swizzled" if (n + split) % 2 else "linear", a_format, out_dtype, least=10)


_TWO_GROUPS = sorted(c for c in (compiled_configs() or ()) if c[5] == 32)


@pytest.mark.parametrize("a_format", ["bf16", "fp16", "nvfp4"])
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_two_row_group_configurations(a_format, out_dtype):
    # every compiled 32-rows-a-warp configuration: the second row group partly or wholly past N, partial M
    # tiles, both scale layouts, split-K (both groups published before the tile's one arrival)
    assert _TWO_GROUPS, "the build has 32-row configurations"
    for tm, warps, unroll, stages, _, rows in _TWO_GROUPS:
        for m, n, k in ((1, 8, 128), (tm - 3, 32 * warps + 24, 640), (tm, 32 * warps - 8, 1152), (tm, 300, 2048)):
            for split in (1, 3):
                t = CutlassTactic(tm, rows * warps, split, unroll, stages, False, rows)
                layout = "swizzled" if m % 2 else "linear"
                if is_valid(GemmProblem(m, n, k, a_format, out_dtype, True, layout, torch.device("cuda")), t):
                    continue
                _run(m, n, k, a_format, layout, out_dtype, t)


def test_counters_reset_between_launches():
    tactic = CutlassTactic(8, 64, 8, 1, 8)
    for _ in range(3):  # a stale counter would make the wrong CTA reduce and leave NaNs
        _run(3, 512, 8192, "bf16", "linear", torch.bfloat16, tactic)


def test_cuda_graph_replay():
    dev = torch.device("cuda")
    m, n, k = 2, 1024, 4096
    a, b, bias = make_problem_inputs(m, n, k, "bf16", "swizzled", dev, bias_dtype=torch.float16)
    p = GemmProblem(m, n, k, "bf16", torch.float16, True, "swizzled", dev)
    tactic = be.tactics(p)[0]
    assert tactic.split_k > 1
    out = torch.empty((m, n), dtype=torch.float16, device=dev)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        be.run(p, tactic, a, b, bias=bias, out=out)  # warm the workspace outside the capture
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g, stream=s):
            be.run(p, tactic, a, b, bias=bias, out=out)
    for _ in range(3):
        out.fill_(float("nan"))
        g.replay()
        torch.cuda.synchronize()
        assert_close_to_reference(out.cpu(), a.cpu(), b.to("cpu"), bias.cpu(), what="graph replay")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_quantize_through_core_uses_kernel(dtype):
    x = torch.randn(257, 4096, device="cuda").to(dtype) * 3
    from nvfp4.registry import find_quantizer

    assert find_quantizer(x, "swizzled").name == "cutlass"
    for layout in ("linear", "swizzled"):
        got = nvfp4.quantize(x, layout=layout)
        want = nvfp4.quantize_ref(x, got.global_scale, layout)
        assert torch.equal(got.data, want.data)
        assert torch.equal(got.scale.view(torch.uint8), want.scale.view(torch.uint8))


def _boundary_blocks(dtype, g, blocks, gen):
    """Blocks whose amax puts the scale on a random E4M3 code at global scale g, filled with random bit patterns
    at or below amax: every threshold boundary of every scale the kernel tabulates is crossed many times."""
    finfo = torch.finfo(dtype)
    e4m3 = torch.arange(256, dtype=torch.int32).to(torch.uint8).view(torch.float8_e4m3fn).float()
    codes = torch.randint(1, 127, (blocks,), generator=gen)
    amax = (e4m3[codes] * 6 * g * (0.9 + 0.2 * torch.rand(blocks, generator=gen, dtype=torch.float64)))
    amax = amax.clamp(max=finfo.max).to(dtype)
    top = amax.view(torch.int16).long().unsqueeze(1)  # positive: bit patterns order like magnitudes
    bits = (torch.rand(blocks, 16, generator=gen, dtype=torch.float64) * (top + 1)).long().clamp(max=top)
    bits[:, 0] = top[:, 0]
    bits = bits - (torch.randint(0, 2, (blocks, 16), generator=gen) << 15)  # sign bit, as int16 wraps it
    x = bits.to(torch.int16).view(dtype)
    return x[:, torch.randperm(16, generator=gen)].reshape(-1, 256)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_quantize_exact_at_every_threshold_boundary(dtype):
    """The kernel codes bf16/fp16 values by comparing them with tabulated boundaries (csrc/quantize_sm90.cu);
    bytes must equal quantize_ref's IEEE divisions, for scales across the E4M3 range and for global scales that
    send blocks to the literal fallback (tiny/huge/Inf totals) and NaN/Inf inputs."""
    gen = torch.Generator().manual_seed(7)
    scales = [1.0, 3.7e-3, 2.9e2] if dtype == torch.float16 else [1.0, 3.7e-3, 2.9e2, 1e-29, 1e-35, 6e30]
    for g in scales:
        x = _boundary_blocks(dtype, g, 1 << 16, gen)
        x[0, :3] = torch.tensor([float("inf"), float("-inf"), 1.0])  # an Inf block: total = 448 g, finite
        x[1, 17] = float("nan")  # a NaN block: NaN scale, zero codes
        x = x.cuda()
        gs = torch.tensor(g, dtype=torch.float32, device="cuda")
        for layout in ("linear", "swizzled"):
            got = nvfp4.quantize(x, global_scale=gs, layout=layout, check_finite=False)
            want = nvfp4.quantize_ref(x, gs, layout)
            assert torch.equal(got.scale.view(torch.uint8), want.scale.view(torch.uint8)), (g, layout)
            bad = (got.data != want.data).nonzero()
            assert bad.numel() == 0, f"g={g} {layout}: {bad.shape[0]} bytes differ, first at {bad[:4].tolist()}"
    # a global scale so small that every total is below the table's range: all blocks take the fallback
    x = (torch.randn(64, 512, generator=gen) * 1e-30).to(dtype).cuda()
    gs = torch.tensor(1e-38, dtype=torch.float32, device="cuda")
    got = nvfp4.quantize(x, global_scale=gs, check_finite=False)
    want = nvfp4.quantize_ref(x, gs)
    assert torch.equal(got.data, want.data) and torch.equal(got.scale.view(torch.uint8), want.scale.view(torch.uint8))
