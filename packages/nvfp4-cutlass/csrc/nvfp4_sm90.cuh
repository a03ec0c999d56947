// Device helpers shared by the sm_90a kernels: E2M1 decoding into tensor-core operands and scale addressing.
#pragma once
#include <cstdint>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

namespace nvfp4_cutlass {

// Byte offset of scale (r, kb) in the swizzled 128x4 buffer; nkt = ceil((K/16)/4).
__device__ __forceinline__ int64_t swizzled_scale_offset(int r, int kb, int nkt) {
  return ((int64_t)(r >> 7) * nkt + (kb >> 2)) * 512 + (r & 31) * 16 + ((r & 127) >> 5) * 4 + (kb & 3);
}

__device__ __forceinline__ int64_t scale_offset(int r, int kb, int kb_total, int nkt, bool swizzled) {
  return swizzled ? swizzled_scale_offset(r, kb, nkt) : (int64_t)r * kb_total + kb;
}

// Weights are read once: keep them out of L1 so the activations shared by the CTA's warps stay there.
__device__ __forceinline__ uint4 ld_stream16(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}
__device__ __forceinline__ uint2 ld_stream8(const void* p) {
  uint2 v;
  asm volatile("ld.global.nc.L1::no_allocate.v2.u32 {%0,%1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(p));
  return v;
}

// 32 packed E2M1 values (16 bytes) starting at K index kseg of a row; `valid` of them (0, 16 or 32) exist.
// vec16: the row stride (K/2 bytes) is a multiple of 16, so one 16-byte load is aligned.
__device__ __forceinline__ uint4 load_fp4_segment(const uint8_t* row, int kseg, int valid, bool vec16) {
  uint4 v = make_uint4(0u, 0u, 0u, 0u);
  const uint8_t* p = row + (kseg >> 1);
  if (valid >= 32) {
    if (vec16) {
      v = ld_stream16(p);
    } else {
      uint2 lo = ld_stream8(p), hi = ld_stream8(p + 8);
      v = make_uint4(lo.x, lo.y, hi.x, hi.y);
    }
  } else if (valid >= 16) {
    uint2 lo = ld_stream8(p);
    v.x = lo.x;
    v.y = lo.y;
  }
  return v;
}

__device__ __forceinline__ float e4m3_to_float(uint8_t bits) {
  __half_raw h = __nv_cvt_fp8_to_halfraw(bits, __NV_E4M3);
  return __half2float(__half(h));
}

// ---- E2M1 -> FP16: each nibble becomes an E4M3 byte worth value * 2^-6 (sign to bit 7, exponent and
// mantissa bits to bits 4..2; E2M1's subnormal 0.5 lands on E4M3's subnormal 2^-7), the hardware converts
// E4M3 pairs to FP16 exactly, and one multiply by (scale * 64) gives value * scale exactly (<= 2688).
__device__ __forceinline__ uint32_t cvt_e4m3x2_f16x2(uint32_t two_bytes) {
  __half2_raw h = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)(two_bytes & 0xFFFFu), __NV_E4M3);
  return (uint32_t)h.x | ((uint32_t)h.y << 16);
}

// The FP16 pair multiplier of one block: scale * 64 (<= 28672, exact in FP16).
__device__ __forceinline__ uint32_t f16_block_scale(uint8_t scale_bits) {
  __half s = __float2half_rn(e4m3_to_float(scale_bits) * 64.0f);
  __half2 s2 = __halves2half2(s, s);
  return *reinterpret_cast<uint32_t*>(&s2);
}

__device__ __forceinline__ uint32_t hmul2_f16(uint32_t a, uint32_t b) {
  __half2 r = __hmul2(*reinterpret_cast<__half2*>(&a), *reinterpret_cast<__half2*>(&b));
  return *reinterpret_cast<uint32_t*>(&r);
}

