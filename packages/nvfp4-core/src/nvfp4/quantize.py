"""Quantize to and dequantize from NVFP4 (the ModelOpt / TensorRT-LLM recipe).

For one block of 16 values along K, with ``g`` the global dequantization scale:

    s   = e4m3(clamp((amax(block) / 6) / g, 2**-9, 448))      # float32 math, RNE to E4M3
    q_i = e2m1((x_i as float32) / (float32(s) * g))            # see ``e2m1`` for the rounding

Any fast quantizer (a plugin's ``nvfp4_register_quantizers``) must give the
same bytes as ``quantize_ref``; the conformance suite checks it.
"""

from __future__ import annotations

import torch

from . import e2m1, layouts
from .layouts import BLOCK, LAYOUTS, LINEAR, SWIZZLED
from .tensor import SCALE_DTYPE, NVFP4Tensor

E4M3_MAX = 448.0
E4M3_MIN_SUBNORMAL = 2.0 ** -9
#: ``amax / GLOBAL_DIVISOR`` is the default global dequantization scale.
GLOBAL_DIVISOR = e2m1.E2M1_MAX * E4M3_MAX  # 2688

_FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _check_input(x, global_scale, layout: str, check_finite: bool):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"x must be float32, bfloat16 or float16, got {x.dtype}")
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D [rows, K], got {x.dim()}-D shape {tuple(x.shape)}")
    if x.shape[0] < 1 or x.shape[1] < 1 or x.shape[1] % BLOCK:
        raise ValueError(f"x.shape[1] (K) must be a positive multiple of {BLOCK}, got shape {tuple(x.shape)}; "
                         "pad K with zeros to a multiple of 16")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if check_finite and not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN or Inf, which NVFP4 cannot represent "
                         "(pass check_finite=False to skip this check; results are then unspecified)")
    if global_scale is None:
        return None
    if isinstance(global_scale, torch.Tensor):
        if global_scale.numel() != 1:
            raise ValueError(f"global_scale must hold one element, got shape {tuple(global_scale.shape)}")
        gs = global_scale.to(device=x.device, dtype=torch.float32).reshape(())
        if check_finite and not bool(torch.isfinite(gs) & (gs > 0)):
            raise ValueError(f"global_scale must be finite and > 0, got {float(gs)}")
        return gs
    g = float(global_scale)
    if not (g > 0 and g != float("inf")):
        raise ValueError(f"global_scale must be finite and > 0, got {global_scale!r}")
    return torch.tensor(g, dtype=torch.float32, device=x.device)


def default_global_scale(x: torch.Tensor) -> torch.Tensor:
    """``amax(x) / 2688`` as a float32 0-d tensor (1.0 for an all-zero x); no host sync."""
    # One reduction, no |x| temporary: activations are quantized on every call in W4A4.
    amax = torch.linalg.vector_norm(x, float("inf"), dtype=torch.float32)
    return torch.where(amax > 0, amax / GLOBAL_DIVISOR, torch.ones_like(amax))


def quantize_ref(x: torch.Tensor, global_scale: torch.Tensor, layout: str = LINEAR) -> NVFP4Tensor:
    """Pure-torch quantization; ``global_scale`` is a float32 0-d tensor on x's device."""
    rows, k = x.shape
    blocks = x.float().reshape(rows, k // BLOCK, BLOCK)
    amax = blocks.abs().amax(dim=-1)
    # Divide by a 6 on x's device: on CUDA, torch turns division by a Python/CPU scalar into a multiply by
    # its reciprocal (not bit-equal to IEEE division), which would make the bytes depend on the device.
    six = torch.full((), e2m1.E2M1_MAX, dtype=torch.float32, device=amax.device)
    s = ((amax / six) / global_scale).clamp(E4M3_MIN_SUBNORMAL, E4M3_MAX).to(SCALE_DTYPE)
    total = s.float() * global_scale
    codes = e2m1.encode(blocks / total.unsqueeze(-1)).reshape(rows, k)
    scale = layouts.swizzle(s) if layout == SWIZZLED else s
    return NVFP4Tensor(e2m1.pack(codes), scale, global_scale, layout, (rows, k))


def quantize(x: torch.Tensor, *, global_scale=None, layout: str = LINEAR,
             check_finite: bool = True) -> NVFP4Tensor:
    """Quantize a 2-D float tensor ``[R, K]`` (K a multiple of 16) to NVFP4.

    Args:
        x: float32, bfloat16 or float16.
        global_scale: the dequantization factor (float or one-element tensor);
            default ``amax(x) / (6 * 448)``.
        layout: ``"linear"`` or ``"swizzled"`` scales.
        check_finite: raise ValueError on NaN/Inf in ``x`` (one device sync). With
            False, non-finite inputs give unspecified values, never a crash.

    On a device where an installed plugin offers a quantizer (e.g. the CUDA
    kernel of nvfp4-cutlass), that quantizer runs; it gives the same bytes.
    """
    gs = _check_input(x, global_scale, layout, check_finite)
    if gs is None:
        gs = default_global_scale(x)
    from .registry import find_quantizer  # lazy: plugins load on first use

    quantizer = find_quantizer(x, layout)
    if quantizer is not None:
        return quantizer.quantize(x.contiguous(), gs, layout)
    return quantize_ref(x, gs, layout)


def dequantize(t: NVFP4Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """NVFP4 to a dense ``[R, K]`` tensor of ``dtype`` (computed in float32)."""
    if not isinstance(t, NVFP4Tensor):
        raise TypeError(f"t must be an NVFP4Tensor, got {type(t).__name__}")
    if dtype not in _FLOAT_DTYPES + (torch.float64,):
        raise TypeError(f"dtype must be a floating dtype, got {dtype}")
    return dequantize_ref(t, torch.float64 if dtype == torch.float64 else torch.float32).to(dtype)


def dequantize_ref(t: NVFP4Tensor, compute_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """e2m1 * e4m3 * global in ``compute_dtype`` (the first product is exact in float32)."""
    rows, k = t.shape
    values = e2m1.decode(t.data, compute_dtype).reshape(rows, k // BLOCK, BLOCK)
    scale = t.linear_scale().to(compute_dtype).unsqueeze(-1)
    return (values * scale).reshape(rows, k) * t.global_scale.to(compute_dtype)
