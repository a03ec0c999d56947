"""The decoders of ``decode.py`` as DSL operations (inline PTX)."""

from __future__ import annotations

import cutlass
from cutlass.cutlass_dsl import dsl_user_op

from .decode import fp4_pairs_ptx, fp4x8_ptx, gather_ptx, scale_pair_ptx, scale_pairs_ptx
from .ptx_ops import inline_asm


def _asm(ptx: str, n_out: int, args, *, loc, ip):
    """Inline PTX with ``n_out`` 32-bit results and 32-bit arguments ``args``; the results as Uint32."""
    cons = ",".join(["=r"] * n_out + ["r"] * len(args))
    res = inline_asm(ptx, [cutlass.Uint32] * n_out, [(a, cutlass.Uint32) for a in args], cons, loc=loc, ip=ip)
    return res[0] if n_out == 1 else tuple(res)


@dsl_user_op
def scale_pair(byte: cutlass.Uint32, bf16: bool, *, loc=None, ip=None) -> cutlass.Uint32:
    """The E4M3 code in the low byte of ``byte`` as two equal BF16 (or FP16) values in one word."""
    return _asm(scale_pair_ptx(bf16), 1, [byte], loc=loc, ip=ip)


@dsl_user_op
def fp4x8_to_16x8(word: cutlass.Uint32, scale2: cutlass.Uint32, bf16: bool, *, loc=None, ip=None):
    """Four words holding the 8 codes of ``word`` (element 0 in the low nibble) times the scale."""
    return _asm(fp4x8_ptx(bf16), 4, [word, scale2], loc=loc, ip=ip)


@dsl_user_op
def gather4(w0, w1, w2, w3, sel, *, loc=None, ip=None) -> cutlass.Uint32:
    """Byte t of each of four words as one word (``sel`` = ``decode.gather_sel(t)``)."""
    return _asm(gather_ptx(), 1, [w0, w1, w2, w3, sel], loc=loc, ip=ip)


@dsl_user_op
def fp4_pairs(g, s01, s23, bf16: bool, *, loc=None, ip=None):
    """Four registers: byte i of ``g`` (two codes, low nibble first) times multiplier s01 (i < 2) or s23."""
    return _asm(fp4_pairs_ptx(bf16), 4, [g, s01, s23], loc=loc, ip=ip)


@dsl_user_op
def scale_pairs(two_scales, bf16: bool, *, loc=None, ip=None):
    """The block multipliers of the two E4M3 scales in the low 16 bits of ``two_scales``."""
    return _asm(scale_pairs_ptx(bf16), 2, [two_scales], loc=loc, ip=ip)
