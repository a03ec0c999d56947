"""The ``reference`` backend: dequantize, then matmul, in float64. Runs anywhere torch runs.

It is the oracle of every test and the last resort of ``backend="auto"``: auto
profiles it only when no other available backend supports a problem.
"""

from __future__ import annotations

import torch

from .backend import Backend
from .hookspecs import hookimpl
from .problem import GemmProblem
from .quantize import dequantize_ref
from .tensor import NVFP4Tensor


def gemm_ref(a: NVFP4Tensor | torch.Tensor, b: NVFP4Tensor, bias: torch.Tensor | None = None,
             out_dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """``dequant(a) @ dequant(b).T (+ bias)`` in float64, cast to ``out_dtype``.

    The block-scaled products are exact in float64 and alpha is applied to the
    accumulator, so this is the exact value up to the final rounding.
    """
    return gemm_ref_f64(a, b, bias).to(out_dtype)


def gemm_ref_f64(a, b, bias=None) -> torch.Tensor:
    if isinstance(a, NVFP4Tensor):
        da = dequantize_ref(_unscaled(a), torch.float64)
        alpha = a.global_scale.double() * b.global_scale.double()
    else:
        da = a.double()
        alpha = b.global_scale.double()
    db = dequantize_ref(_unscaled(b), torch.float64)
    acc = (da @ db.T) * alpha
    if bias is not None:
        acc = acc + bias.double()
    return acc


def _unscaled(t: NVFP4Tensor) -> NVFP4Tensor:
    """``t`` with a global scale of 1: alpha goes on the accumulator, as in the kernels."""
    one = torch.ones((), dtype=torch.float32, device=t.device)
    return NVFP4Tensor(t.data, t.scale, one, t.layout, t.shape)


class ReferenceBackend(Backend):
    name = "reference"
    fallback_only = True

    def run(self, problem: GemmProblem, tactic, a, b, *, bias, out) -> None:
        out.copy_(gemm_ref_f64(a, b, bias))


@hookimpl
def nvfp4_register_backends():
    return [ReferenceBackend()]
