"""The decoder of ``decode.py`` as DSL operations (inline PTX): 8 E2M1 codes + a scale -> 8 BF16/FP16."""

from __future__ import annotations

import cutlass
from cutlass._mlir.dialects import llvm
from cutlass.cutlass_dsl import T, dsl_user_op

from .decode import fp4x8_ptx, scale_pair_ptx


@dsl_user_op
def scale_pair(byte: cutlass.Uint32, bf16: bool, *, loc=None, ip=None) -> cutlass.Uint32:
    """The E4M3 code in the low byte of ``byte`` as two equal BF16 (or FP16) values in one word."""
    res = llvm.inline_asm(T.i32(), [cutlass.Uint32(byte).ir_value(loc=loc, ip=ip)], scale_pair_ptx(bf16),
                          "=r,r", has_side_effects=False, is_align_stack=False,
                          asm_dialect=llvm.AsmDialect.AD_ATT, loc=loc, ip=ip)
    return cutlass.Uint32(res)


@dsl_user_op
def fp4x8_to_16x8(word: cutlass.Uint32, scale2: cutlass.Uint32, bf16: bool, *, loc=None, ip=None):
    """Four words holding the 8 codes of ``word`` (element 0 in the low nibble) times the scale."""
    res = llvm.inline_asm(
        llvm.StructType.get_literal([T.i32(), T.i32(), T.i32(), T.i32()]),
        [cutlass.Uint32(word).ir_value(loc=loc, ip=ip), cutlass.Uint32(scale2).ir_value(loc=loc, ip=ip)],
        fp4x8_ptx(bf16), "=r,=r,=r,=r,r,r", has_side_effects=False, is_align_stack=False,
        asm_dialect=llvm.AsmDialect.AD_ATT, loc=loc, ip=ip)
    return tuple(cutlass.Uint32(llvm.extractvalue(T.i32(), res, [i], loc=loc, ip=ip)) for i in range(4))
