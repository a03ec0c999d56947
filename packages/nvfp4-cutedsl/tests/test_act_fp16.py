"""The W4A4 act_fp16 path on the GPU: the NVFP4 -> FP16 kernel bit for bit against the reference, and the
act_fp16 tactics against the float64 reference. Skips cleanly without a Hopper GPU or the CuTe DSL."""

from __future__ import annotations

import pytest
import torch

import nvfp4
from nvfp4.problem import GemmProblem
from nvfp4.testing.numerics import assert_close_to_reference, make_problem_inputs
from nvfp4_cutedsl import CuteDslBackend
from nvfp4_cutedsl.backend import availability_reason

pytestmark = pytest.mark.skipif(availability_reason() is not None, reason=availability_reason() or "")


@pytest.mark.parametrize("layout", ("linear", "swizzled"))
@pytest.mark.parametrize("rows,k", ((1, 32), (33, 96), (130, 512), (257, 4096)))
def test_dequantize_f16_is_exact(rows, k, layout):
    from nvfp4_cutedsl import runner

    gen = torch.Generator(device="cuda").manual_seed(rows * 7919 + k)
    x = torch.randn(rows, k, device="cuda", generator=gen) * torch.logspace(-3, 3, k, device="cuda")
    x[0, :16] = 0.0  # an all-zero block (scale 0)
    a = nvfp4.quantize(x.to(torch.bfloat16), layout=layout)
    gsb = torch.tensor([0.37], device="cuda")
    x16 = torch.full((rows, k), float("nan"), dtype=torch.float16, device="cuda")  # unwritten stays NaN
    alpha = torch.full((1,), float("nan"), device="cuda")
    runner.dequantize_f16(a, gsb, x16, alpha, layout, torch.cuda.current_stream().cuda_stream)
    unit = nvfp4.NVFP4Tensor(a.data, a.scale, torch.ones_like(a.global_scale), layout, a.shape)
    want = nvfp4.dequantize_ref(unit, torch.float64)
    assert torch.equal(x16.double(), want), "E2M1 x E4M3 is exact in FP16: the copy must match bit for bit"
    assert alpha.item() == (a.global_scale.float() * gsb).item()


@pytest.mark.parametrize("layout", ("linear", "swizzled"))
@pytest.mark.parametrize("out_dtype", (torch.bfloat16, torch.float16, torch.float32), ids=str)
@pytest.mark.parametrize("m,n,k", ((1, 8, 64), (17, 136, 256), (130, 264, 1024), (300, 128, 2048)))
def test_act_fp16_tactics_match_reference(m, n, k, out_dtype, layout):
    be = CuteDslBackend()
    problem = GemmProblem(m, n, k, "nvfp4", out_dtype, True, layout, torch.device("cuda"))
    tactics = [t for t in be.tactics(problem) if t.act_fp16]
    assert tactics, f"no act_fp16 tactic offered for {problem.describe()}"
    a, b, bias = make_problem_inputs(m, n, k, "nvfp4", layout, "cuda", bias_dtype=out_dtype)
    for tactic in tactics:
        out = torch.full((m, n), float("nan"), dtype=out_dtype, device="cuda")
        be.run(problem, tactic, a, b, bias=bias, out=out)
        torch.cuda.synchronize()
        assert_close_to_reference(out.cpu(), a.to("cpu"), b.to("cpu"), bias.cpu(),
                                  what=f"cutedsl {tactic!r} on {problem.describe()}")
