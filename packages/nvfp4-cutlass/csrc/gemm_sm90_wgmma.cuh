// sm_90a NVFP4 GEMM on wgmma for medium and large M (included by gemm_sm90.cuh after the mma.sync kernels).
//
// D^T = W x X^T as in the mma.sync kernels, but each warpgroup issues wgmma.m64nTNk16 with the decoded weight as
// the register-sourced operand A (64 weight rows) and TN activation rows as operand B, which the tensor cores read
// straight from shared memory: no per-warp activation fragments, no ldmatrix, one B read per warpgroup.
//
// - Weights: the cp.async kernels' per-warp ring (WarpStage: 16 rows x 64 bytes and their scales per 128-wide
//   K chunk). wgmma fixes which K values a thread's A registers hold (k = 2t, 2t+1, 2t+8, 2t+9 of each 16-wide
//   step: the m16n8k16 A fragment), so the thread gathers byte t of every 32-bit word of its rows with byte
//   permutes before decoding. Each K step of 16 is exactly one scale block.
// - Activations: TN rows x 128 values per chunk, cp.async'd by the whole CTA into two 128-byte-swizzled K-major
//   tiles (the canonical wgmma layout: 8-row atoms of 1024 bytes, 16-byte piece j of row r at j ^ (r % 8)).
//   W4A4 stages the packed activations and scales instead and the CTA decodes them into that layout (FP16),
//   double-buffered because the previous chunk's wgmmas may still read the other buffer.
// - Pipeline: S stages, S-2 chunks in flight ahead. Each pair of K steps is one wgmma commit group with its own
//   A registers (two sets, alternating), so the warp decodes pair j while the tensor cores run pair j-1. A stage
//   is refilled only after every warp's wgmmas on it completed.
#pragma once
#include <utility>

#include <cute/arch/mma_sm90_gmma.hpp>

