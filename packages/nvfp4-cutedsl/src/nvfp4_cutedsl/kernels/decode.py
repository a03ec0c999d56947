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


# --- The register-sourced decoder (``gemm_sm90_rs.py``): a thread's bytes, adjacent pairs -----------------
#
# In the wgmma A fragment a thread holds, per 16-wide K block and row, the K pairs (2t, 2t+1) and
# (2t+8, 2t+9) with t = lane % 4: byte t of each of the block's two packed words. Three PRMTs gather byte t
# of four words into one word (byte i = the pair of word i, low nibble = the lower K); each of its bytes then
# becomes one BF16/FP16 register.

#: Join two half-gathers: bytes 0-1 of the first and bytes 0-1 of the second.
GATHER_JOIN = 0x5410
#: BF16 register from byte i: the low nibbles of g (mask) and its high nibbles (shift, mask) become two words
#: of one code a byte; PRMT puts byte i of each 16 bits apart (bytes 1 and 3 from a sign-replicated byte of the
#: first word, i.e. zero), so one multiply by 2^6 + 2^12 (FMA pipe) moves each code's exponent/mantissa bits to
#: 8..6 and its sign to 15 at once (the shifted copies do not overlap, nothing carries), and one mask keeps
#: those bits: the E2M1 value times 2^-126 (E2M1's subnormal 0.5 lands on a BF16 subnormal). Two ALU ops a
#: register, plus three a word of four, where shifting and masking each half takes four.
BF16_NIBBLES = 0x0F0F0F0F
BF16_APART_MUL = (1 << 6) | (1 << 12)
BF16_APART_MASK = 0x81C081C0
#: BF16 block multiplier: scale * 2^118, so a weight comes out as value * scale * 2^-8 (exact, in
#: [2^-18, 10.5]); the epilogue multiplies alpha by 2^8. (scale * 2^126 would overflow BF16.)
BF16_WEIGHT_LOG2 = 8
F32_2_POW_118 = 0x7A800000
#: FP16: each nibble as an E4M3 byte worth value * 2^-6 (sign to bit 7, exponent/mantissa bits to 4..2),
#: converted in pairs by the hardware; the block multiplier is scale * 64 (exact, <= 28672).
F16_NIBBLE_MASKS = (0x1C1C1C1C, 0x80808080)
F16_PAIR_SEL = (0x5140, 0x7362)
F16_64X2 = 0x54005400


def gather_sel(t: int) -> int:
    """PRMT selector putting byte ``t`` of the first and of the second word into bytes 0 and 1."""
    return t | ((t + 4) << 4)


def bf16_pair_sel(i: int) -> int:
    """Byte i of the low-nibble word to byte 0, of the high-nibble word to byte 2, zero bytes 1 and 3."""
    return i | ((8 | i) << 4) | ((4 + i) << 8) | ((8 | i) << 12)


def emulate_gather(words, t: int) -> int:
    """Byte ``t`` of each of four words, in order, as one word (the kernel's three PRMTs)."""
    lo = prmt(words[0], words[1], gather_sel(t))
    hi = prmt(words[2], words[3], gather_sel(t))
    return prmt(lo, hi, GATHER_JOIN)


def emulate_pairs_bf16(g: int) -> list[int]:
    """The four unscaled BF16 pairs (value * 2^-126 each) of the bytes of ``g``, as the kernel forms them."""
    lo, hi = g & BF16_NIBBLES, (g >> 4) & BF16_NIBBLES
    return [((prmt(lo, hi, bf16_pair_sel(i)) * BF16_APART_MUL) & 0xFFFFFFFF) & BF16_APART_MASK for i in range(4)]


def emulate_pairs_f16(g: int) -> list[int]:
    """The four pairs of E4M3 bytes (value * 2^-6 each, in the low 16 bits) the kernel converts to FP16."""
    m3, ms = F16_NIBBLE_MASKS
    lo = (((g << 2) & m3) | ((g << 4) & ms)) & 0xFFFFFFFF
    hi = ((g >> 2) & m3) | (g & ms)
    p01, p23 = prmt(lo, hi, F16_PAIR_SEL[0]), prmt(lo, hi, F16_PAIR_SEL[1])
    return [p01 & 0xFFFF, p01 >> 16, p23 & 0xFFFF, p23 >> 16]


