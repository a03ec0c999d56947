"""E2M1 codes and E4M3 scales to BF16/FP16 inside the kernel: the PTX, and a Python model of it.

The kernel runs ``fp4x8_ptx`` / ``scale_pair_ptx`` as inline PTX (``fp4_convert.py``). The same
constants drive ``emulate_fp4x4``, a pure-Python model of the byte permutes, which the CPU tests
(``tests/test_cpu.py``) check against the E2M1 table for every 16-bit input, so a wrong table byte
or selector fails in CI rather than on the GPU.

Exactness: an E2M1 value has at most 2 significant bits and an E4M3 scale at most 4, so their
product (one ``mul.rn`` in BF16 or FP16) is exact, and lies in [2^-10, 2688], inside both formats'
normal range.
"""

# --- The in-kernel decoder: byte permutes (PRMT) as an 8-entry table ---------------------------------
#
# ``prmt.b32 d, a, b, c`` picks each byte of ``d`` from the 8 bytes of ``{b, a}`` by a 3-bit selector
# nibble of ``c``; with the selector's 4th bit set it replicates the picked byte's sign bit instead.
# An E2M1 magnitude (code & 7) is such a selector, so two PRMTs over constant tables give the high
# (and for BF16 the low) bytes of four decoded values at once; one more PRMT in sign-replicate mode
# turns the four sign bits into byte masks; two PRMTs interleave the bytes into 16-bit lanes; one
# ``mul.rn.{bf16,f16}x2`` applies the E4M3 block scale (exact: at most 6 significant bits).

#: Bytes of +{0, 0.5, 1, 1.5} and +{2, 3, 4, 6} in BF16 (high, low) and FP16 (high; low bytes are 0).
BF16_HI = (0x3F3F3F00, 0x40404040)
BF16_LO = (0xC0800000, 0xC0804000)
F16_HI = (0x3E3C3800, 0x46444240)
#: Sign masks of codes 0..3 from ``a = y << 4`` (signs of codes 0, 2 at bit 7 of bytes 0, 1) and
#: ``b = y`` (signs of codes 1, 3): bytes a0, b0, a1, b1, each in sign-replicate mode.
SIGN_SEL = 0xD9C8
#: Interleave into 16-bit lanes: BF16 (lo, hi) bytes; FP16 (zero, hi) bytes.
PAIR_SEL_BF16 = (0x5140, 0x7362)
PAIR_SEL_F16 = (0x1404, 0x3424)


def prmt(a: int, b: int, c: int) -> int:
    """PTX ``prmt.b32`` (default mode) on Python ints, for the CPU tests."""
    src = (a & 0xFFFFFFFF) | ((b & 0xFFFFFFFF) << 32)
    out = 0
    for i in range(4):
        sel = (c >> (4 * i)) & 0xF
        byte = (src >> (8 * (sel & 7))) & 0xFF
        if sel & 8:
            byte = 0xFF if byte & 0x80 else 0x00
        out |= byte << (8 * i)
    return out


def emulate_fp4x4(y: int, bf16: bool) -> tuple[int, int]:
    """Two 32-bit words (four 16-bit values, unscaled) from the four codes in the low 16 bits of ``y``,
    by the same steps and constants as ``fp4x8_ptx``."""
    sel = y & 0x7777
    hi_t = BF16_HI if bf16 else F16_HI
    hi = prmt(hi_t[0], hi_t[1], sel)
    sg = prmt((y << 4) & 0xFFFFFFFF, y, SIGN_SEL) & 0x80808080
    hi |= sg
    if bf16:
        lo = prmt(BF16_LO[0], BF16_LO[1], sel)
        return prmt(lo, hi, PAIR_SEL_BF16[0]), prmt(lo, hi, PAIR_SEL_BF16[1])
    return prmt(hi, 0, PAIR_SEL_F16[0]), prmt(hi, 0, PAIR_SEL_F16[1])


def fp4x8_ptx(bf16: bool) -> str:
    """PTX: ``$0..$3`` = 8 scaled 16-bit values from the packed codes ``$4`` and the scale pair ``$5``."""
    kind = "bf16x2" if bf16 else "f16x2"
    hi_t = BF16_HI if bf16 else F16_HI
    lines = [".reg .b32 th0, th1, tl0, tl1, zero, y, sel, sh, sg, hi, lo;",
             f"mov.b32 th0, {hi_t[0]:#x};", f"mov.b32 th1, {hi_t[1]:#x};", "mov.b32 zero, 0;"]
    if bf16:
        lines += [f"mov.b32 tl0, {BF16_LO[0]:#x};", f"mov.b32 tl1, {BF16_LO[1]:#x};"]
    for half, (d0, d1) in enumerate((("$0", "$1"), ("$2", "$3"))):
        lines.append("mov.b32 y, $4;" if half == 0 else "shr.b32 y, $4, 16;")
        lines += ["and.b32 sel, y, 0x7777;", "prmt.b32 hi, th0, th1, sel;",
                  "shl.b32 sh, y, 4;", f"prmt.b32 sg, sh, y, {SIGN_SEL:#x};",
                  "and.b32 sg, sg, 0x80808080;", "or.b32 hi, hi, sg;"]
        if bf16:
            lines += ["prmt.b32 lo, tl0, tl1, sel;",
                      f"prmt.b32 {d0}, lo, hi, {PAIR_SEL_BF16[0]:#x};",
                      f"prmt.b32 {d1}, lo, hi, {PAIR_SEL_BF16[1]:#x};"]
        else:
            lines += [f"prmt.b32 {d0}, hi, zero, {PAIR_SEL_F16[0]:#x};",
                      f"prmt.b32 {d1}, hi, zero, {PAIR_SEL_F16[1]:#x};"]
        lines += [f"mul.rn.{kind} {d0}, {d0}, $5;", f"mul.rn.{kind} {d1}, {d1}, $5;"]
    return "{\n" + "\n".join(lines) + "\n}"


def scale_pair_ptx(bf16: bool) -> str:
    """PTX: ``$0`` = the E4M3 scale in the low byte of ``$1`` as a BF16/FP16 pair (exact)."""
    tail = "cvt.f32.f16 f, h;\ncvt.rn.bf16x2.f32 $0, f, f;" if bf16 else "mov.b32 $0, {h, h};"
    return ("{\n.reg .b16 b, h, hh;\n.reg .b32 h2;\n.reg .f32 f;\n"
            "cvt.u16.u32 b, $1;\nand.b16 b, b, 0xFF;\ncvt.rn.f16x2.e4m3x2 h2, b;\n"
            "mov.b32 {h, hh}, h2;\n" + tail + "\n}")
