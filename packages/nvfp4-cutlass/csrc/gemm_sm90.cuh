// sm_90a NVFP4 GEMM kernels (included by one translation unit per activation kind) for decode-sized M: D^T = W x X^T on mma.sync m16n8k16 (CuTe's SM80 MMA atoms).
// The wgmma kernel for M >= 64 is in gemm_sm90_wgmma.cuh (included below; it shares the weight ring and epilogue),
// the M = 1 kernel with TMA-fed weights in gemm_sm90_tma.cuh (it shares the chunk loop and epilogue), the M = 1
// row GEMV in gemm_sm90_gemv.cuh (it shares the chunk loop).
//
// Hopper has no FP4 MMA, so each warp streams 16 weight rows with 16-byte loads, decodes E2M1 x E4M3 into
// exact BF16/FP16 products in registers (the weight is the 16-row operand A) and multiplies them with 8*MT
// activation rows (operand B) into FP32 accumulators. Each thread owns a contiguous 32-value K segment of
// its two weight rows per 128-wide K chunk; the K order inside one MMA is free as long as A and B agree,
// so B takes the same 32 activation values from row-major X without any shuffle. Split-K slices K across
// CTAs (gridDim.z) so small-N layers still fill all SMs; the last CTA of a tile sums the FP32 partials.
#pragma once
#include <atomic>
#include <cstddef>

#include <cute/arch/mma_sm80.hpp>

#include "kernels.h"
#include "nvfp4_sm90.cuh"

namespace nvfp4_cutlass {
namespace {

template <bool BF16>
__device__ __forceinline__ void mma16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
  if constexpr (BF16) {
    cute::SM80_16x8x16_F32BF16BF16F32_TN::fma(d[0], d[1], d[2], d[3], a0, a1, a2, a3, b0, b1,
                                               d[0], d[1], d[2], d[3]);
  } else {
    cute::SM80_16x8x16_F32F16F16F32_TN::fma(d[0], d[1], d[2], d[3], a0, a1, a2, a3, b0, b1,
                                             d[0], d[1], d[2], d[3]);
  }
}

// Output row n's bias as float (the bias has the output's dtype); 0 without a bias or past the last row.
__device__ __forceinline__ float bias_at(const GemmParams& p, int n) {
  if (!p.bias || n >= p.n) return 0.f;
  switch (p.out_dtype) {
    case kOutBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p.bias)[n]);
    case kOutFP16: return __half2float(static_cast<const __half*>(p.bias)[n]);
    default: return static_cast<const float*>(p.bias)[n];
  }
}

// out[m, n] = alpha * v + bias, bias from bias_at(p, n) (loaded by the caller, ahead of its stores).
__device__ __forceinline__ void store_out(const GemmParams& p, int m, int n, float v, float alpha, float bias) {
  if (m >= p.m || n >= p.n) return;
  v *= alpha;
  if (p.bias) v += bias;
  const int64_t idx = (int64_t)m * p.n + n;
  switch (p.out_dtype) {
    case kOutBF16: static_cast<__nv_bfloat16*>(p.out)[idx] = __float2bfloat16_rn(v); break;
    case kOutFP16: static_cast<__half*>(p.out)[idx] = __float2half_rn(v); break;
    default: static_cast<float*>(p.out)[idx] = v;
  }
}

// The accumulator's multiplier: the global scales, and for BF16-decoded weights the 2^kBf16WeightLog2Scale they
// carry (decode_word_bf16; the power of two is exact here). FP16 activations may be a dequantized NVFP4 one
// (act_fp16 tactics), whose global scale comes along as a_gs.
template <int ACT>
__device__ __forceinline__ float epilogue_alpha(const GemmParams& p) {
  return ACT == kActNVFP4 ? __ldg(p.b_gs) * __ldg(p.a_gs)
         : ACT == kActBF16 ? __ldg(p.b_gs) * (float)(1 << kBf16WeightLog2Scale)
                           : __ldg(p.b_gs) * (p.a_gs ? __ldg(p.a_gs) : 1.f);
}

// Accumulators whose partials finish_tile's split-K reduction loads together (see there).
constexpr int kReduceGroup = 8;