def gather_ptx() -> str:
    """PTX: ``$0`` = byte ``$5``-selected of the words ``$1..$4`` (``$5`` = gather_sel(t))."""
    return ("{\n.reg .b32 lo, hi;\nprmt.b32 lo, $1, $2, $5;\nprmt.b32 hi, $3, $4, $5;\n"
            f"prmt.b32 $0, lo, hi, {GATHER_JOIN:#x};\n}}")


def fp4_pairs_ptx(bf16: bool) -> str:
    """PTX: ``$0..$3`` = the scaled registers of bytes 0..3 of ``$4``; bytes 0-1 take ``$5``, 2-3 ``$6``."""
    scale = ("$5", "$5", "$6", "$6")
    if bf16:
        lines = [".reg .b32 lo, hi, t;", f"and.b32 lo, $4, {BF16_NIBBLES:#x};", "shr.b32 hi, $4, 4;",
                 f"and.b32 hi, hi, {BF16_NIBBLES:#x};"]
        for i in range(4):
            lines += [f"prmt.b32 t, lo, hi, {bf16_pair_sel(i):#x};", f"mul.lo.u32 t, t, {BF16_APART_MUL:#x};",
                      f"and.b32 t, t, {BF16_APART_MASK:#x};", f"mul.rn.bf16x2 ${i}, t, {scale[i]};"]
        return "{\n" + "\n".join(lines) + "\n}"
    m3, ms = F16_NIBBLE_MASKS
    lines = [".reg .b32 a, b, lo, hi, p01, p23, h;", ".reg .b16 e0, e1, e2, e3;",
             "shl.b32 a, $4, 2;", f"and.b32 a, a, {m3:#x};", "shl.b32 b, $4, 4;", f"and.b32 b, b, {ms:#x};",
             "or.b32 lo, a, b;",
             "shr.b32 a, $4, 2;", f"and.b32 a, a, {m3:#x};", f"and.b32 b, $4, {ms:#x};", "or.b32 hi, a, b;",
             f"prmt.b32 p01, lo, hi, {F16_PAIR_SEL[0]:#x};", f"prmt.b32 p23, lo, hi, {F16_PAIR_SEL[1]:#x};",
             "mov.b32 {e0, e1}, p01;", "mov.b32 {e2, e3}, p23;"]
    for i in range(4):
        lines += [f"cvt.rn.f16x2.e4m3x2 h, e{i};", f"mul.rn.f16x2 ${i}, h, {scale[i]};"]
    return "{\n" + "\n".join(lines) + "\n}"


def scale_pairs_ptx(bf16: bool) -> str:
    """PTX: the two E4M3 scales in the low 16 bits of ``$2`` as block multipliers ``$0`` (byte 0) and
    ``$1`` (byte 1), each duplicated into both halves: BF16 scale * 2^118, or FP16 scale * 64 (exact)."""
    head = (".reg .b16 b, ha, hb;\n.reg .b32 h2;\n.reg .f32 fa, fb;\n"
            "cvt.u16.u32 b, $2;\ncvt.rn.f16x2.e4m3x2 h2, b;\n")
    if bf16:
        body = ("mov.b32 {ha, hb}, h2;\ncvt.f32.f16 fa, ha;\ncvt.f32.f16 fb, hb;\n"
                f"mul.f32 fa, fa, 0f{F32_2_POW_118:08X};\nmul.f32 fb, fb, 0f{F32_2_POW_118:08X};\n"
                "cvt.rn.bf16x2.f32 $0, fa, fa;\ncvt.rn.bf16x2.f32 $1, fb, fb;\n")
    else:
        body = (f".reg .b32 c64;\nmov.b32 c64, {F16_64X2:#x};\nmul.rn.f16x2 h2, h2, c64;\n"
                "prmt.b32 $0, h2, h2, 0x1010;\nprmt.b32 $1, h2, h2, 0x3232;\n")
    return "{\n" + head + body + "}"
