"""nvfp4.gemm and gemm_fp4: results, every bad input, backend errors, torch.compile."""

import pytest
import torch

import nvfp4
from core_fakes import CostedBackend
from nvfp4.testing import assert_close_to_reference


def _operands(m=5, n=24, k=64, layout="linear"):
    return torch.randn(m, k), nvfp4.quantize(torch.randn(n, k), layout=layout)


@pytest.mark.parametrize("a_format", ["bf16", "fp16", "fp32", "nvfp4"])
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("m,n,k", [(1, 1, 16), (1, 40, 32), (7, 33, 80)])
def test_gemm_matches_float64(a_format, out_dtype, m, n, k):
    x, b = _operands(m, n, k)
    a = nvfp4.quantize(x) if a_format == "nvfp4" else x.to({"bf16": torch.bfloat16, "fp16": torch.float16,
                                                             "fp32": torch.float32}[a_format])
    bias = torch.randn(n)
    out = nvfp4.gemm(a, b, bias=bias, out_dtype=out_dtype)
    assert out.shape == (m, n) and out.dtype == out_dtype
    assert_close_to_reference(out, a, b, bias.to(out_dtype), what="auto")
    da = nvfp4.dequantize(a, torch.float64) if a_format == "nvfp4" else a.double()
    want = da @ nvfp4.dequantize(b, torch.float64).T + bias.to(out_dtype).double()
    torch.testing.assert_close(out.double(), want, rtol=2 ** -7, atol=1e-5)


def test_out_is_written_in_place_and_non_contiguous_a_accepted():
    x, b = _operands(6, 16, 32)
    out = torch.full((6, 16), float("nan"), dtype=torch.float32)
    xt = torch.randn(32, 6).T  # non-contiguous
    got = nvfp4.gemm(xt, b, out_dtype=torch.float32, out=out)
    assert got is out and torch.isfinite(out).all()
    assert_close_to_reference(out, xt, b)


def test_gemm_fp4_matches_gemm():
    x, w = torch.randn(9, 64), torch.randn(20, 64)
    a = nvfp4.quantize(x, layout="swizzled")
    b = nvfp4.quantize(w, layout="swizzled")
    alpha = (a.global_scale * b.global_scale).reshape(1)
    got = nvfp4.gemm_fp4(a.data, b.data, a.scale.view(torch.uint8), b.scale, alpha, torch.float32)
    want = nvfp4.gemm(a, b, out_dtype=torch.float32)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="alpha must be a float32 tensor of one element"):
        nvfp4.gemm_fp4(a.data, b.data, a.scale, b.scale, torch.ones(2), torch.float32)
    with pytest.raises(ValueError, match="scale must hold"):
        nvfp4.gemm_fp4(a.data, b.data, a.scale[:10], b.scale, alpha, torch.float32)


@pytest.mark.parametrize("call,exc,match", [
    (lambda x, b: nvfp4.gemm(x, torch.randn(24, 64)), TypeError, "b .the weight, .N, K.. must be an NVFP4Tensor"),
    (lambda x, b: nvfp4.gemm(x.int(), b), TypeError, "a must be an NVFP4Tensor or a bfloat16"),
    (lambda x, b: nvfp4.gemm(x.tolist(), b), TypeError, "a must be an NVFP4Tensor or a torch.Tensor"),
    (lambda x, b: nvfp4.gemm(x[None], b), ValueError, "a must be 2-D"),
    (lambda x, b: nvfp4.gemm(x[:, :32], b), ValueError, r"a.shape\[1\] \(32\) must equal b.shape\[1\]"),
    (lambda x, b: nvfp4.gemm(x, b, out_dtype=torch.int8), TypeError, "out_dtype must be"),
    (lambda x, b: nvfp4.gemm(x, b, bias=torch.randn(3)), ValueError, "bias must be a 1-D tensor of N = 24"),
    (lambda x, b: nvfp4.gemm(x, b, bias=torch.ones(24, dtype=torch.int32)), TypeError, "bias must be a floating"),
    (lambda x, b: nvfp4.gemm(x, b, out=torch.empty(5, 23)), ValueError, "out must be a tensor of shape"),
    (lambda x, b: nvfp4.gemm(x, b, out=torch.empty(5, 24)), TypeError, r"out.dtype .* must equal out_dtype"),
    (lambda x, b: nvfp4.gemm(x, b, out=torch.empty(24, 5, dtype=torch.bfloat16).T), ValueError, "contiguous"),
    (lambda x, b: nvfp4.gemm(x, b, backend=None), TypeError, "backend must be a string"),
    (lambda x, b: nvfp4.gemm(x, b, backend="nope"), ValueError, r"installed backend \(.*reference.*\); got 'nope'"),
    (lambda x, b: nvfp4.gemm(nvfp4.quantize(x, layout="swizzled"), b), ValueError, "a.layout .* must match"),
])
def test_bad_input_names_the_argument(call, exc, match):
    x, b = _operands()
    with pytest.raises(exc, match=match):
        call(x, b)