// Epilogue of one CTA tile: split-K publication and reduction by the last CTA to arrive, then alpha, bias,
// cast and store. acc(r) is this thread's MMA accumulators (D^T fragments: rows n, columns m) of its warp's
// row group r, weight rows n_base + 16 r ... + 15 (RG groups: 16 or 32 weight rows a warp; every group is
// published before the CTA's one arrival on the tile counter).
// SPLIT = false leaves the split-K code out (the launcher refuses split_k > 1): with 128 accumulators a thread,
// its address arithmetic made the 256-wide wgmma tile spill.
template <int ACT, int MT, bool SPLIT = true, int RG = 1, class Acc>
__device__ __forceinline__ void finish_tile(const GemmParams& p, Acc&& acc, int n_base, int m_base, int g, int t) {
  auto row = [&](int grp, int r) { return n_base + 16 * grp + g + 8 * (r >> 1); };
  auto col = [&](int i, int r) { return m_base + 8 * i + 2 * t + (r & 1); };
  // f(m, n, accumulator, row slot) for each of this thread's accumulators of activation tiles i0 <= i < i1 (each:
  // all of them); a thread's accumulators cover two weight rows a row group (g and g + 8), row slot 2 grp + (r >> 1)
  auto each_of = [&](int i0, int i1, auto&& f) {
#pragma unroll
    for (int grp = 0; grp < RG; ++grp)
#pragma unroll
      for (int i = i0; i < i1; ++i)
#pragma unroll
        for (int r = 0; r < 4; ++r) f(col(i, r), row(grp, r), acc(grp)[i][r], 2 * grp + (r >> 1));
  };
  auto each = [&](auto&& f) { each_of(0, MT, f); };
  // ---- split-K: publish this slice's partials; the last CTA of the tile to arrive reduces them
  if (SPLIT && p.split_k > 1) {
    float* ws = p.partials + (int64_t)blockIdx.z * p.m * p.n;
    each([&](int m, int n, float& v, int) {
      if (m < p.m && n < p.n) ws[(int64_t)m * p.n + n] = v;
    });
    // One fence for the CTA, not one a thread (the cooperative-groups grid barrier's pattern): the barrier
    // orders every thread's partials before thread 0's release fence and arrival, and thread 0's acquire fence
    // after the last arrival before the barrier that lets the CTA read the other slices' partials.
    __syncthreads();
    __shared__ bool last;
    const unsigned tile = blockIdx.x + gridDim.x * blockIdx.y;
    if (threadIdx.x == 0) {
      __threadfence();
      last = atomicAdd(p.counters + tile, 1u) == (unsigned)(p.split_k - 1);
      if (last) __threadfence();
    }
    __syncthreads();
    if (!last) return;
    // A group of accumulators at a time, its slices one after another, each slice's loads of the whole group
    // in flight together. Every accumulator still adds slices 0, 1, ... in that order: the same sums as before.
    // Summing each accumulator's slices in turn (before 2026-12-07) waited for one L2 round trip an accumulator
    // (SASS: 32 in turn at the 64-wide wgmma tile). Not all accumulators at once: with their addresses that
    // raised the 64-wide tile from 153 to 228 registers; the slice loop is not unrolled for the same reason.
    // With kReduceGroup = 8 no kernel of the default build holds fewer CTAs an SM than before. Those using more
    // registers: the 128-wide wgmma tiles (one 256-thread CTA an SM either way) and the 32-row xsmem tile (77 for
    // 72: its shared memory allows 4 CTAs an SM, its registers 6); results/cpu-2026-12-07-epilogue-sass.txt.
    each([](int, int, float& v, int) { v = 0.f; });
    constexpr int kTiles = kReduceGroup / (4 * RG) > 0 ? kReduceGroup / (4 * RG) : 1;
#pragma unroll
    for (int i0 = 0; i0 < MT; i0 += kTiles) {
#pragma unroll 1
      for (int z = 0; z < p.split_k; ++z) {
        const float* slice = p.partials + (int64_t)z * p.m * p.n;
        each_of(i0, i0 + kTiles < MT ? i0 + kTiles : MT, [&](int m, int n, float& v, int) {
          if (m < p.m && n < p.n) v += __ldcg(slice + (int64_t)m * p.n + n);
        });
      }
    }
    if (threadIdx.x == 0) p.counters[tile] = 0u;  // ready for the next launch (CUDA-graph replays included)
  }

  const float alpha = epilogue_alpha<ACT>(p);
  // The bias of this thread's rows before any store: a load after a store may read what it wrote (bias and out
  // are both plain pointers), so loaded in the store loop, each element's bias waited for an L2 round trip (SASS
  // of the 64-wide wgmma tile: 32 LDG / STG pairs in turn, 2026-12-07).
  float bias[2 * RG];
#pragma unroll
  for (int s = 0; s < 2 * RG; ++s) bias[s] = bias_at(p, row(s >> 1, 2 * (s & 1)));
  each([&](int m, int n, float& v, int s) { store_out(p, m, n, v, alpha, bias[s]); });
}

// The FP32 accumulators of MT activation tiles: NACC sets (even / odd K step) halve the chain of dependent
// MMAs on one accumulator when there are few tiles; fold() sums them into set 0.
template <int NACC, int MT>
struct Accumulators {
  float v[NACC][MT][4];
  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int e = 0; e < NACC; ++e)
#pragma unroll
      for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int r = 0; r < 4; ++r) v[e][i][r] = 0.f;
  }
  __device__ __forceinline__ void fold() {
#pragma unroll
    for (int e = 1; e < NACC; ++e)
#pragma unroll
      for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int r = 0; r < 4; ++r) v[0][i][r] += v[e][i][r];
  }
  // finish_tile's accessor for a single row group (after fold)
  __device__ __forceinline__ auto group() {
    return [this](int) -> float (&)[MT][4] { return v[0]; };
  }
};

__device__ __forceinline__ uint32_t word_of(const uint4 v, int q) { return q == 0 ? v.x : q == 1 ? v.y : q == 2 ? v.z : v.w; }

// One 128-wide K chunk of a warp: decode the thread's 32-value segments of weight rows g and g+8 (w0, w1, with
// their two block scales each) and multiply them with every activation tile. b_words(i, q, b) writes tile i's
// B registers for word q of the segment (8 K values: K steps 2q and 2q+1), paired like the weight registers:
// adjacent K values, or (APART, BF16 only) values four apart (decode_word_bf16_apart, b_from_16bit<true>).
template <bool BF16, bool APART, int NACC, int MT, class BWords>
__device__ __forceinline__ void mma_chunk(Accumulators<NACC, MT>& acc, const uint4 w0, const uint4 w1,
                                          const uint32_t (&wscale)[2][2], BWords&& b_words) {
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    uint32_t a[2][4];
    if constexpr (APART) {
      static_assert(BF16, "the four-apart pairing is a BF16 decode");
      decode_word_bf16_apart(word_of(w0, q), wscale[0][q >> 1], a[0]);
      decode_word_bf16_apart(word_of(w1, q), wscale[1][q >> 1], a[1]);
    } else {
      decode_word<BF16>(word_of(w0, q), wscale[0][q >> 1], a[0]);
      decode_word<BF16>(word_of(w1, q), wscale[1][q >> 1], a[1]);
    }
#pragma unroll
    for (int i = 0; i < MT; ++i) {
      uint32_t b[4];
      b_words(i, q, b);
#pragma unroll
      for (int h = 0; h < 2; ++h)
        mma16816<BF16>(acc.v[h % NACC][i], a[0][2 * h], a[1][2 * h], a[0][2 * h + 1], a[1][2 * h + 1], b[2 * h],
                       b[2 * h + 1]);
    }
  }
}

// B registers of an activation tile from a 16-bit uint4 (8 consecutive K values) or, for W4A4, decoded from
// one packed NVFP4 word with the tile's FP16 block scale. APART pairs K values j and j + 4 as the weights'
// decode_word_bf16_apart does (one PRMT a register).
template <bool APART>
__device__ __forceinline__ void b_from_16bit(const uint4 v, uint32_t (&b)[4]) {
  if constexpr (APART) {
    b[0] = __byte_perm(v.x, v.z, 0x5410);
    b[1] = __byte_perm(v.x, v.z, 0x7632);
    b[2] = __byte_perm(v.y, v.w, 0x5410);
    b[3] = __byte_perm(v.y, v.w, 0x7632);
  } else {
    b[0] = v.x; b[1] = v.y; b[2] = v.z; b[3] = v.w;
  }
}

// This thread's activations for one chunk in the per-warp kernels: the 32 values at K 128c + 32t of rows
// m_base + 8i + g (16-bit: four uint4 a tile; W4A4: one packed uint4 and its two block scales).
template <int ACT, int MT>
struct XRegs {
  uint4 v[MT][ACT == kActNVFP4 ? 1 : 4];
  uint8_t sc[MT][2];
};

