"""How close a backend's output must be to the float64 reference, and random inputs for a problem.

The bound is rigorous for FP32 accumulation of exact block-scaled products:
``|out - ref| <= eps_out * |ref| + K * 2**-23 * alpha * (|A| @ |B|^T) + tiny``,
where ``eps_out`` is the output dtype's rounding (half an ulp, doubled for
slack). A wrong index, a dropped scale or an unwritten element misses it by
orders of magnitude; accumulation order does not.
"""

from __future__ import annotations

import torch

from ..problem import FORMAT_DTYPES
from ..quantize import dequantize_ref, quantize
from ..reference import _unscaled, gemm_ref_f64
from ..tensor import NVFP4Tensor

_EPS = {torch.float32: 2.0 ** -23, torch.bfloat16: 2.0 ** -8, torch.float16: 2.0 ** -11}
_TINY = {torch.float32: 1e-30, torch.bfloat16: 1e-30, torch.float16: 6e-8}


def error_bound(a, b: NVFP4Tensor, bias, out_dtype: torch.dtype, a_rounding: float = 0.0) -> torch.Tensor:
    """Elementwise tolerance for ``gemm(a, b, bias)`` against the float64 reference.

    ``a_rounding`` is the relative rounding a backend applies to a dense ``a``
    (0 when it consumes ``a`` exactly).
    """
    if isinstance(a, NVFP4Tensor):
        da = dequantize_ref(_unscaled(a), torch.float64).abs()
        alpha = float(a.global_scale) * float(b.global_scale)
    else:
        da = a.double().abs()
        alpha = float(b.global_scale)
    db = dequantize_ref(_unscaled(b), torch.float64).abs()
    mag = (da @ db.T) * alpha
    k = b.shape[1]
    ref = gemm_ref_f64(a, b, bias).abs()
    return 2 * _EPS[out_dtype] * ref + (k * 2.0 ** -23 + a_rounding) * mag + _TINY[out_dtype]


def assert_close_to_reference(out: torch.Tensor, a, b: NVFP4Tensor, bias=None, *, a_rounding: float = 0.0,
                              what: str = "") -> None:
    """Raise AssertionError unless every element of ``out`` is finite and within ``error_bound``."""
    ref = gemm_ref_f64(a, b, bias)
    bound = error_bound(a, b, bias, out.dtype, a_rounding)
    o = out.double()
    if not bool(torch.isfinite(o).all()):
        bad = (~torch.isfinite(o)).nonzero()[:5].tolist()
        raise AssertionError(f"{what}: non-finite output at {bad} (unwritten or overflowed)")
    err = (o - ref).abs()
    excess = err - bound
    if bool((excess > 0).any()):
        idx = int(torch.argmax(excess.flatten()))
        r, c = divmod(idx, out.shape[1])
        n_bad = int((excess > 0).sum())
        raise AssertionError(f"{what}: {n_bad} of {out.numel()} elements off; worst at ({r}, {c}): "
                             f"got {float(o[r, c])!r}, reference {float(ref[r, c])!r}, "
                             f"bound {float(bound[r, c]):.3g}")


def make_problem_inputs(m: int, n: int, k: int, a_format: str, layout: str, device, *, bias_dtype=None,
                        seed: int | None = None):
    """Fresh random operands: NVFP4 weight [n, k], activation [m, k] (NVFP4 or dense), optional bias."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed if seed is not None else int(torch.randint(0, 2**31 - 1, ()).item()))
    # Rows of different magnitudes exercise the per-block scales; outputs stay well inside fp16's range.
    w = torch.randn(n, k, generator=gen) * torch.exp(0.5 * torch.randn(n, 1, generator=gen))
    x = torch.randn(m, k, generator=gen) * torch.exp(0.5 * torch.randn(m, 1, generator=gen)) / k ** 0.25
    b = quantize(w.to(device), layout=layout)
    if a_format == "nvfp4":
        a = quantize(x.to(device), layout=layout)
    else:
        a = x.to(FORMAT_DTYPES[a_format]).to(device)
    bias = None if bias_dtype is None else torch.randn(n, generator=gen).to(bias_dtype).to(device)
    return a, b, bias
