"""``torch.ops.nvfp4.*``: the GEMM as torch custom ops, so ``torch.compile(fullgraph=True)`` traces it.

Eager calls skip the op dispatcher (it costs microseconds that a decode-sized
GEMM cannot spare); compiled graphs call these ops, whose bodies run the same
``gemm.execute`` and whose fake implementations give the output's metadata.
"""

from __future__ import annotations

import torch

from .gemm import execute
from .problem import DENSE_FORMATS, GemmProblem
from .tensor import NVFP4Tensor


def _rebuild(a, a_scale, a_global, b, b_scale, b_global, layout, has_bias, out_dtype):
    n, k = b.shape[0], b.shape[1] * 2
    bt = NVFP4Tensor(b, b_scale, b_global, layout, (n, k))
    if a_scale is None:
        at, a_format = a, DENSE_FORMATS[a.dtype]
    else:
        at, a_format = NVFP4Tensor(a, a_scale, a_global, layout, (a.shape[0], k)), "nvfp4"
    problem = GemmProblem(a.shape[0], n, k, a_format, out_dtype, has_bias, layout, b.device)
    return problem, at, bt


@torch.library.custom_op("nvfp4::gemm", mutates_args=())
def gemm_op(a: torch.Tensor, a_scale: torch.Tensor | None, a_global: torch.Tensor | None,
            b: torch.Tensor, b_scale: torch.Tensor, b_global: torch.Tensor, bias: torch.Tensor | None,
            layout: str, out_dtype: torch.dtype, backend: str) -> torch.Tensor:
    problem, at, bt = _rebuild(a, a_scale, a_global, b, b_scale, b_global, layout, bias is not None, out_dtype)
    return execute(problem, at, bt, bias, backend, None)


@gemm_op.register_fake
def _gemm_fake(a, a_scale, a_global, b, b_scale, b_global, bias, layout, out_dtype, backend):
    return a.new_empty((a.shape[0], b.shape[0]), dtype=out_dtype)


@torch.library.custom_op("nvfp4::gemm_out", mutates_args=("out",))
def gemm_out_op(a: torch.Tensor, a_scale: torch.Tensor | None, a_global: torch.Tensor | None,
                b: torch.Tensor, b_scale: torch.Tensor, b_global: torch.Tensor, bias: torch.Tensor | None,
                layout: str, out_dtype: torch.dtype, backend: str, out: torch.Tensor) -> None:
    problem, at, bt = _rebuild(a, a_scale, a_global, b, b_scale, b_global, layout, bias is not None, out_dtype)
    execute(problem, at, bt, bias, backend, out)


@gemm_out_op.register_fake
def _gemm_out_fake(a, a_scale, a_global, b, b_scale, b_global, bias, layout, out_dtype, backend, out):
    return None


def call(a, b: NVFP4Tensor, bias, out_dtype, backend, out):
    """Call the op matching ``nvfp4.gemm``'s arguments (what a compiled graph records)."""
    if isinstance(a, NVFP4Tensor):
        args = (a.data, a.scale, a.global_scale)
    else:
        args = (a, None, None)
    args += (b.data, b.scale, b.global_scale, bias, b.layout, out_dtype, backend)
    if out is None:
        return torch.ops.nvfp4.gemm(*args)
    torch.ops.nvfp4.gemm_out(*args, out)
    return out