// Where XRegs come from: global memory, L1/L2 resident (every warp of the CTA reads the same rows).
// CLAMP (two tiles, M 9-16): rows past M and a prefetch past the slice read row M-1 and the slice's last chunk
// instead of zeros. An activation row only reaches its own output column (rows past M are never stored, nor
// published for split-K), and a prefetched chunk past the slice is never multiplied: no predicates or zero
// fills in the loop (the 32-row kernel's loop: 955 -> 925 instructions for two chunks). One tile (M <= 8) keeps
// the predicated loads: there most lanes hold rows past M, and the build where all of them loaded measured 5%
// slower (57344x8192, M = 1: 98.9 -> 104.4 us).
template <int ACT, int MT, bool CLAMP>
struct ActivationSource {
  const void* a;
  const uint8_t* a_scale;
  int m, k, t, c_end, kb_total, nkt;
  bool swz;
  int xrow[MT], xrow_c[MT];
  __device__ __forceinline__ ActivationSource(const GemmParams& p, int m_base, int g, int t_, int c_end_)
      : a(p.a), a_scale(p.a_scale), m(p.m), k(p.k), t(t_), c_end(c_end_), kb_total(p.k >> 4),
        nkt(((p.k >> 4) + 3) >> 2), swz(p.swizzled != 0) {
#pragma unroll
    for (int i = 0; i < MT; ++i) {
      xrow[i] = m_base + 8 * i + g;
      xrow_c[i] = min(xrow[i], p.m - 1);
    }
  }
  __device__ __forceinline__ void load(XRegs<ACT, MT>& x, int c) const {
    const int kseg = (CLAMP ? min(c, c_end - 1) : c) * 128 + 32 * t, kb = kseg >> 4;
#pragma unroll
    for (int i = 0; i < MT; ++i) {
      const bool ok = CLAMP || (xrow[i] < m && c < c_end);
      if constexpr (ACT == kActNVFP4) {
        const uint8_t* q = static_cast<const uint8_t*>(a) + (int64_t)xrow_c[i] * (k >> 1) + (kseg >> 1);
        x.v[i][0] = ok ? __ldg(reinterpret_cast<const uint4*>(q)) : make_uint4(0u, 0u, 0u, 0u);
        x.sc[i][0] = ok ? __ldg(a_scale + scale_offset(xrow_c[i], kb, kb_total, nkt, swz)) : (uint8_t)0;
        x.sc[i][1] = ok ? __ldg(a_scale + scale_offset(xrow_c[i], kb + 1, kb_total, nkt, swz)) : (uint8_t)0;
      } else {
        const uint4* q =
            reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(a) + (int64_t)xrow_c[i] * k + kseg);
#pragma unroll
        for (int v = 0; v < 4; ++v) x.v[i][v] = ok ? __ldg(q + v) : make_uint4(0u, 0u, 0u, 0u);
      }
    }
  }
};

// W4A4: the FP16 block multipliers of the activation words (unused otherwise).
template <int ACT, int MT>
__device__ __forceinline__ void x_scales(const XRegs<ACT, MT>& x, uint32_t (&xscale)[MT][2]) {
  if constexpr (ACT == kActNVFP4) {
#pragma unroll
    for (int i = 0; i < MT; ++i) {
      xscale[i][0] = f16_block_scale(x.sc[i][0]);
      xscale[i][1] = f16_block_scale(x.sc[i][1]);
    }
  }
}

// mma_chunk with this thread's activation registers as the B operand. PAIRED: 16-bit activations already paired
// four apart for the BF16 decoder (b_from_16bit<true> done once for several row groups).
template <int ACT, bool PAIRED, int NACC, int MT>
__device__ __forceinline__ void mma_chunk_x(Accumulators<NACC, MT>& acc, const uint4 w0, const uint4 w1,
                                            const uint32_t (&wscale)[2][2], const XRegs<ACT, MT>& x,
                                            const uint32_t (&xscale)[MT][2]) {
  constexpr bool BF16 = ACT == kActBF16;
  mma_chunk<BF16, BF16>(acc, w0, w1, wscale, [&](int i, int q, uint32_t (&b)[4]) {
    if constexpr (ACT == kActNVFP4) decode_word_f16(word_of(x.v[i][0], q), xscale[i][q >> 1], b);
    else b_from_16bit<BF16 && !PAIRED>(x.v[i][q], b);
  });
}

// Where a thread works: its MMA fragment coordinates (g, t), its warp's 16 * rg weight rows (from n_base), the
// CTA's tile_m activation rows (from m_base) and its split-K slice [c_begin, c_end) of 128-wide K chunks.
struct CtaTile {
  int lane, warp, g, t, n_base, m_base, c_begin, c_end;
  __device__ __forceinline__ CtaTile(const GemmParams& p, int warps, int tile_m, int rg = 1)
      : lane(threadIdx.x & 31), warp(threadIdx.x >> 5), g(lane >> 2), t(lane & 3),
        n_base(blockIdx.x * (16 * rg * warps) + warp * 16 * rg), m_base(blockIdx.y * tile_m),
        c_begin(blockIdx.z * p.chunks_per_split), c_end(min(c_begin + p.chunks_per_split, (p.k + 127) >> 7)) {}
};

