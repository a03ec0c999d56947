"""``nvfp4.gemm`` and ``nvfp4.gemm_fp4``: validation, then dispatch to the chosen backend."""

from __future__ import annotations

import torch

from .errors import BackendUnavailableError, UnsupportedProblemError
from .layouts import SWIZZLED
from .problem import DENSE_FORMATS, OUT_DTYPES, GemmProblem
from .tensor import NVFP4Tensor

AUTO = "auto"


def _check_operands(a, b, bias, out_dtype, out, backend) -> GemmProblem:
    if not isinstance(b, NVFP4Tensor):
        raise TypeError(f"b (the weight, [N, K]) must be an NVFP4Tensor, got {type(b).__name__}; "
                        "make one with nvfp4.quantize")
    n, k = b.shape
    if isinstance(a, NVFP4Tensor):
        a_format = "nvfp4"
        if a.layout != b.layout:
            raise ValueError(f"a.layout ({a.layout!r}) and b.layout ({b.layout!r}) must match; "
                             "convert one with .to_layout()")
    elif isinstance(a, torch.Tensor):
        a_format = DENSE_FORMATS.get(a.dtype)
        if a_format is None:
            raise TypeError(f"a must be an NVFP4Tensor or a bfloat16/float16/float32 tensor, got dtype {a.dtype}")
        if a.dim() != 2:
            raise ValueError(f"a must be 2-D [M, K], got shape {tuple(a.shape)}")
    else:
        raise TypeError(f"a must be an NVFP4Tensor or a torch.Tensor, got {type(a).__name__}")
    m, ka = a.shape
    if ka != k:
        raise ValueError(f"a.shape[1] ({ka}) must equal b.shape[1] (K = {k}): a is [M, K], b is [N, K]")
    if m < 1:
        raise ValueError(f"a must have at least one row, got shape {tuple(a.shape)}")
    if a.device != b.device:
        raise ValueError(f"a is on {a.device} but b is on {b.device}")
    if out_dtype not in OUT_DTYPES:
        raise TypeError(f"out_dtype must be torch.bfloat16, torch.float16 or torch.float32, got {out_dtype!r}")
    if bias is not None:
        if not isinstance(bias, torch.Tensor) or bias.dim() != 1 or bias.shape[0] != n:
            raise ValueError(f"bias must be a 1-D tensor of N = {n} elements, got "
                             f"{tuple(bias.shape) if isinstance(bias, torch.Tensor) else type(bias).__name__}")
        if not bias.is_floating_point():
            raise TypeError(f"bias must be a floating tensor, got {bias.dtype}")
        if bias.device != b.device:
            raise ValueError(f"bias is on {bias.device} but b is on {b.device}")
    if out is not None:
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (m, n):
            raise ValueError(f"out must be a tensor of shape {(m, n)}, got "
                             f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
        if out.dtype != out_dtype:
            raise TypeError(f"out.dtype ({out.dtype}) must equal out_dtype ({out_dtype})")
        if out.device != b.device:
            raise ValueError(f"out is on {out.device} but b is on {b.device}")
        if not out.is_contiguous():
            raise ValueError("out must be contiguous")
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a string ('auto' or a backend name), got {type(backend).__name__}")
    return GemmProblem(m, n, k, a_format, out_dtype, bias is not None, b.layout, b.device)


def gemm(a, b, *, bias=None, out_dtype: torch.dtype = torch.bfloat16, backend: str = AUTO,
         out: torch.Tensor | None = None) -> torch.Tensor:
    """``dequant(a) @ dequant(b).T (+ bias)`` as an ``[M, N]`` tensor of ``out_dtype``.

    Args:
        a: the activation: an NVFP4Tensor ``[M, K]`` (W4A4) or a bf16/fp16/fp32
            tensor ``[M, K]`` (weight-only).
        b: the weight, an NVFP4Tensor ``[N, K]``.
        bias: optional ``[N]`` tensor, added after alpha, before the cast.
        out_dtype: torch.bfloat16, torch.float16 or torch.float32.
        backend: ``"auto"`` (the fastest measured backend and tactic for this
            problem) or an installed backend's name (``nvfp4.backends()``).
        out: optional preallocated contiguous ``[M, N]`` output of ``out_dtype``.

    The product of the NVFP4 operands' global scales (alpha) is applied to the
    FP32 accumulator.
    """
    problem = _check_operands(a, b, bias, out_dtype, out, backend)
    if torch.compiler.is_compiling():
        from . import ops

        return ops.call(a, b, bias, out_dtype, backend, out)
    return execute(problem, a, b, bias, backend, out)


def execute(problem: GemmProblem, a, b: NVFP4Tensor, bias, backend: str, out) -> torch.Tensor:
    """Run a validated problem (the body of ``gemm`` and of the custom ops)."""
    from .tuning import select  # lazy: plugins load on first use

    chosen, tactic = select(problem, backend)
    if bias is not None and (bias.dtype != problem.out_dtype or not bias.is_contiguous()):
        bias = bias.to(problem.out_dtype).contiguous()
    if not isinstance(a, NVFP4Tensor) and not a.is_contiguous():
        a = a.contiguous()
    if out is None:
        out = torch.empty((problem.m, problem.n), dtype=problem.out_dtype, device=problem.device)
    chosen.run(problem, tactic, a, b, bias=bias, out=out)
    return out


def check_runnable(name: str, problem: GemmProblem):
    """The backend object for a forced ``name``; raises with its reason when it can't run ``problem``."""
    from .registry import REGISTRY

    entry = REGISTRY.entry(name)  # ValueError listing the installed backends
    av = REGISTRY.availability(name)
    if not av.ok:
        raise BackendUnavailableError(f"backend {name!r} is installed but unavailable: {av.reason}")
    reason = entry.backend.supports(problem)
    if reason is not None:
        raise UnsupportedProblemError(f"backend {name!r} does not support {problem.describe()}: {reason}")
    return entry.backend


_ones: dict[torch.device, torch.Tensor] = {}


def _one(device: torch.device) -> torch.Tensor:
    t = _ones.get(device)
    if t is None:
        t = _ones[device] = torch.ones((), dtype=torch.float32, device=device)
    return t


def gemm_fp4(act_fp4: torch.Tensor, weight: torch.Tensor, act_sf: torch.Tensor, weight_scale: torch.Tensor,
             alpha: torch.Tensor, output_dtype: torch.dtype, *, bias: torch.Tensor | None = None,
             backend: str = AUTO) -> torch.Tensor:
    """TensorRT-LLM's ``fp4_gemm`` form: packed uint8 operands, swizzled scales, one alpha.

    ``act_fp4`` is ``[M, K/2]`` and ``weight`` ``[N, K/2]`` uint8; ``act_sf`` and
    ``weight_scale`` are swizzled 128x4 scale buffers (uint8 or float8_e4m3fn, any
    shape with the right number of elements); ``alpha`` a float32 tensor of one
    element (the product of the two global dequantization scales).
    """
    for arg, t in (("act_fp4", act_fp4), ("weight", weight)):
        if not isinstance(t, torch.Tensor) or t.dim() != 2:
            raise ValueError(f"{arg} must be a 2-D packed uint8 tensor [rows, K/2], got "
                             f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
    if not isinstance(alpha, torch.Tensor) or alpha.numel() != 1 or alpha.dtype != torch.float32:
        raise ValueError("alpha must be a float32 tensor of one element")
    k = act_fp4.shape[1] * 2
    a = NVFP4Tensor.from_raw(act_fp4, act_sf, alpha, layout=SWIZZLED, shape=(act_fp4.shape[0], k))
    b = NVFP4Tensor.from_raw(weight, weight_scale, _one(weight.device), layout=SWIZZLED,
                             shape=(weight.shape[0], weight.shape[1] * 2))
    return gemm(a, b, bias=bias, out_dtype=output_dtype, backend=backend)