// One 32-bit word = 8 E2M1 codes -> 4 FP16 pairs; out[i] holds the values of byte i (low nibble in the low half).
// Bytes 0-1 take the block multiplier s01, bytes 2-3 s23 (the same block, or two when a word spans two blocks).
__device__ __forceinline__ void decode_word_f16(uint32_t w, uint32_t s01, uint32_t s23, uint32_t out[4]) {
  const uint32_t lo = ((w << 2) & 0x1C1C1C1Cu) | ((w << 4) & 0x80808080u);  // low nibbles as E4M3
  const uint32_t hi = ((w >> 2) & 0x1C1C1C1Cu) | (w & 0x80808080u);         // high nibbles as E4M3
  const uint32_t p01 = __byte_perm(lo, hi, 0x5140);
  const uint32_t p23 = __byte_perm(lo, hi, 0x7362);
  out[0] = hmul2_f16(cvt_e4m3x2_f16x2(p01), s01);
  out[1] = hmul2_f16(cvt_e4m3x2_f16x2(p01 >> 16), s01);
  out[2] = hmul2_f16(cvt_e4m3x2_f16x2(p23), s23);
  out[3] = hmul2_f16(cvt_e4m3x2_f16x2(p23 >> 16), s23);
}
__device__ __forceinline__ void decode_word_f16(uint32_t w, uint32_t scale2, uint32_t out[4]) {
  decode_word_f16(w, scale2, scale2, out);
}

// ---- E2M1 -> BF16: a nibble's sign goes to bit 15 and its exponent/mantissa bits to bits 8..6, which reads
// as value * 2^-126 (E2M1's subnormal lands on a BF16 subnormal). One multiply by the block multiplier
// scale * 2^118 gives value * scale * 2^-8, exact (<= 6 significant bits, between 2^-18 and 10.5): the weight
// comes out 2^8 too small, and the epilogue's alpha carries the 2^8 back (kBf16WeightLog2Scale), which costs
// one multiply per output instead of a second one per weight pair. (scale * 2^126 would overflow BF16.)
constexpr int kBf16WeightLog2Scale = 8;

__device__ __forceinline__ uint32_t bf16_block_scale(uint8_t scale_bits) {
  __nv_bfloat16 s = __float2bfloat16_rn(e4m3_to_float(scale_bits) * 0x1p118f);  // <= 448 * 2^118: finite
  __nv_bfloat162 s2 = __halves2bfloat162(s, s);
  return *reinterpret_cast<uint32_t*>(&s2);
}

__device__ __forceinline__ uint32_t hmul2_bf16(uint32_t a, uint32_t b) {
  __nv_bfloat162 r = __hmul2(*reinterpret_cast<__nv_bfloat162*>(&a), *reinterpret_cast<__nv_bfloat162*>(&b));
  return *reinterpret_cast<uint32_t*>(&r);
}

__device__ __forceinline__ void decode_word_bf16(uint32_t w, uint32_t s01, uint32_t s23, uint32_t out[4]) {
  const uint32_t w4 = w << 4;  // byte i of w4 carries byte i's low nibble in its top nibble
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    // bytes: [junk, low nibble on top, junk, high nibble on top]; junk never reaches the masked bits
    const uint32_t t = __byte_perm(w4, w, (uint32_t)(i | (i << 4) | (i << 8) | ((4 + i) << 12)));
    const uint32_t raw = (t & 0x80008000u) | ((t >> 6) & 0x01C001C0u);
    out[i] = hmul2_bf16(raw, i < 2 ? s01 : s23);
  }
}