def test_forced_unavailable_and_unsupported_backends_raise_with_reason(fresh_registry):
    nvfp4.register_backend(CostedBackend("offline", [1.0], available=False))
    nvfp4.register_backend(CostedBackend("picky", [1.0], supports_reason="only K >= 4096"))
    x, b = _operands()
    with pytest.raises(nvfp4.BackendUnavailableError, match="offline.*fake: no such device"):
        nvfp4.gemm(x, b, backend="offline")
    with pytest.raises(nvfp4.UnsupportedProblemError, match="picky.*only K >= 4096"):
        nvfp4.gemm(x, b, backend="picky")
    d = nvfp4.explain(x, b)  # auto skips both, with their reasons on record
    assert d.backend == "reference"
    status = {c.backend: (c.status, c.reason) for c in d.candidates}
    assert status["offline"] == ("unavailable", "fake: no such device")
    assert status["picky"] == ("unsupported", "only K >= 4096")


def test_torch_compile_fullgraph():
    x, b = _operands(4, 16, 32)
    bias = torch.randn(16)

    def f(x):
        return nvfp4.gemm(x, b, bias=bias, out_dtype=torch.float32) * 2

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), f(x))
    out = torch.empty(4, 16)
    g = torch.compile(lambda x: nvfp4.gemm(nvfp4.quantize(x, check_finite=False), b, out_dtype=torch.float32,
                                           out=out), fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(g(x), nvfp4.gemm(nvfp4.quantize(x), b, out_dtype=torch.float32))


def test_custom_ops_are_registered_with_fakes():
    x, b = _operands(3, 8, 16)
    x = x.bfloat16()
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        fx = mode.from_tensor(x)
        y = torch.ops.nvfp4.gemm(fx, None, None, mode.from_tensor(b.data), mode.from_tensor(b.scale),
                                 mode.from_tensor(b.global_scale), None, "linear", torch.float16, "auto")
    assert y.shape == (3, 8) and y.dtype == torch.float16


def test_conformance_bound_catches_a_wrong_backend():
    """The tolerance is tight enough that a classic bug (one scale block shifted) fails it."""
    x, b = _operands(8, 32, 64)
    out = nvfp4.gemm(x, b, out_dtype=torch.float32)
    wrong_scale = b.scale.view(torch.uint8).roll(1, dims=1).view(torch.float8_e4m3fn)
    wrong = nvfp4.gemm(x, nvfp4.NVFP4Tensor(b.data, wrong_scale, b.global_scale, "linear", b.shape),
                       out_dtype=torch.float32)
    assert_close_to_reference(out, x, b)
    with pytest.raises(AssertionError, match="elements off"):
        assert_close_to_reference(wrong, x, b)
    with pytest.raises(AssertionError, match="non-finite"):
        assert_close_to_reference(torch.full_like(out, float("nan")), x, b)