// ACT: kActBF16 / kActFP16 (weight-only, MMA in that type) or kActNVFP4 (W4A4, both decoded to FP16).
// MT: 8-row activation tiles per warp. WARPS: 16-row weight tiles per CTA (sharing X through L1).
// U: K chunks whose loads are all issued before the first is decoded (bytes in flight per warp).
// STAGES: 1 = load U chunks then compute them; 2 = the next U chunks load while this U computes.
template <int ACT, int MT, int WARPS, int U, int STAGES>
__global__ void __launch_bounds__(WARPS * 32) gemm_small_m_kernel(const GemmParams p) {
  constexpr bool BF16 = ACT == kActBF16;
  constexpr bool A_FP4 = ACT == kActNVFP4;
  const CtaTile ct(p, WARPS, 8 * MT);
  const int g = ct.g, t = ct.t, n_base = ct.n_base, m_base = ct.m_base, c_begin = ct.c_begin, c_end = ct.c_end;
  const int kb_total = p.k >> 4, nkt = (kb_total + 3) >> 2;
  const bool swz = p.swizzled != 0;
  const bool vec16 = (p.k & 31) == 0;

  int wrow[2] = {n_base + g, n_base + g + 8};
  const uint8_t* wptr[2];
#pragma unroll
  for (int j = 0; j < 2; ++j) wptr[j] = p.b_data + (int64_t)min(wrow[j], p.n - 1) * (p.k >> 1);
  int xrow[MT];
#pragma unroll
  for (int i = 0; i < MT; ++i) xrow[i] = m_base + 8 * i + g;

  Accumulators<MT <= 2 ? 2 : 1, MT> acc;
  acc.zero();

  // Raw bytes of U chunks: weights, their scales, activations (and their scales for W4A4).
  struct Stage {
    uint4 wv[U][2];
    uint8_t wsc[U][2][2];
    uint4 xv[U][MT][A_FP4 ? 1 : 4];
    uint8_t xsc[U][MT][2];
  };

  auto load_stage = [&](Stage& st, int c0) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int kseg = (c0 + u) * 128 + 32 * t;
      const int valid = (c0 + u < c_end) ? min(max(p.k - kseg, 0), 32) : 0;
      const int kb = kseg >> 4;
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const bool ok = wrow[j] < p.n && valid > 0;
        st.wv[u][j] = ok ? load_fp4_segment(wptr[j], kseg, valid, vec16) : make_uint4(0u, 0u, 0u, 0u);
        st.wsc[u][j][0] = ok ? __ldg(p.b_scale + scale_offset(wrow[j], kb, kb_total, nkt, swz)) : (uint8_t)0;
        st.wsc[u][j][1] = (ok && valid > 16)
                              ? __ldg(p.b_scale + scale_offset(wrow[j], kb + 1, kb_total, nkt, swz))
                              : (uint8_t)0;
      }
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        const bool ok = xrow[i] < p.m && valid > 0;
        if constexpr (A_FP4) {
          const uint8_t* arow = static_cast<const uint8_t*>(p.a) + (int64_t)xrow[i] * (p.k >> 1);
          uint4 v = make_uint4(0u, 0u, 0u, 0u);
          if (ok) {  // activations are re-read by every warp of the CTA: cache them in L1
            const uint8_t* q = arow + (kseg >> 1);
            if (valid >= 32 && vec16) {
              v = __ldg(reinterpret_cast<const uint4*>(q));
            } else {
              uint2 lo = __ldg(reinterpret_cast<const uint2*>(q));
              uint2 hi = valid >= 32 ? __ldg(reinterpret_cast<const uint2*>(q + 8)) : make_uint2(0u, 0u);
              v = make_uint4(lo.x, lo.y, hi.x, hi.y);
            }
          }
          st.xv[u][i][0] = v;
          st.xsc[u][i][0] = ok ? __ldg(p.a_scale + scale_offset(xrow[i], kb, kb_total, nkt, swz)) : (uint8_t)0;
          st.xsc[u][i][1] = (ok && valid > 16)
                                ? __ldg(p.a_scale + scale_offset(xrow[i], kb + 1, kb_total, nkt, swz))
                                : (uint8_t)0;
        } else {
          const uint4* q = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p.a) +
                                                          (int64_t)xrow[i] * p.k + kseg);
#pragma unroll
          for (int v = 0; v < 4; ++v)
            st.xv[u][i][v] = (ok && (v < 2 || valid > 16)) ? __ldg(q + v) : make_uint4(0u, 0u, 0u, 0u);
        }
      }
    }
  };

  // Decode and multiply, one K step (16 values, one MMA per activation tile) at a time.
  auto compute_stage = [&](const Stage& st) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      uint32_t wscale[2][2];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        wscale[j][0] = block_scale<BF16>(st.wsc[u][j][0]);
        wscale[j][1] = block_scale<BF16>(st.wsc[u][j][1]);
      }
      uint32_t xscale[MT][2];
      if constexpr (A_FP4) {
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          xscale[i][0] = f16_block_scale(st.xsc[u][i][0]);
          xscale[i][1] = f16_block_scale(st.xsc[u][i][1]);
        }
      }
      mma_chunk<BF16, BF16>(acc, st.wv[u][0], st.wv[u][1], wscale, [&](int i, int q, uint32_t (&b)[4]) {
        if constexpr (A_FP4) decode_word_f16(word_of(st.xv[u][i][0], q), xscale[i][q >> 1], b);
        else b_from_16bit<BF16>(st.xv[u][i][q], b);
      });
    }
  };

  // Software pipeline: the loads of the next U chunks are in flight while this U is decoded and multiplied.
  if constexpr (STAGES == 2) {
    Stage cur, nxt;
    load_stage(cur, c_begin);
    for (int c0 = c_begin; c0 < c_end; c0 += U) {
      if (c0 + U < c_end) load_stage(nxt, c0 + U);
      compute_stage(cur);
      cur = nxt;
    }
  } else {
    for (int c0 = c_begin; c0 < c_end; c0 += U) {
      Stage cur;
      load_stage(cur, c0);
      compute_stage(cur);
    }
  }
  acc.fold();
  finish_tile<ACT, MT>(p, acc.group(), n_base, m_base, g, t);
}


