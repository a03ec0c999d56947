"""Inline-PTX operations the row GEMV (``gemv_sm90.py``) needs and the DSL does not offer as such: predicated
streaming loads straight into registers, 16-byte shared loads by address, and ``mma.sync`` on raw registers
(the GEMV chooses which K values each lane supplies, so it builds the MMA fragments itself)."""

from __future__ import annotations

import cutlass
from cutlass._mlir.dialects import llvm
from cutlass.cutlass_dsl import dsl_user_op


def inline_asm(ptx: str, outs: list, ins: list, constraints: str, *, loc, ip) -> list:
    """Inline PTX with results of the DSL types ``outs`` and ``(value, DSL type)`` arguments ``ins``."""
    args = [ty(v).ir_value(loc=loc, ip=ip) for v, ty in ins]
    irs = [ty.mlir_type for ty in outs]
    ret = irs[0] if len(irs) == 1 else llvm.StructType.get_literal(irs)
    res = llvm.inline_asm(ret, args, ptx, constraints, has_side_effects=False, is_align_stack=False,
                          asm_dialect=llvm.AsmDialect.AD_ATT, loc=loc, ip=ip)
    if len(outs) == 1:
        return [outs[0](res)]
    return [ty(llvm.extractvalue(ir, res, [i], loc=loc, ip=ip)) for i, (ty, ir) in enumerate(zip(outs, irs))]


# Weights are read once: keep them out of L1. A false predicate gives zeros (early-clobber outputs: they are
# zeroed before the address is read).
_LD_V4 = ("{\n.reg .pred p;\nsetp.ne.u32 p, $5, 0;\nmov.b32 $0, 0;\nmov.b32 $1, 0;\nmov.b32 $2, 0;\nmov.b32 $3, 0;\n"
          "@p ld.global.nc.L1::no_allocate.v4.u32 {$0, $1, $2, $3}, [$4];\n}")
_LD_U16 = ("{\n.reg .pred p;\n.reg .b16 h;\nsetp.ne.u32 p, $2, 0;\nmov.b16 h, 0;\n"
           "@p ld.global.nc.L1::no_allocate.u16 h, [$1];\ncvt.u32.u16 $0, h;\n}")
_LDS_V4 = "ld.shared.v4.u32 {$0, $1, $2, $3}, [$4];"


@dsl_user_op
def ld_stream_v4(addr: cutlass.Int64, pred: cutlass.Int32, *, loc=None, ip=None):
    """16 bytes at global address ``addr`` as four Uint32 (zeros where ``pred`` is 0)."""
    return inline_asm(_LD_V4, [cutlass.Uint32] * 4, [(addr, cutlass.Int64), (pred, cutlass.Int32)],
                      "=&r,=&r,=&r,=&r,l,r", loc=loc, ip=ip)


@dsl_user_op
def ld_stream_u16(addr: cutlass.Int64, pred: cutlass.Int32, *, loc=None, ip=None) -> cutlass.Uint32:
    """The 16 bits at global address ``addr`` (2-byte aligned), zero-extended (zero where ``pred`` is 0)."""
    return inline_asm(_LD_U16, [cutlass.Uint32], [(addr, cutlass.Int64), (pred, cutlass.Int32)],
                      "=r,l,r", loc=loc, ip=ip)[0]


@dsl_user_op
def lds_v4(addr: cutlass.Int32, *, loc=None, ip=None):
    """16 bytes at shared address ``addr`` (16-byte aligned) as four Uint32."""
    return inline_asm(_LDS_V4, [cutlass.Uint32] * 4, [(addr, cutlass.Int32)], "=r,=r,=r,=r,r", loc=loc, ip=ip)


def mma16816_ptx(bf16: bool) -> str:
    kind = "bf16" if bf16 else "f16"
    return (f"mma.sync.aligned.m16n8k16.row.col.f32.{kind}.{kind}.f32 {{$0, $1, $2, $3}}, {{$4, $5, $6, $7}}, "
            "{$8, $9}, {$10, $11, $12, $13};")


@dsl_user_op
def mma16816(d, a, b, bf16: bool, *, loc=None, ip=None):
    """``d + A @ B`` of one m16n8k16 MMA (FP32 accumulators): ``d`` four Float32, ``a`` four and ``b`` two
    Uint32 registers in the PTX fragment order; returns the four new accumulators."""
    ins = [(v, cutlass.Uint32) for v in (*a, *b)] + [(v, cutlass.Float32) for v in d]
    return inline_asm(mma16816_ptx(bf16), [cutlass.Float32] * 4, ins, "=f,=f,=f,=f,r,r,r,r,r,r,0,1,2,3",
                      loc=loc, ip=ip)