// The same decode with the K values of a register four apart: out[j] holds codes j (low half) and j + 4 (high
// half) of the word. The two codes of a pair then sit 16 bits apart, like the two BF16 halves, so one mask
// isolates them and one multiply by 2^a + 2^b moves both halves at once (exponent/mantissa bits to 8..6 by 2^a,
// the sign to 15 by 2^b; the two shifted copies do not overlap, so nothing carries) and a last mask drops the
// copies' stray bits: 2 ALU ops and an IMAD (FMA pipe) a register against 4 ALU ops for adjacent pairs. The
// integer ALU is what limits the M = 1 kernels (Nsight Compute: ALU 54% busy, math-pipe throttle the top
// stall). The MMA's other operand must pair its K values the same way (b_from_16bit<true>).
__device__ __forceinline__ uint32_t bf16_pair_apart(uint32_t pair, uint32_t mul) {
  return (pair * mul) & 0x81C081C0u;
}
// A register mixes the word's two halves, so the whole word must lie in one scale block (scale2).
__device__ __forceinline__ void decode_word_bf16_apart(uint32_t w, uint32_t scale2, uint32_t out[4]) {
  const uint32_t w8 = w >> 8;  // codes 2, 3 (and 6, 7) to where codes 0, 1 (4, 5) are
  out[0] = hmul2_bf16(bf16_pair_apart(w & 0x000F000Fu, (1u << 6) | (1u << 12)), scale2);
  out[1] = hmul2_bf16(bf16_pair_apart(w & 0x00F000F0u, (1u << 2) | (1u << 8)), scale2);
  out[2] = hmul2_bf16(bf16_pair_apart(w8 & 0x000F000Fu, (1u << 6) | (1u << 12)), scale2);
  out[3] = hmul2_bf16(bf16_pair_apart(w8 & 0x00F000F0u, (1u << 2) | (1u << 8)), scale2);
}

template <bool BF16>
__device__ __forceinline__ uint32_t block_scale(uint8_t bits) {
  if constexpr (BF16) return bf16_block_scale(bits); else return f16_block_scale(bits);
}

// The block multipliers of two scales at once (bytes 0 and 1 of two_bytes, in the low and high half): one hardware
// E4M3-pair conversion (exact in FP16), then for BF16 scale * 2^118 through FP32 (exact) and one pack, for FP16 one
// multiply by 64: 6 instructions for two scales where block_scale takes 5 for one. scale_lo / scale_hi spread one
// half over both for the pair multiply; ptxas folds them into the HMUL2's operand selectors (.H0_H0 / .H1_H1).
template <bool BF16>
__device__ __forceinline__ uint32_t block_scale_pair(uint32_t two_bytes) {
  const uint32_t h = cvt_e4m3x2_f16x2(two_bytes);
  if constexpr (BF16) {
    const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&h));
    __nv_bfloat162 r = __floats2bfloat162_rn(f.x * 0x1p118f, f.y * 0x1p118f);
    return *reinterpret_cast<uint32_t*>(&r);
  } else {
    return hmul2_f16(h, 0x54005400u);  // 64 in both halves
  }
}
template <bool BF16, bool HI>
__device__ __forceinline__ uint32_t scale_half(uint32_t pair) {
  if constexpr (BF16) {
    const __nv_bfloat162 v = *reinterpret_cast<const __nv_bfloat162*>(&pair);
    __nv_bfloat162 r = HI ? __high2bfloat162(v) : __low2bfloat162(v);
    return *reinterpret_cast<uint32_t*>(&r);
  } else {
    const __half2 v = *reinterpret_cast<const __half2*>(&pair);
    __half2 r = HI ? __high2half2(v) : __low2half2(v);
    return *reinterpret_cast<uint32_t*>(&r);
  }
}
template <bool BF16>
__device__ __forceinline__ uint32_t scale_lo(uint32_t pair) { return scale_half<BF16, false>(pair); }
template <bool BF16>
__device__ __forceinline__ uint32_t scale_hi(uint32_t pair) { return scale_half<BF16, true>(pair); }

template <bool BF16>
__device__ __forceinline__ void decode_word2(uint32_t w, uint32_t s01, uint32_t s23, uint32_t out[4]) {
  if constexpr (BF16) decode_word_bf16(w, s01, s23, out); else decode_word_f16(w, s01, s23, out);
}

template <bool BF16>
__device__ __forceinline__ void decode_word(uint32_t w, uint32_t scale2, uint32_t out[4]) {
  decode_word2<BF16>(w, scale2, scale2, out);
}

}  // namespace nvfp4_cutlass