__device__ __forceinline__ void cp_async16_cg(uint32_t dst, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(gmem), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async16_cg(void* smem, const void* gmem, bool valid) {
  cp_async16_cg((uint32_t)__cvta_generic_to_shared(smem), gmem, valid);
}
__device__ __forceinline__ void cp_async4(uint32_t dst, const void* gmem, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(dst), "l"(gmem), "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void cp_async4(void* smem, const void* gmem, bool valid) {
  cp_async4((uint32_t)__cvta_generic_to_shared(smem), gmem, valid);
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }

// A warp's stage of the weight ring: its 16 rows' bytes of one 128-wide K chunk and their 8 block scales each.
struct __align__(16) WarpStage {
  uint4 w[2][32];     // [row half][lane]: lane's 16 bytes of row g (+8)
  uint8_t sc[16][8];  // [row][block]
};

// Where one lane's cp.async copies of a warp's 16 weight rows come from: 16 bytes of rows g and g+8, and 4 scale
// bytes of row (lane & 15). Rows past N are zero-filled. Every source address is affine in the chunk index c, in
// both scale layouts (a chunk is 8 scale columns: 8 bytes of a linear row, two 512-byte atoms of the swizzled
// buffer), so issue() is a multiply-add per copy: recomputing the addresses every chunk (swizzle included) was
// about a sixth of the M = 1 loop's integer-ALU instructions (51 of 283 a chunk pair, SASS).
struct WeightSource {
  const uint8_t* src0;
  const uint8_t* src1;
  const uint8_t* scale;  // this lane's 4 scale bytes of chunk 0
  int scale_step;        // bytes from one chunk's scales to the next
  uint32_t dst_sc;       // this lane's scale bytes inside a WarpStage
  bool ok0, ok1, sok;

  __device__ __forceinline__ WeightSource(const GemmParams& p, int n_base, int lane) {
    const int g = lane >> 2, t = lane & 3;
    src0 = p.b_data + (int64_t)min(n_base + g, p.n - 1) * (p.k >> 1) + 16 * t;
    src1 = p.b_data + (int64_t)min(n_base + g + 8, p.n - 1) * (p.k >> 1) + 16 * t;
    ok0 = n_base + g < p.n;
    ok1 = n_base + g + 8 < p.n;
    const int kb_total = p.k >> 4, nkt = (kb_total + 3) >> 2;
    const int srow = min(n_base + (lane & 15), p.n - 1), spiece = lane >> 4;  // scale columns 4*spiece..+3
    sok = n_base + (lane & 15) < p.n;
    scale = p.b_scale + scale_offset(srow, 4 * spiece, kb_total, nkt, p.swizzled != 0);
    scale_step = p.swizzled ? 1024 : 8;
    dst_sc = (uint32_t)(offsetof(WarpStage, sc) + (lane & 15) * 8 + 4 * spiece);
  }
  // stage: the shared-memory address of the WarpStage to fill.
  __device__ __forceinline__ void issue(uint32_t stage, int c, int lane) const {
    cp_async16_cg(stage + 16 * lane, src0 + (int64_t)c * 64, ok0);
    cp_async16_cg(stage + 512 + 16 * lane, src1 + (int64_t)c * 64, ok1);
    cp_async4(stage + dst_sc, scale + (int64_t)c * scale_step, sok);
  }
};

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

// This lane's weight segments and block scales (as MMA-type pairs) from a landed stage.
template <bool BF16>
__device__ __forceinline__ void read_stage(const WarpStage& ws, int lane, uint4& w0, uint4& w1,
                                           uint32_t (&wscale)[2][2]) {
  const int g = lane >> 2, t = lane & 3;
  w0 = ws.w[0][lane];
  w1 = ws.w[1][lane];
  const uint16_t s0 = *reinterpret_cast<const uint16_t*>(&ws.sc[g][2 * t]);
  const uint16_t s1 = *reinterpret_cast<const uint16_t*>(&ws.sc[g + 8][2 * t]);
  const uint32_t p0 = block_scale_pair<BF16>(s0), p1 = block_scale_pair<BF16>(s1);
  wscale[0][0] = scale_lo<BF16>(p0);
  wscale[0][1] = scale_hi<BF16>(p0);
  wscale[1][0] = scale_lo<BF16>(p1);
  wscale[1][1] = scale_hi<BF16>(p1);
}

// The same computation with the weight stream going through a per-warp ring of S shared-memory stages filled
// by cp.async: S-1 chunks (1 KiB of weights each per warp) stay in flight without holding registers, which is
// what a bandwidth-bound decode GEMM needs. Needs K % 128 == 0 (whole chunks; 16-byte and 4-byte aligned).
// Each lane copies and later reads its own weight bytes; the scale bytes are copied by other lanes of the warp,
// hence the __syncwarp after the wait. Activations come straight from global memory (L1/L2 resident),
// prefetched one chunk ahead in registers for one M tile, loaded in the iteration that uses them for more.
// Register budget: the two-tile (M <= 16) kernels are capped at 128 registers so that 16 warps fit an SM, and
// they load activations at the top of each iteration instead of prefetching them a chunk ahead (a second
// register set). Measured on the H100 (scripts/microbench.cu, M=16, best split): 57344x8192 227 -> 191 us,
// 8192x8192 41.5 -> 40.0 us. Prefetching them as well fits the cap for bf16 since the loop stopped copying the
// prefetched set (fp16 spills), and measured within 1% (8192x8192: 39.8 against 40.1 us), so it stays off. The
// one-tile (M <= 8) kernels keep the prefetch and no cap: capping them at 64-85 registers cost 4-9% there.
//
// RG row groups a warp (RG = 2: 32 weight rows): both groups' MMAs take the same activation registers, so the
// activation reads through L1, which bound M = 16 (reading each warp's tile only once for two groups' worth of
// weights measured 38.3 -> 31.6 us on 8192x8192 on the H200), are halved per weight byte. Measured on the
// H200 (microbench, best split): M = 16 57344x8192 186.7 -> 142.9 us, 8192x28672 106.9 -> 82.0 us; M = 8
// 57344x8192 138.0 -> 112.5 us; but slower on the small layers (6144x4096 M = 16 21.5 -> 24.5 us: half as
// many warps), so both widths are offered.
template <int MT, int WARPS>
constexpr int min_blocks() {
  return MT == 2 && WARPS <= 16 ? 16 / WARPS : 1;
}

template <int ACT, int MT, int WARPS, int S, int RG>
__global__ void __launch_bounds__(WARPS * 32, min_blocks<MT, WARPS>()) gemm_cp_async_kernel(const GemmParams p) {
  static_assert(RG == 1 || RG == 2, "16 or 32 weight rows a warp");
  constexpr bool PREFETCH_X = MT == 1;
  constexpr bool BF16 = ACT == kActBF16;
  __shared__ WarpStage ring[WARPS][S][RG];
  const CtaTile ct(p, WARPS, 8 * MT, RG);
  const int lane = ct.lane, warp = ct.warp, g = ct.g, t = ct.t, n_base = ct.n_base, m_base = ct.m_base;
  const int c_begin = ct.c_begin, c_end = ct.c_end;
  const uint32_t my = smem_addr(ring[warp]);
  const WeightSource wsrc0(p, n_base, lane), wsrc1(p, n_base + 16, lane);  // wsrc1: row group 1 (RG = 2)
  auto issue = [&](int c, int st) {
    if (c < c_end) {
      wsrc0.issue(my + st * RG * (uint32_t)sizeof(WarpStage), c, lane);
      if constexpr (RG == 2) wsrc1.issue(my + (st * RG + 1) * (uint32_t)sizeof(WarpStage), c, lane);
    }
    cp_async_commit();  // empty groups keep the group count uniform at the tail
  };

  const ActivationSource<ACT, MT, (MT > 1)> xsrc(p, m_base, g, t, c_end);
  using XR = XRegs<ACT, MT>;

  // Two accumulator sets (even / odd K step) shorten the MMA chains of a lone row group with few tiles.
  Accumulators<MT <= 2 && RG == 1 ? 2 : 1, MT> acc[RG];
#pragma unroll
  for (int grp = 0; grp < RG; ++grp) acc[grp].zero();
#pragma unroll
  for (int s = 0; s < S - 1; ++s) issue(c_begin + s, s);
  // One chunk: x holds (or, without PREFETCH_X, receives) its activations; chunk c+1's go to x_next.
  int st = 0;
  auto step = [&](int c, XR& x, XR& x_next) {
    __syncwarp();  // every lane has finished reading the stage refilled next (chunk c-1's)
    issue(c + S - 1, st == 0 ? S - 1 : st - 1);
    if constexpr (PREFETCH_X) xsrc.load(x_next, c + 1); else xsrc.load(x, c);  // L1/L2 hits, awaited with the stage
    cp_async_wait<S - 1>();
    __syncwarp();
    uint32_t xscale[MT][2];
    x_scales(x, xscale);
    // Two row groups share the activations: pair them for the BF16 decoder once, not once a group. (W4A4 still
    // decodes its packed activation words once a group: hoisting that needs 4x the activation registers.)
    constexpr bool APART_ONCE = BF16 && RG > 1;
    if constexpr (APART_ONCE) {
#pragma unroll
      for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          uint32_t b[4];
          b_from_16bit<true>(x.v[i][q], b);
          x.v[i][q] = make_uint4(b[0], b[1], b[2], b[3]);
        }
    }
#pragma unroll
    for (int grp = 0; grp < RG; ++grp) {
      uint4 w0, w1;
      uint32_t wscale[2][2];
      read_stage<BF16>(ring[warp][st][grp], lane, w0, w1, wscale);
      mma_chunk_x<ACT, APART_ONCE>(acc[grp], w0, w1, wscale, x, xscale);
    }
    st = st + 1 == S ? 0 : st + 1;
  };
  // Two chunks an iteration, the activation registers swapping roles: no copy of the prefetched set.
  XR xa, xb;
  if constexpr (PREFETCH_X) xsrc.load(xa, c_begin);
  for (int c = c_begin; c < c_end; c += 2) {
    step(c, xa, xb);
    if (c + 1 < c_end) step(c + 1, xb, xa);
  }
  cp_async_wait<0>();
#pragma unroll
  for (int grp = 0; grp < RG; ++grp) acc[grp].fold();
  finish_tile<ACT, MT, true, RG>(p, [&](int grp) -> float (&)[MT][4] { return acc[grp].v[0]; }, n_base, m_base, g,
                                 t);
}


