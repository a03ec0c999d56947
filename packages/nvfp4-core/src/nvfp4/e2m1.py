"""FP4 E2M1: the 16 codes, rounding to them, and packing two per byte.

Codes 0..7 are +{0, 0.5, 1, 1.5, 2, 3, 4, 6}; codes 8..15 the same magnitudes
negative. Two codes per byte along K: the even K index in the low nibble.

Rounding rule (every quantizer, in any backend, must match it bit for bit):
round to nearest, ties to the even code (mantissa bit 0), saturate at 6; the
sign bit is set only for a negative input whose magnitude code is not 0, so
zero is always code 0.
"""

from __future__ import annotations

import torch

#: Magnitudes of codes 0..7.
E2M1_MAGNITUDES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
#: Largest E2M1 magnitude.
E2M1_MAX = 6.0

# Midpoints between neighbouring magnitudes. A tie goes to the even code, so
# a midpoint whose lower code is even rounds down (strict >) and one whose
# upper code is even rounds up (>=).
_TIE_DOWN = (0.25, 1.25, 2.5, 5.0)  # 0|1, 2|3, 4|5, 6|7
_TIE_UP = (0.75, 1.75, 3.5)  # 1|2, 3|4, 5|6

_lut_cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def code_values(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The 16 code values as a tensor (code 8 is -0.0)."""
    key = (torch.device(device), dtype)
    lut = _lut_cache.get(key)
    if lut is None:
        mags = list(E2M1_MAGNITUDES)
        lut = torch.tensor(mags + [-v for v in mags], dtype=dtype, device=device)
        _lut_cache[key] = lut
    return lut


def encode(y: torch.Tensor) -> torch.Tensor:
    """Round float32 ``y`` (already divided by its scale) to E2M1 codes (uint8, 0..15)."""
    mag = y.abs()
    code = torch.zeros_like(mag, dtype=torch.uint8)
    for b in _TIE_DOWN:
        code += mag > b
    for b in _TIE_UP:
        code += mag >= b
    negative = (y < 0) & (code != 0)
    return code | (negative.to(torch.uint8) << 3)


def pack(codes: torch.Tensor) -> torch.Tensor:
    """Pack codes ``[R, K]`` into bytes ``[R, K/2]``; even K index in the low nibble."""
    lo = codes[..., 0::2]
    hi = codes[..., 1::2]
    return (lo | (hi << 4)).contiguous()


def unpack(data: torch.Tensor) -> torch.Tensor:
    """Unpack bytes ``[R, K/2]`` into codes ``[R, K]``."""
    lo = data & 0x0F
    hi = data >> 4
    return torch.stack((lo, hi), dim=-1).reshape(*data.shape[:-1], data.shape[-1] * 2)


def decode(data: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Packed bytes ``[R, K/2]`` to their E2M1 values ``[R, K]`` (no scales applied)."""
    return code_values(data.device, dtype)[unpack(data).long()]
