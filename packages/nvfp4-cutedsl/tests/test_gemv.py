"""The M = 1 row GEMV (``kernels/gemv_sm90.py``) on the GPU: every GEMV tactic against the float64 reference,
with splits the heuristic would not pick (a slice boundary inside a 1024-wide step, lanes past the slice), K
from one 32-value segment up, N from 1, each launch twice (the split-K counters must come back to zero), and an
exact-grid check. Skips cleanly without a Hopper GPU or the CuTe DSL."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import nvfp4
from nvfp4 import e2m1
from nvfp4.problem import GemmProblem
from nvfp4.testing.conformance import _grid_tensor
from nvfp4.testing.numerics import assert_close_to_reference, make_problem_inputs
from nvfp4_cutedsl import CuteDslBackend
from nvfp4_cutedsl.backend import availability_reason
from nvfp4_cutedsl.tactics import tactic_problem

pytestmark = pytest.mark.skipif(availability_reason() is not None, reason=availability_reason() or "")


def _gemv_tactics(problem: GemmProblem, extra_splits=(3, 5)):
    """The GEMV tactics the backend offers for ``problem`` (act_fp16 ones for W4A4), plus the first of them at
    ``extra_splits`` where valid."""
    offered = [t for t in CuteDslBackend().tactics(problem) if t.gemv_rows]
    assert offered, f"no row-GEMV tactic offered for {problem.describe()}"
    more = [dataclasses.replace(offered[0], split_k=s) for s in extra_splits]
    return offered + [t for t in more if t not in offered and tactic_problem(t, problem) is None]


@pytest.mark.parametrize("a_format", ("bf16", "fp16", "nvfp4"))
@pytest.mark.parametrize("layout", ("linear", "swizzled"))
@pytest.mark.parametrize("out_dtype", (torch.bfloat16, torch.float16, torch.float32), ids=str)
@pytest.mark.parametrize("n,k", ((1, 32), (7, 160), (33, 1056), (300, 3200), (129, 8192)))
def test_gemv_tactics_match_reference(a_format, layout, out_dtype, n, k):
    be = CuteDslBackend()
    problem = GemmProblem(1, n, k, a_format, out_dtype, True, layout, torch.device("cuda"))
    a, b, bias = make_problem_inputs(1, n, k, a_format, layout, "cuda", bias_dtype=out_dtype)
    for tactic in _gemv_tactics(problem):
        for run in range(2):  # the second launch finds the split-K counters as the first left them
            out = torch.full((1, n), float("nan"), dtype=out_dtype, device="cuda")
            be.run(problem, tactic, a, b, bias=bias, out=out)
            torch.cuda.synchronize()
            assert_close_to_reference(out.cpu(), a.to("cpu"), b.to("cpu"),
                                      bias.cpu(), what=f"cutedsl {tactic!r} (run {run}) on {problem.describe()}")


@pytest.mark.parametrize("out_dtype", (torch.bfloat16, torch.float32), ids=str)
@pytest.mark.parametrize("layout", ("linear", "swizzled"))
def test_gemv_exact_grid(layout, out_dtype):
    """E2M1 codes with power-of-two scales: the FP32 accumulation is exact, so every GEMV tactic must give the
    reference rounded once to the output dtype, bit for bit (as the conformance suite's exact-grid test)."""
    n, k = 72, 4160  # 4160: the last 1024-wide step is partial, and split 3 / 5 cut inside a step
    gen = torch.Generator().manual_seed(4321)
    b = _grid_tensor(n, k, 2.0, gen).to_layout(layout)
    x = nvfp4.dequantize(_grid_tensor(1, k, 0.25, gen), torch.float32).to(torch.bfloat16)  # exact in bf16
    bias = e2m1.code_values()[torch.randint(0, 16, (n,), generator=gen)].to(out_dtype)
    want = nvfp4.gemm_ref(x, b, bias, out_dtype)
    problem = GemmProblem(1, n, k, "bf16", out_dtype, True, layout, torch.device("cuda"))
    for tactic in _gemv_tactics(problem):
        out = torch.full((1, n), float("nan"), dtype=out_dtype, device="cuda")
        CuteDslBackend().run(problem, tactic, x.cuda(), b.to("cuda"), bias=bias.cuda(), out=out)
        torch.cuda.synchronize()
        assert torch.equal(out.cpu(), want), f"{tactic!r}: differs from the exact-grid reference"