// Medium M (tile_m >= 32): the cp.async kernel's weight stream, with the CTA's activation
// tile staged once per chunk in shared memory (all warps fill it with cp.async, one __syncthreads a chunk)
// instead of every warp reading its own copy through L1. For tile_m = 64 that copy is 16 KiB per warp and
// chunk, which thrashed L1 and turned the decode GEMM into an L2-bandwidth kernel (8192x8192, M=64: 94 us).
// Layout of a stage's activation tile: rows of 128 values (16 pieces of 16 bytes); piece j of row r sits at
// j ^ ((j >> 3) << 1) ^ (r & 1), so the 8 lanes of one LDS.128 phase (2 rows x 4 t) hit 8 distinct bank groups.
__device__ __forceinline__ int x_piece(int r, int j) { return j ^ ((j >> 3) << 1) ^ (r & 1); }

// W4A4 stages the packed activations instead (64 data + 8 scale bytes a row and chunk) and decodes them once per
// chunk, by the whole CTA, into one FP16 tile of the same layout (XDEC) that the MMA loop reads.
template <bool A_FP4, int MT, int WARPS, int S>
constexpr int xsmem_bytes() {
  return A_FP4 ? S * (MT * 8 * 72 + WARPS * 1152) + MT * 8 * 256 : S * (MT * 8 * 256 + WARPS * 1152);
}

template <int ACT, int MT, int WARPS, int S>
__global__ void __launch_bounds__(WARPS * 32) gemm_xsmem_kernel(const GemmParams p) {
  constexpr bool BF16 = ACT == kActBF16;
  constexpr bool A_FP4 = ACT == kActNVFP4;
  constexpr int TM = MT * 8, XSTAGE = TM * (A_FP4 ? 72 : 256);
  static_assert(sizeof(WarpStage) == 1152, "xsmem_bytes assumes 1152-byte warp stages");
  extern __shared__ __align__(16) uint8_t smem[];
  uint8_t* xs = smem;  // [S] stages of [TM rows][256 bytes]; W4A4: of [TM rows][64 data bytes] + [TM rows][8 scales]
  WarpStage* wring = reinterpret_cast<WarpStage*>(smem + S * XSTAGE);      // [S][WARPS]
  uint8_t* xdec = smem + S * XSTAGE + S * WARPS * 1152;                     // W4A4: [TM rows][256 bytes] FP16
  const CtaTile ct(p, WARPS, TM);
  const int lane = ct.lane, warp = ct.warp, g = ct.g, t = ct.t, n_base = ct.n_base, m_base = ct.m_base;
  const int c_begin = ct.c_begin, c_end = ct.c_end;
  const WeightSource wsrc(p, n_base, lane);
  const uint16_t* xbase = static_cast<const uint16_t*>(p.a);
  const uint8_t* xbase4 = static_cast<const uint8_t*>(p.a);
  const int kb_total = p.k >> 4, nkt = (kb_total + 3) >> 2;
  const bool swz = p.swizzled != 0;

  auto issue = [&](int c, int st) {
    if (c < c_end) {
      wsrc.issue(smem_addr(&wring[st * WARPS + warp]), c, lane);
      uint8_t* xst = xs + st * XSTAGE;
      if constexpr (A_FP4) {  // per row: 4 pieces of 16 data bytes, then its 8 scales as two 4-byte groups
        for (int piece = threadIdx.x; piece < TM * 6; piece += WARPS * 32) {  // rows past M are zero-filled
          const int r = piece / 6, j = piece % 6, m = m_base + r, mc = min(m, p.m - 1);
          if (j < 4) {
            cp_async16_cg(xst + r * 64 + 16 * j, xbase4 + (int64_t)mc * (p.k >> 1) + c * 64 + 16 * j, m < p.m);
          } else {
            const int kb = c * 8 + 4 * (j - 4);
            cp_async4(xst + TM * 64 + r * 8 + 4 * (j - 4), p.a_scale + scale_offset(mc, kb, kb_total, nkt, swz),
                      m < p.m);
          }
        }
      } else {
        for (int piece = threadIdx.x; piece < TM * 16; piece += WARPS * 32) {  // rows past M are zero-filled
          const int r = piece >> 4, j = piece & 15, m = m_base + r;
          const uint16_t* src = xbase + (int64_t)min(m, p.m - 1) * p.k + c * 128 + 8 * j;
          cp_async16_cg(xst + r * 256 + 16 * x_piece(r, j), src, m < p.m);
        }
      }
    }
    cp_async_commit();
  };

  Accumulators<1, MT> acc;
  acc.zero();

#pragma unroll
  for (int s = 0; s < S - 1; ++s) issue(c_begin + s, s);
  int st = 0;
  for (int c = c_begin; c < c_end; ++c) {
    cp_async_wait<S - 2>();
    __syncthreads();  // chunk c landed for every thread; every warp is done with the stage refilled below
    issue(c + S - 1, st == 0 ? S - 1 : st - 1);
    uint4 w0, w1;
    uint32_t wscale[2][2];
    read_stage<BF16>(wring[st * WARPS + warp], lane, w0, w1, wscale);
    const uint8_t* xst_raw = xs + st * XSTAGE;
    const uint8_t* xst = xst_raw;
    if constexpr (A_FP4) {  // decode chunk c's activations once for the CTA (the tile's last readers passed above)
      for (int piece = threadIdx.x; piece < TM * 16; piece += WARPS * 32) {
        const int r = piece >> 4, j = piece & 15;  // word j of row r: K 8j..8j+7, block j / 2
        uint32_t v[4];
        decode_word_f16(*reinterpret_cast<const uint32_t*>(xst_raw + r * 64 + 4 * j),
                        f16_block_scale(xst_raw[TM * 64 + r * 8 + (j >> 1)]), v);
        *reinterpret_cast<uint4*>(xdec + r * 256 + 16 * x_piece(r, j)) = make_uint4(v[0], v[1], v[2], v[3]);
      }
      __syncthreads();
      xst = xdec;
    }
    // adjacent K pairs: four-apart ones would cost a PRMT per activation register, and with tile_m >= 32 there
    // are more of those than weight registers
    mma_chunk<BF16, false>(acc, w0, w1, wscale, [&](int i, int q, uint32_t (&b)[4]) {
      // this thread's 8 activations of row 8i+g at K 32t+8q (piece 4t+q), as in the per-warp kernels
      const int r = 8 * i + g;
      b_from_16bit<false>(*reinterpret_cast<const uint4*>(xst + r * 256 + 16 * x_piece(r, 4 * t + q)), b);
    });
    st = st + 1 == S ? 0 : st + 1;
  }
  cp_async_wait<0>();
  finish_tile<ACT, MT>(p, acc.group(), n_base, m_base, g, t);
}