namespace nvfp4_cutlass {
namespace {

namespace gmma = cute::SM90::GMMA;

template <bool BF16, int TN>
struct WgmmaAtom;
#define NVFP4_WGMMA_ATOM(TN)                                                                         \
  template <>                                                                                        \
  struct WgmmaAtom<true, TN> {                                                                       \
    using Op = gmma::MMA_64x##TN##x16_F32BF16BF16_RS<gmma::Major::K, gmma::Major::K>;                \
  };                                                                                                 \
  template <>                                                                                        \
  struct WgmmaAtom<false, TN> {                                                                      \
    using Op = gmma::MMA_64x##TN##x16_F32F16F16_RS<gmma::Major::K, gmma::Major::K>;                  \
  };
NVFP4_WGMMA_ATOM(64)
NVFP4_WGMMA_ATOM(128)
NVFP4_WGMMA_ATOM(256)
#undef NVFP4_WGMMA_ATOM

// The accumulator fragment of m64nTN (per thread: TN/2 floats, 4 per 8-column block) is the mma.sync D^T
// fragment of TN/8 tiles, so Accumulators<1, TN/8> and finish_tile serve both kernels.
template <class Op, size_t... I>
__device__ __forceinline__ void wgmma_rs(float (&d)[sizeof...(I)], const uint32_t (&a)[4], uint64_t desc,
                                         std::index_sequence<I...>) {
  Op::fma(a[0], a[1], a[2], a[3], desc, d[I]..., gmma::ScaleOut::One);
}

// Byte offset of activation row r's 16-byte piece j (K 8j..8j+7 of a 128-wide chunk) in one stage: two K-major
// tiles of TN rows x 64 values with the 128-byte swizzle.
template <int TN>
__device__ __forceinline__ int sw128_piece(int r, int j) {
  return (j >> 3) * (TN * 128) + r * 128 + (((j & 7) ^ (r & 7)) << 4);
}

// Shared-memory matrix descriptor of K step s (16 values) of a stage at shared address base (1024-aligned):
// 128-byte swizzle, 8-row groups 1024 bytes apart (stride offset), leading offset unused (1).
__device__ __forceinline__ uint64_t sw128_desc(uint32_t base, int s, int tn) {
  const uint32_t addr = base + (s >> 2) * (tn * 128) + (s & 3) * 32;
  return (uint64_t)((addr & 0x3FFFF) >> 4) | (1ull << 16) | (64ull << 32) | (1ull << 62);
}

__device__ __forceinline__ void fence_proxy_async_shared() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

// A registers of K steps 2j and 2j+1 for this thread: rows g and g+8 of the warp's 16. The row's 64 bytes are 16
// words; step s uses bytes 8s+t (k = 2t, 2t+1) and 8s+t+4 (k = 2t+8, 2t+9), i.e. byte t of words 2s and 2s+1.
// Gathering byte t of words 4j..4j+3 gives one word whose decode yields steps 2j and 2j+1.
template <bool BF16>
__device__ __forceinline__ void wgmma_a_pair(const WarpStage& ws, int lane, const uint2 (&sc)[2], int j,
                                             uint32_t (&a0)[4], uint32_t (&a1)[4]) {
  const int g = lane >> 2, t = lane & 3;
  const uint32_t sel = (uint32_t)(t | ((t + 4) << 4));
#pragma unroll
  for (int h = 0; h < 2; ++h) {  // row g (h = 0) or g + 8
    const uint4 r = ws.w[h][4 * g + j];  // lane 4g+j's copy: bytes 16j..16j+15 of the row
    const uint32_t word = __byte_perm(__byte_perm(r.x, r.y, sel), __byte_perm(r.z, r.w, sel), 0x5410);
    const uint32_t scw = (j < 2 ? sc[h].x : sc[h].y) >> (16 * (j & 1));  // block scales of steps 2j, 2j+1
    uint32_t v[4];
    decode_word2<BF16>(word, block_scale<BF16>(scw & 0xFF), block_scale<BF16>((scw >> 8) & 0xFF), v);
    // v: step 2j (k 2t.., k 2t+8..), step 2j+1 (same); fragment register h is row g or g+8 at k 2t, h+2 at 2t+8
    a0[h] = v[0];
    a0[h + 2] = v[1];
    a1[h] = v[2];
    a1[h + 2] = v[3];
  }
}

// Shared memory of one configuration: [activation tiles][W4A4: packed stages][weight rings], plus alignment slack.
template <bool A_FP4, int TN, int WARPS, int S>
constexpr int wgmma_smem_bytes() {
  return 1024 + (A_FP4 ? 2 : S) * TN * 256 + (A_FP4 ? S * TN * 72 : 0) + S * WARPS * 1152;
}

// The 256-wide tile has no split-K: its epilogue would not fit the register file (tactics.py says so too).
constexpr bool wgmma_split_ok(int tn) { return tn < 256; }

template <int ACT, int TN, int WG, int S>
__global__ void __launch_bounds__(WG * 128, 1) gemm_wgmma_kernel(const GemmParams p) {
  constexpr bool BF16 = ACT == kActBF16;
  constexpr bool A_FP4 = ACT == kActNVFP4;
  constexpr int WARPS = 4 * WG, THREADS = WG * 128, MT = TN / 8, XTILE = TN * 256;
  static_assert(S >= 3, "the ring refills a stage two chunks after it was read");
  static_assert(sizeof(WarpStage) == 1152, "wgmma_smem_bytes assumes 1152-byte warp stages");
  extern __shared__ uint8_t smem_raw[];
  // the 128-byte swizzle atoms need 1024-byte aligned tiles
  uint8_t* smem = smem_raw + ((1024 - ((uint32_t)__cvta_generic_to_shared(smem_raw) & 1023)) & 1023);
  uint8_t* xs = smem;                                                  // [S or 2][XTILE] swizzled tiles
  uint8_t* xraw = smem + (A_FP4 ? 2 : S) * XTILE;                      // W4A4: [S][TN rows][64 data + 8 scales]
  WarpStage* wring = reinterpret_cast<WarpStage*>(xraw + (A_FP4 ? S * TN * 72 : 0));  // [S][WARPS]
  const uint32_t xs_addr = (uint32_t)__cvta_generic_to_shared(xs);
  const CtaTile ct(p, WARPS, TN);
  const int lane = ct.lane, warp = ct.warp, g = ct.g, t = ct.t, n_base = ct.n_base, m_base = ct.m_base;
  const int c_begin = ct.c_begin, c_end = ct.c_end;
  const WeightSource wsrc(p, n_base, lane);
  const int kb_total = p.k >> 4, nkt = (kb_total + 3) >> 2;
  const bool swz = p.swizzled != 0;

  // This thread's activation pieces: piece j of rows r0, r0 + RSTEP, ... (RSTEP is a multiple of 8, so every
  // row has the same swizzle phase and the destinations step by a constant).
  constexpr int RSTEP = THREADS / 16, NPIECE = TN / RSTEP;
  static_assert(RSTEP % 8 == 0 && TN % RSTEP == 0, "a whole number of activation pieces per thread");
  const int xj = threadIdx.x & 15, xr0 = threadIdx.x >> 4;
  const int xdst0 = sw128_piece<TN>(xr0, xj);

  auto issue = [&](int c, int st) {
    if (c < c_end) {
      wsrc.issue(smem_addr(&wring[st * WARPS + warp]), c, lane);
      if constexpr (A_FP4) {  // per row: 4 pieces of 16 data bytes, then its 8 scales as two 4-byte groups
        uint8_t* xst = xraw + st * TN * 72;
        const uint8_t* xbase = static_cast<const uint8_t*>(p.a) + c * 64 + 16 * (threadIdx.x & 3);
        constexpr int DSTEP = THREADS / 4, SPASS = (2 * TN + THREADS - 1) / THREADS;
#pragma unroll
        for (int i = 0; i < TN / DSTEP; ++i) {  // rows past M are zero-filled
          const int r = (threadIdx.x >> 2) + i * DSTEP, m = m_base + r;
          cp_async16_cg(xst + r * 64 + 16 * (threadIdx.x & 3), xbase + (int64_t)min(m, p.m - 1) * (p.k >> 1),
                        m < p.m);
        }
#pragma unroll
        for (int i = 0; i < SPASS; ++i) {
          const int e = threadIdx.x + i * THREADS, r = e >> 1, m = m_base + r, kb = c * 8 + 4 * (e & 1);
          if (e < 2 * TN)
            cp_async4(xst + TN * 64 + 4 * e, p.a_scale + scale_offset(min(m, p.m - 1), kb, kb_total, nkt, swz),
                      m < p.m);
        }
      } else {
        uint8_t* xst = xs + st * XTILE + xdst0;
        const uint16_t* xbase = static_cast<const uint16_t*>(p.a) + c * 128 + 8 * xj;
#pragma unroll
        for (int i = 0; i < NPIECE; ++i) {  // rows past M are zero-filled
          const int m = m_base + xr0 + i * RSTEP;
          cp_async16_cg(xst + i * RSTEP * 128, xbase + (int64_t)min(m, p.m - 1) * p.k, m < p.m);
        }
      }
    }
    cp_async_commit();  // empty groups keep the count uniform at the tail
  };

  Accumulators<1, MT> acc;
  acc.zero();
  float(&d)[TN / 2] = *reinterpret_cast<float(*)[TN / 2]>(&acc.v[0][0][0]);
  using Op = typename WgmmaAtom<BF16, TN>::Op;
  // A registers of two pairs of K steps. Each pair is one wgmma commit group; a set is rewritten once the pair
  // that read it completed (wait_group 1: the pair issued since may still run), so the warp decodes pair j while
  // the tensor cores work on pair j-1. Fewer registers than one set per step: the TN = 256 tiles need them.
  uint32_t a[2][2][4];

#pragma unroll
  for (int s = 0; s < S - 2; ++s) issue(c_begin + s, s);
  int st = 0;
  for (int c = c_begin; c < c_end; ++c) {
    cp_async_wait<S - 3>();
    fence_proxy_async_shared();  // this thread's cp.async bytes, visible to the tensor cores' (async) reads
    __syncthreads();             // ... and every thread's; every warpgroup finished chunk c-2's wgmmas
    issue(c + S - 2, st >= 2 ? st - 2 : st + S - 2);
    uint32_t xtile = xs_addr + st * XTILE;
    if constexpr (A_FP4) {  // decode chunk c's activations into tile c % 2 (chunk c-2's, whose wgmmas are done)
      const int b = (c - c_begin) & 1;
      const uint8_t* xst = xraw + st * TN * 72;
      uint8_t* dst = xs + b * XTILE;
#pragma unroll
      for (int i = 0; i < NPIECE; ++i) {  // word xj of row r: K 8xj..8xj+7 (piece xj), block xj / 2
        const int r = xr0 + i * RSTEP;
        uint32_t v[4];
        decode_word_f16(*reinterpret_cast<const uint32_t*>(xst + r * 64 + 4 * xj),
                        f16_block_scale(xst[TN * 64 + r * 8 + (xj >> 1)]), v);
        *reinterpret_cast<uint4*>(dst + xdst0 + i * RSTEP * 128) = make_uint4(v[0], v[1], v[2], v[3]);
      }
      fence_proxy_async_shared();
      __syncthreads();
      xtile = xs_addr + b * XTILE;
    }
    const WarpStage& ws = wring[st * WARPS + warp];
    const uint2 sc[2] = {*reinterpret_cast<const uint2*>(&ws.sc[g][0]),
                         *reinterpret_cast<const uint2*>(&ws.sc[g + 8][0])};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      cute::warpgroup_wait<1>();  // pair j-2 is done: its registers may be rewritten
      wgmma_a_pair<BF16>(ws, lane, sc, j, a[j & 1][0], a[j & 1][1]);
      const uint64_t d0 = sw128_desc(xtile, 2 * j, TN), d1 = sw128_desc(xtile, 2 * j + 1, TN);
      cute::warpgroup_arrive();
      wgmma_rs<Op>(d, a[j & 1][0], d0, std::make_index_sequence<TN / 2>{});
      wgmma_rs<Op>(d, a[j & 1][1], d1, std::make_index_sequence<TN / 2>{});
      cute::warpgroup_commit_batch();
    }
    st = st + 1 == S ? 0 : st + 1;
  }
  cute::warpgroup_wait<0>();
#pragma unroll
  for (int i = 0; i < TN / 2; ++i) cute::warpgroup_fence_operand(d[i]);
  cp_async_wait<0>();
  finish_tile<ACT, MT, wgmma_split_ok(TN)>(p, acc.group(), n_base, m_base, g, t);
}

template <int ACT, int TN, int WG, int S>
cudaError_t launch_wgmma(const GemmParams& p, cudaStream_t stream) {
  if (p.k % 128) return cudaErrorInvalidValue;  // whole 128-wide chunks (cp.async ring)
  if (!wgmma_split_ok(TN) && p.split_k > 1) return cudaErrorInvalidValue;
  const dim3 grid((p.n + 64 * WG - 1) / (64 * WG), (p.m + TN - 1) / TN, p.split_k);
  if (grid.y > 65535u || grid.z > 65535u) return cudaErrorInvalidConfiguration;
  constexpr int bytes = wgmma_smem_bytes<ACT == kActNVFP4, TN, 4 * WG, S>();
  static_assert(bytes <= 227 * 1024, "more shared memory than an H100 CTA can have");
  const cudaError_t e = allow_dynamic_smem<gemm_wgmma_kernel<ACT, TN, WG, S>>(bytes);
  if (e != cudaSuccess) return e;
  gemm_wgmma_kernel<ACT, TN, WG, S><<<grid, WG * 128, bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace
}  // namespace nvfp4_cutlass
