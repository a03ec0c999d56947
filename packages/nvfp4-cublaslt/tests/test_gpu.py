"""GPU checks the shared conformance suite (test_gpu_conformance.py) does not cover (dequantization bit-exactness,
pipelined tactics, workspace reuse, CUDA graph capture with alpha read on the device)."""

from __future__ import annotations

import pytest
import torch

import nvfp4
from nvfp4.problem import GemmProblem
from nvfp4.quantize import dequantize_ref
from nvfp4.reference import _unscaled
from nvfp4.registry import REGISTRY
from nvfp4.testing.numerics import assert_close_to_reference, make_problem_inputs
from nvfp4_cublaslt.tactics import CublasLtTactic


def _backend():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    av = REGISTRY.availability("cublaslt")
    if not av.ok:
        pytest.skip(f"cublaslt unavailable: {av.reason}")
    return REGISTRY.entry("cublaslt").backend


def _cpu(t):
    return t.to("cpu")


@pytest.mark.parametrize("layout", ("linear", "swizzled"))
@pytest.mark.parametrize("dtype", (torch.bfloat16, torch.float16, torch.float32), ids=str)
@pytest.mark.parametrize("rows,k", ((1, 16), (3, 48), (130, 96), (257, 2064), (1000, 4096)))
def test_dequantize_bit_exact(layout, dtype, rows, k):
    be = _backend()
    x = torch.randn(rows, k, device="cuda") * torch.exp(2 * torch.randn(rows, 1, device="cuda"))
    t = nvfp4.quantize(x, layout=layout)
    out = torch.full((rows, k), float("nan"), dtype=dtype, device="cuda")
    be.dequantize_into(t, out)
    want = dequantize_ref(_unscaled(t), torch.float32).to(dtype)
    assert torch.equal(out, want)


@pytest.mark.parametrize("a_format", ("bf16", "nvfp4", "fp32"))
@pytest.mark.parametrize("out_dtype", (torch.bfloat16, torch.float16), ids=str)
def test_pipelined_tactics(a_format, out_dtype):
    be = _backend()
    m, n, k = 600, 1024, 512
    p = GemmProblem(m, n, k, a_format, out_dtype, True, "swizzled", torch.device("cuda", torch.cuda.current_device()))
    tactics = [t for t in be.tactics(p) if t.chunks > 1]
    assert tactics, "pipelined tactics are offered from M = 512 on when N splits"
    a, b, bias = make_problem_inputs(m, n, k, a_format, "swizzled", "cuda", bias_dtype=out_dtype)
    for t in tactics:
        out = torch.full((m, n), float("nan"), dtype=out_dtype, device="cuda")
        be.run(p, t, a, b, bias=bias, out=out)
        assert_close_to_reference(out.cpu(), _cpu(a), _cpu(b), bias.cpu(), what=f"{t}")


@pytest.mark.parametrize("a_format", ("bf16", "nvfp4", "fp32", "fp16"))
@pytest.mark.parametrize("alpha_vector", (False, True), ids=("alpha-scalar", "alpha-vector"))
def test_both_pointer_modes(a_format, alpha_vector):
    """Every algorithm of both alpha pointer modes (device scalars; per-row vector with beta zero)."""
    be = _backend()
    dev = torch.device("cuda", torch.cuda.current_device())
    checked = 0
    for m, n, k, out_dtype in ((33, 384, 512, torch.bfloat16), (600, 1024, 512, torch.float16),
                               (7, 130, 48, torch.bfloat16)):
        p = GemmProblem(m, n, k, a_format, out_dtype, True, "linear", dev)
        tactics = be.heuristic_tactics(p, "dequant", alpha_vector=alpha_vector)
        if alpha_vector and not tactics:
            continue  # cuBLASLt offers no vector-alpha kernel here; tactics() then uses device scalars
        assert tactics
        checked += 1
        a, b, bias = make_problem_inputs(m, n, k, a_format, "linear", "cuda", bias_dtype=out_dtype)
        for t in tactics:
            assert t.alpha_vector == int(alpha_vector)
            out = torch.full((m, n), float("nan"), dtype=out_dtype, device="cuda")
            be.run(p, t, a, b, bias=bias, out=out)
            assert_close_to_reference(out.cpu(), _cpu(a), _cpu(b), bias.cpu(), what=f"{t} on {p.describe()}")
    if not checked:
        pytest.skip("cuBLASLt offers no ALPHA_DEVICE_VECTOR_BETA_ZERO algorithm for these problems "
                    "(the case on the H100 with cuBLASLt 13.1)")


def test_workspace_is_reused():
    be = _backend()
    a, b, _ = make_problem_inputs(64, 512, 1024, "nvfp4", "linear", "cuda")
    nvfp4.gemm(a, b, backend="cublaslt")
    ws = be.workspace_tensor(torch.device("cuda"))
    assert ws is not None
    ptr = ws.data_ptr()
    for _ in range(3):
        nvfp4.gemm(a, b, backend="cublaslt")
    assert be.workspace_tensor(torch.device("cuda")).data_ptr() == ptr


def test_cuda_graph_reads_alpha_on_device():
    be = _backend()
    m, n, k = 32, 256, 512
    a, b, bias = make_problem_inputs(m, n, k, "nvfp4", "swizzled", "cuda", bias_dtype=torch.bfloat16)
    dev = torch.device("cuda", torch.cuda.current_device())
    p = GemmProblem(m, n, k, "nvfp4", torch.bfloat16, True, "swizzled", dev)
    tactic = be.heuristic_tactic(p)
    out = torch.empty(m, n, dtype=torch.bfloat16, device="cuda")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        be.run(p, tactic, a, b, bias=bias, out=out)  # warm up: plan + workspace on this stream
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g, stream=s):
        be.run(p, tactic, a, b, bias=bias, out=out)
    out.fill_(float("nan"))
    g.replay()
    torch.cuda.synchronize()
    assert_close_to_reference(out.cpu(), _cpu(a), _cpu(b), bias.cpu(), what="graph replay")
    # alpha is read from the global-scale tensors at replay time, not baked in at capture.
    b.global_scale.mul_(2.0)
    g.replay()
    torch.cuda.synchronize()
    assert_close_to_reference(out.cpu(), _cpu(a), _cpu(b), bias.cpu(), what="graph replay after scale change")


def test_unknown_but_wellformed_tactic_is_rejected_by_cublaslt():
    be = _backend()
    dev = torch.device("cuda", torch.cuda.current_device())
    p = GemmProblem(16, 256, 256, "bf16", torch.bfloat16, False, "linear", dev)
    bogus = CublasLtTactic("dequant", 99999, 0, 0, 1, 0, 0, 0, 0, 0)
    a, b, _ = make_problem_inputs(16, 256, 256, "bf16", "linear", "cuda")
    out = torch.empty(16, 256, dtype=torch.bfloat16, device="cuda")
    with pytest.raises((ValueError, RuntimeError)):
        be.run(p, bogus, a, b, bias=None, out=out)