// More than 48 KiB of dynamic shared memory is opt-in, per kernel and device: set it once per device.
template <auto Kernel>
cudaError_t allow_dynamic_smem(int bytes) {
  static std::atomic<uint64_t> configured{0};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev >= 64) return cudaErrorInvalidDevice;
  if (!(configured.load(std::memory_order_relaxed) & (1ull << dev))) {
    const cudaError_t e = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (e != cudaSuccess) return e;
    configured.fetch_or(1ull << dev, std::memory_order_relaxed);
  }
  return cudaSuccess;
}

}  // namespace
}  // namespace nvfp4_cutlass

#include "gemm_sm90_wgmma.cuh"
#include "gemm_sm90_tma.cuh"
#include "gemm_sm90_gemv.cuh"

namespace nvfp4_cutlass {
namespace {

template <int ACT, int MT, int WARPS, int U, int STAGES, int RG>
cudaError_t launch_sync(const GemmParams& p, cudaStream_t stream) {
  static_assert(RG == 1 || (STAGES >= 3 && MT <= 2), "32 weight rows a warp: the cp.async kernel only");
  const dim3 grid((p.n + 16 * RG * WARPS - 1) / (16 * RG * WARPS), (p.m + 8 * MT - 1) / (8 * MT), p.split_k);
  if (grid.y > 65535u || grid.z > 65535u) return cudaErrorInvalidConfiguration;
  if constexpr (STAGES >= 3) {  // cp.async ring: whole 128-wide chunks only
    if (p.k % 128) return cudaErrorInvalidValue;
    // tile_m >= 32 only: staging 8 or 16 rows this way measured 5-30% slower at M <= 16 (an extra barrier a
    // chunk for activations that fit L1 anyway; 8192x8192, M = 16, 8 warps: 41.4 against 39.9 us).
    if constexpr (MT >= 4) {  // tile_m >= 32: the activation tile goes through shared memory
      constexpr int bytes = xsmem_bytes<ACT == kActNVFP4, MT, WARPS, STAGES>();
      const cudaError_t e = allow_dynamic_smem<gemm_xsmem_kernel<ACT, MT, WARPS, STAGES>>(bytes);
      if (e != cudaSuccess) return e;
      gemm_xsmem_kernel<ACT, MT, WARPS, STAGES><<<grid, WARPS * 32, bytes, stream>>>(p);
    } else {
      gemm_cp_async_kernel<ACT, MT, WARPS, STAGES, RG><<<grid, WARPS * 32, 0, stream>>>(p);
    }
  } else {
    gemm_small_m_kernel<ACT, MT, WARPS, U, STAGES><<<grid, WARPS * 32, 0, stream>>>(p);
  }
  return cudaGetLastError();
}

template <int ACT, int MT, int WARPS, int U, int STAGES, int KERNEL, int WR>
cudaError_t launch_one(const GemmParams& p, cudaStream_t stream) {
  constexpr int RG = WR / 16;  // 16-row groups a warp (mma.sync kernels)
  if constexpr (KERNEL == kKernelGemv) {  // gemm_sm90_gemv.cuh: unroll = K steps in flight, WR rows a warp
    static_assert(MT == 1 && STAGES == 1 && WR % 2 == 0 && WR <= 8, "row GEMV configurations: tile_m 8, 2-8 rows");
    return launch_gemv<ACT, WARPS, U, WR>(p, stream);
  } else if constexpr (KERNEL == kKernelTmaM1) {  // gemm_sm90_tma.cuh: unroll = 128-wide chunks a stage
    static_assert(MT == 1 && RG == 1, "TMA configurations: tile_m 8, 16 weight rows a warp");
    return launch_tma_m1<ACT, WARPS, STAGES, 64 * U>(p, stream);
  } else if constexpr (KERNEL == kKernelWgmma) {  // tile_m is the wgmma N, warps come in warpgroups
    static_assert(WARPS % 4 == 0 && U == 1 && RG == 1, "wgmma configurations: whole warpgroups, unroll 1");
    return launch_wgmma<ACT, 8 * MT, WARPS / 4, STAGES>(p, stream);
  } else {
    return launch_sync<ACT, MT, WARPS, U, STAGES, RG>(p, stream);
  }
}

}  // namespace

// One translation unit per activation kind instantiates its kernels (gemm_sm90_{bf16,fp16,nvfp4}.cu), so the
// build compiles them in parallel.
cudaError_t launch_gemm_bf16(const GemmParams& p, GemmConfig cfg, cudaStream_t stream);
cudaError_t launch_gemm_fp16(const GemmParams& p, GemmConfig cfg, cudaStream_t stream);
cudaError_t launch_gemm_nvfp4(const GemmParams& p, GemmConfig cfg, cudaStream_t stream);

// X-macro of compiled configurations (tile_m, warps, unroll, stages, kernel, warp_rows). mma.sync kernels (kernel
// 0) - stages 1: load `unroll` chunks, then compute; 2: register double buffering; >= 3: the cp.async
// shared-memory ring of that depth (unroll 1), where tile_m <= 16 may give a warp 32 weight rows (warp_rows 32;
// its static ring, warps * stages * 2.25 KiB, must stay under 48 KiB). wgmma kernels (kernel 1): tile_m is the
// wgmma N (8, 16, 64, 128, 256), warps 4 per warpgroup of 64 weight rows, stages the depth of the ring (>= 3).
// The M = 1 kernel with TMA-fed weights (kernel 2): tile_m 8, unroll = 128-wide chunks a stage (2 or 4), stages the
// depth of each warp's ring. The M = 1 row GEMV (kernel 3): tile_m 8, unroll = 1024-wide K steps of weight loads in
// flight a lane (registers), stages 1, warp_rows = weight rows a warp (2-8, in pairs).
// CI compiles the base list; the GPU machine builds with NVFP4_CUTLASS_ALL_TACTICS for the extra ones.
#define NVFP4_BASE_CONFIGS(X)                                                                              \
  X(8, 4, 2, 1, 0, 16) X(16, 4, 2, 1, 0, 16) X(32, 4, 1, 1, 0, 16) X(64, 4, 1, 1, 0, 16) X(8, 8, 1, 4, 0, 16)    \
  X(8, 4, 1, 8, 0, 16) X(16, 4, 1, 4, 0, 16) X(32, 4, 1, 4, 0, 16) X(64, 8, 1, 4, 0, 16) X(64, 4, 1, 4, 1, 16)   \
  X(128, 8, 1, 4, 1, 16) X(256, 8, 1, 3, 1, 16) X(8, 4, 1, 4, 0, 32) X(16, 4, 1, 4, 0, 32) X(16, 4, 1, 4, 1, 16)    \
  X(8, 4, 4, 3, 2, 16) X(8, 8, 1, 1, 3, 4) X(8, 8, 2, 1, 3, 4) X(8, 4, 1, 1, 3, 4) X(8, 8, 2, 1, 3, 2)
// X(256, 4, 1, 3, 1, 16), the 256-wide tile with one warpgroup (64 weight rows a CTA), is the shape of cutedsl's
// M = 256 winner (tile_w 64 x tile_x 256). Two warpgroups give 8192 rows only 64 CTAs; one gives 128, each weight
// decoded once at M = 256 (128 x 128 decodes it twice). H100 microbench (memset-flushed), M = 256, against the best
// other configuration: 8192x8192 73.2 -> 68.3 us, 8192x28672 238.2 -> 216.6, 6144x4096 39.8 -> 37.7; 57344x8192
// keeps two warpgroups (results/h100-2026-12-07-tm256-ab.txt). The tuner (read-flushed, quantized randn inputs) did
// not agree: on that H100 it kept 128 x 128 at 8192x8192 in the benchmark, and on another it measured 80.0 us against
// 78.1 in five alternating rounds (results/h100-2026-12-07-tm256-tuner-check.txt). It took this tile at one layer of
// six in the benchmark (8192x28672: 243.9 -> 233.5 us). Extra only, until it wins there.
#ifdef NVFP4_CUTLASS_ALL_TACTICS
#define NVFP4_EXTRA_CONFIGS(X)                                                                             \
  X(8, 4, 2, 2, 0, 16) X(16, 4, 2, 2, 0, 16) X(8, 4, 1, 6, 0, 16) X(16, 4, 1, 6, 0, 16) X(16, 4, 1, 8, 0, 16)    \
  X(16, 8, 1, 4, 0, 16) X(8, 4, 1, 4, 0, 16) X(32, 4, 2, 1, 0, 16) X(32, 8, 1, 4, 0, 16) X(64, 4, 1, 4, 0, 16)   \
  X(64, 8, 1, 3, 0, 16) X(128, 8, 1, 3, 0, 16) X(128, 4, 1, 3, 0, 16) X(64, 8, 1, 4, 1, 16)                      \
  X(128, 4, 1, 4, 1, 16) X(8, 4, 1, 4, 1, 16) X(8, 4, 1, 8, 1, 16) X(8, 8, 1, 4, 1, 16) X(16, 8, 1, 4, 1, 16)     \
  X(16, 4, 1, 8, 1, 16) X(8, 4, 4, 4, 2, 16) X(8, 8, 2, 3, 2, 16) X(8, 8, 2, 4, 2, 16) X(8, 16, 1, 1, 3, 2)    \
  X(8, 8, 1, 1, 3, 2) X(8, 16, 2, 1, 3, 2) X(8, 4, 1, 1, 3, 6) X(8, 16, 1, 1, 3, 4) X(8, 4, 2, 1, 3, 4)    \
  X(256, 4, 1, 3, 1, 16)
#else
#define NVFP4_EXTRA_CONFIGS(X)
#endif
#define NVFP4_ALL_CONFIGS(X) NVFP4_BASE_CONFIGS(X) NVFP4_EXTRA_CONFIGS(X)

// The body of launch_gemm_<act>: the compiled configuration that matches cfg, else cudaErrorInvalidValue.
#define NVFP4_CONFIG_CASE(TM, W, U, S, KN, WR)                                                          \
  if (cfg.tile_m == TM && cfg.warps == W && cfg.unroll == U && cfg.stages == S && cfg.kernel == KN &&   \
      cfg.warp_rows == WR)                                                                               \
    return launch_one<NVFP4_ACT, TM / 8, W, U, S, KN, WR>(p, stream);

}  // namespace nvfp4_cutlass
