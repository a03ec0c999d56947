// sm_90a NVFP4 GEMM on wgmma for medium and large M, and with 8- or 16-wide tiles for decode sizes (included by
// gemm_sm90.cuh after the mma.sync kernels).
//
// D^T = W x X^T as in the mma.sync kernels, but each warpgroup issues wgmma.m64nTNk16 with the decoded weight as
// the register-sourced operand A (64 weight rows) and TN activation rows as operand B, which the tensor cores read
// straight from shared memory: no per-warp activation fragments, no ldmatrix, one B read per warpgroup.
//
// - Weights: the cp.async kernels' per-warp ring (WarpStage: 16 rows x 64 bytes and their scales per 128-wide
//   K chunk). wgmma fixes which K values a thread's A registers hold (k = 2t, 2t+1, 2t+8, 2t+9 of each 16-wide
//   step: the m16n8k16 A fragment), so the thread gathers byte t of every 32-bit word of its rows with byte
//   permutes before decoding. Each K step of 16 is exactly one scale block, so a thread needs all 8 block scales
//   of its rows a chunk: the 4 lanes of a quad convert two each and share them (wgmma_scales).
// - Activations: TN rows x 128 values per chunk in two 128-byte-swizzled K-major tiles (the canonical wgmma
//   layout: 8-row atoms of 1024 bytes, 16-byte piece j of row r at j ^ (r % 8)). bf16/fp16 from TN = 128 on:
//   TMA copies, one thread, mbarriers (gemm_wgmma_tma_kernel). TN <= 64 and W4A4: cp.async by the whole CTA
//   (gemm_wgmma_kernel); W4A4 stages the packed activations and scales instead and the CTA decodes them into
//   that layout (FP16), double-buffered because the previous chunk's wgmmas may still read the other buffer.
// - Pipeline: S stages; S-2 chunks in flight ahead in gemm_wgmma_kernel (a stage is refilled after a
//   __syncthreads that follows every warp's wgmmas on it), S-1 in gemm_wgmma_tma_kernel (an `empty` mbarrier
//   says when). Each pair of K steps is one wgmma commit group with its own A registers (SETS sets in turn:
//   four for tiles up to 64 wide, two above), so the warp decodes pair j while the tensor cores run up to SETS - 1
//   earlier pairs.
#pragma once
#include <cuda.h>  // CUtensorMap (the encoder is fetched from the driver at run time: no libcuda link)
#include <utility>

#include <cute/arch/copy_sm90_desc.hpp>
#include <cute/arch/copy_sm90_tma.hpp>
#include <cute/arch/mma_sm90_gmma.hpp>
#include <cutlass/arch/barrier.h>

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
NVFP4_WGMMA_ATOM(8)
NVFP4_WGMMA_ATOM(16)
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
__device__ __forceinline__ uint64_t sw128_desc(uint32_t base) {
  return (uint64_t)((base & 0x3FFFF) >> 4) | (1ull << 16) | (64ull << 32) | (1ull << 62);
}
// Step s's descriptor from the stage's: its start address moves by constants (the address field, bits 0-13 in
// 16-byte units, holds any shared address, so the add never carries out of it), one add instead of the encoding.
template <int TN>
__device__ __forceinline__ uint64_t sw128_desc_step(uint64_t stage_desc, int s) {
  return stage_desc + (uint64_t)(((s >> 2) * (TN * 128) + (s & 3) * 32) >> 4);
}

__device__ __forceinline__ void fence_proxy_async_shared() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t sel) {
  uint32_t d;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(sel));  // selector bit 3: sign-replicate mode
  return d;
}

// BF16 registers from a gathered word (byte i: the K pair of register i, the lower K in the low nibble): the low
// and the high nibbles go to two words (one code a byte); a PRMT puts byte i of each 16 bits apart with zero bytes
// between (sign-replicated bytes of the first word, whose bytes are < 0x10), so one multiply by 2^6 + 2^12 (FMA
// pipe) moves each code's exponent/mantissa bits to 8..6 and its sign to 15 (the two shifted copies do not
// overlap) and one mask keeps those bits, as decode_word_bf16_apart does: 3 ALU operations a word and 2 a register
// plus the IMAD, against 4 a register for shift-and-mask. s01 scales bytes 0-1, s23 bytes 2-3.
__device__ __forceinline__ void decode_gathered_bf16(uint32_t g, uint32_t s01, uint32_t s23, uint32_t out[4]) {
  const uint32_t lo = g & 0x0F0F0F0Fu, hi = (g >> 4) & 0x0F0F0F0Fu;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint32_t t = prmt(lo, hi, (uint32_t)(i | ((8 | i) << 4) | ((4 + i) << 8) | ((8 | i) << 12)));
    out[i] = hmul2_bf16(bf16_pair_apart(t, (1u << 6) | (1u << 12)), i < 2 ? s01 : s23);
  }
}

// The block multipliers of a thread's rows for one chunk. The wgmma A fragment gives each thread values of all 8
// blocks of its two rows, so converting them in every lane took 16 conversions a thread and chunk, a fifth of the
// loop. Lane (g, t) converts blocks 2t, 2t+1 of rows g and g+8 (one block_scale_pair each) and wgmma_a_pair fetches
// pair j of its rows from lane (g, j) with a shuffle. The 256-wide tile once converted in every lane because the
// shuffles made ptxas serialise its wgmmas (C7515); nvcc 13.0 keeps them in flight (no warning, WARPGROUP.DEPBAR.LE
// gsb0 0x1 / 0x3 in the loop), its loop shrank from 432 to 403 instructions a chunk and it ran 1-4% faster (H100,
// results/h100-2026-12-08-shfl-ab.txt).
template <bool BF16>
__device__ __forceinline__ void wgmma_scales(const WarpStage& ws, int lane, uint32_t (&mine)[2]) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int h = 0; h < 2; ++h)
    mine[h] = block_scale_pair<BF16>(*reinterpret_cast<const uint16_t*>(&ws.sc[g + 8 * h][2 * t]));
}

// A registers of K steps 2j and 2j+1 for this thread: rows g and g+8 of the warp's 16. The row's 64 bytes are 16
// words; step s uses bytes 8s+t (k = 2t, 2t+1) and 8s+t+4 (k = 2t+8, 2t+9), i.e. byte t of words 2s and 2s+1.
// Gathering byte t of words 4j..4j+3 gives one word whose decode yields steps 2j and 2j+1 (blocks 2j, 2j+1).
template <bool BF16>
__device__ __forceinline__ void wgmma_a_pair(const WarpStage& ws, int lane, const uint32_t (&mine)[2], int j,
                                             uint32_t (&a0)[4], uint32_t (&a1)[4]) {
  const int g = lane >> 2, t = lane & 3;
  const uint32_t sel = (uint32_t)(t | ((t + 4) << 4));
#pragma unroll
  for (int h = 0; h < 2; ++h) {  // row g (h = 0) or g + 8
    const uint4 r = ws.w[h][4 * g + j];  // lane 4g+j's copy: bytes 16j..16j+15 of the row
    const uint32_t word = __byte_perm(__byte_perm(r.x, r.y, sel), __byte_perm(r.z, r.w, sel), 0x5410);
    const uint32_t sp = __shfl_sync(0xFFFFFFFFu, mine[h], (lane & ~3) | j);  // blocks 2j, 2j+1 of the row
    uint32_t v[4];
    if constexpr (BF16) decode_gathered_bf16(word, scale_lo<BF16>(sp), scale_hi<BF16>(sp), v);
    else decode_word_f16(word, scale_lo<BF16>(sp), scale_hi<BF16>(sp), v);
    // v: step 2j (k 2t.., k 2t+8..), step 2j+1 (same); fragment register h is row g or g+8 at k 2t, h+2 at 2t+8
    a0[h] = v[0];
    a0[h + 2] = v[1];
    a1[h] = v[2];
    a1[h + 2] = v[3];
  }
}

// One 128-wide chunk of a warpgroup: 4 pairs of K steps, each decoded from the warp's weight stage into one of SETS
// (2 or 4) A register sets and issued as one wgmma commit group against the activation tile at shared address
// xtile. after_wait(j) runs once pair j-SETS is known complete (wait_group SETS-1), before pair j's registers are
// rewritten; with 4 sets that is the same pair of the previous chunk, so chunk c-2 is done at the top of chunk c
// either way (what the callers' ring refills rely on).
template <bool BF16, int TN, int SETS, class AfterWait>
__device__ __forceinline__ void wgmma_chunk(const WarpStage& ws, int lane, uint32_t xtile, float (&d)[TN / 2],
                                            uint32_t (&a)[SETS][2][4], AfterWait&& after_wait) {
  using Op = typename WgmmaAtom<BF16, TN>::Op;
  uint32_t mine[2];
  wgmma_scales<BF16>(ws, lane, mine);
  const uint64_t desc = sw128_desc(xtile);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    cute::warpgroup_wait<SETS - 1>();  // pair j-SETS is done: its registers may be rewritten
    after_wait(j);
    wgmma_a_pair<BF16>(ws, lane, mine, j, a[j % SETS][0], a[j % SETS][1]);
    cute::warpgroup_arrive();
    wgmma_rs<Op>(d, a[j % SETS][0], sw128_desc_step<TN>(desc, 2 * j), std::make_index_sequence<TN / 2>{});
    wgmma_rs<Op>(d, a[j % SETS][1], sw128_desc_step<TN>(desc, 2 * j + 1), std::make_index_sequence<TN / 2>{});
    cute::warpgroup_commit_batch();
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
  // row has the same swizzle phase and the destinations step by a constant). Tiles narrower than RSTEP rows
  // (TN = 8 with two warpgroups) leave the threads past the tile idle.
  constexpr int RSTEP = THREADS / 16, NPIECE = (TN + RSTEP - 1) / RSTEP;
  static_assert(RSTEP % 8 == 0 && (TN % RSTEP == 0 || TN < RSTEP), "a whole number of activation pieces per thread");
  const int xj = threadIdx.x & 15, xr0 = threadIdx.x >> 4;
  const int xdst0 = sw128_piece<TN>(xr0, xj);
  auto piece_in_tile = [&](int i) { return TN % RSTEP == 0 || xr0 + i * RSTEP < TN; };

  auto issue = [&](int c, int st) {
    if (c < c_end) {
      wsrc.issue(smem_addr(&wring[st * WARPS + warp]), c, lane);
      if constexpr (A_FP4) {  // per row: 4 pieces of 16 data bytes, then its 8 scales as two 4-byte groups
        uint8_t* xst = xraw + st * TN * 72;
        const uint8_t* xbase = static_cast<const uint8_t*>(p.a) + c * 64 + 16 * (threadIdx.x & 3);
        constexpr int DPASS = (4 * TN + THREADS - 1) / THREADS, SPASS = (2 * TN + THREADS - 1) / THREADS;
#pragma unroll
        for (int i = 0; i < DPASS; ++i) {  // rows past M are zero-filled
          const int e = threadIdx.x + i * THREADS, r = e >> 2, m = m_base + r;
          if (e < 4 * TN)
            cp_async16_cg(xst + r * 64 + 16 * (e & 3), xbase + (int64_t)min(m, p.m - 1) * (p.k >> 1), m < p.m);
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
          if (piece_in_tile(i)) cp_async16_cg(xst + i * RSTEP * 128, xbase + (int64_t)min(m, p.m - 1) * p.k, m < p.m);
        }
      }
    }
    cp_async_commit();  // empty groups keep the count uniform at the tail
  };

  Accumulators<1, MT> acc;
  acc.zero();
  float(&d)[TN / 2] = *reinterpret_cast<float(*)[TN / 2]>(&acc.v[0][0][0]);
  // A registers of SETS pairs of K steps. Each pair is one wgmma commit group; a set is rewritten once the pair
  // that read it completed (wait_group SETS-1: the pairs issued since may still run), so the warp decodes pair j
  // while the tensor cores work on the SETS - 1 before it. Four sets against two (H200, microbench, best split, 16
  // registers more): TN = 16, M = 16 8192x8192 34.5 -> 29.8 us, 8192x28672 88.8 -> 75.1, 10240x8192 40.3 -> 33.0,
  // 57344x8192 148.0 -> 136.8, 4096x14336 30.8 -> 27.2; TN = 64, M = 64 within 1-2% (faster). The 128- and
  // 256-wide tiles keep two: their registers are short (TN = 256 W4A4 runs this kernel).
  constexpr int SETS = TN <= 64 ? 4 : 2;
  uint32_t a[SETS][2][4];

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
        if (!piece_in_tile(i)) break;
        uint32_t v[4];
        decode_word_f16(*reinterpret_cast<const uint32_t*>(xst + r * 64 + 4 * xj),
                        f16_block_scale(xst[TN * 64 + r * 8 + (xj >> 1)]), v);
        *reinterpret_cast<uint4*>(dst + xdst0 + i * RSTEP * 128) = make_uint4(v[0], v[1], v[2], v[3]);
      }
      fence_proxy_async_shared();
      __syncthreads();
      xtile = xs_addr + b * XTILE;
    }
    wgmma_chunk<BF16, TN, SETS>(wring[st * WARPS + warp], lane, xtile, d, a, [](int) {});
    st = st + 1 == S ? 0 : st + 1;
  }
  cute::warpgroup_wait<0>();
#pragma unroll
  for (int i = 0; i < TN / 2; ++i) cute::warpgroup_fence_operand(d[i]);
  cp_async_wait<0>();
  finish_tile<ACT, MT, wgmma_split_ok(TN)>(p, acc.group(), n_base, m_base, g, t);
}

// bf16/fp16 activations: the same decode and wgmma loop, with the activation tile brought in by TMA. Thread 0 has
// each chunk's tile copied (two boxes of 64 K values x TN rows, 128-byte swizzle: the layout above, rows past M
// zero-filled) into a ring of S stages guarded by mbarriers: `full` (the TMA's bytes landed) and `empty` (every
// warp's wgmmas on the stage completed). Against the cp.async kernel above this drops the CTA-wide __syncthreads a
// chunk and the 16-byte copies every thread issued for the tile, and keeps S - 1 chunks in flight instead of
// S - 2: at TN = 256 only 3 stages fit, so 2 chunks ahead instead of 1. The weights keep each warp's own cp.async
// ring, which the warp refills as soon as its lanes have decoded a stage (registers feed the wgmma, not the stage).
// No separate producer warp: a 288-thread CTA caps registers at 224, and at TN = 256 ptxas then serialises the
// wgmmas (warning C7512); thread 0 refills a stage at the end of a chunk instead, once every warp released it.
template <int ACT, int TN, int WG, int S>
__global__ void __launch_bounds__(WG * 128, 1)
    gemm_wgmma_tma_kernel(const GemmParams p, const __grid_constant__ CUtensorMap xmap) {
  constexpr bool BF16 = ACT == kActBF16;
  static_assert(ACT != kActNVFP4, "W4A4 decodes its activations in the CTA (gemm_wgmma_kernel)");
  constexpr int WARPS = 4 * WG, MT = TN / 8, XTILE = TN * 256;
  static_assert(S >= 2, "one stage loads while another is read");
  extern __shared__ uint8_t smem_raw[];
  uint8_t* xs = smem_raw + ((1024 - ((uint32_t)__cvta_generic_to_shared(smem_raw) & 1023)) & 1023);  // [S][XTILE]
  WarpStage* wring = reinterpret_cast<WarpStage*>(xs + S * XTILE);                                        // [S][WARPS]
  __shared__ uint64_t full[S], empty[S];
  const CtaTile ct(p, WARPS, TN);
  const int lane = ct.lane, warp = ct.warp, g = ct.g, t = ct.t, n_base = ct.n_base, m_base = ct.m_base;
  const int c_begin = ct.c_begin, c_end = ct.c_end;
  using Bar = cutlass::arch::ClusterTransactionBarrier;
  auto load_x = [&](int c, int st) {  // thread 0 only
    Bar::arrive_and_expect_tx(&full[st], XTILE);
    uint8_t* dst = xs + st * XTILE;
    // the activations are re-read by every CTA along N: ask L2 to keep them
    constexpr uint64_t hint = static_cast<uint64_t>(cute::TMA::CacheHintSm90::EVICT_LAST);
    cute::SM90_TMA_LOAD_2D::copy(&xmap, &full[st], hint, dst, c * 128, m_base);
    cute::SM90_TMA_LOAD_2D::copy(&xmap, &full[st], hint, dst + TN * 128, c * 128 + 64, m_base);
  };
  if (threadIdx.x == 0) {
    cute::prefetch_tma_descriptor(&xmap);
#pragma unroll
    for (int s = 0; s < S; ++s) {
      Bar::init(&full[s], 1);       // thread 0's arrive_and_expect_tx
      Bar::init(&empty[s], WARPS);  // one arrival a warp
    }
    cutlass::arch::fence_barrier_init();
#pragma unroll
    for (int s = 0; s < S; ++s)
      if (c_begin + s < c_end) load_x(c_begin + s, s);
  }
  __syncthreads();

  const WeightSource wsrc(p, n_base, lane);
  const uint32_t my_ring = smem_addr(&wring[warp]);
  auto issue_w = [&](int c, int st) {
    if (c < c_end) wsrc.issue(my_ring + st * WARPS * (uint32_t)sizeof(WarpStage), c, lane);
    cp_async_commit();  // empty groups keep the count uniform at the tail
  };
  Accumulators<1, MT> acc;
  acc.zero();
  float(&d)[TN / 2] = *reinterpret_cast<float(*)[TN / 2]>(&acc.v[0][0][0]);
  // two pairs of K steps' A registers from TN = 128 on: four (as in gemm_wgmma_kernel's narrow tiles) measured 1-2%
  // slower there (H200, microbench, M = 256 and 1024, all six layers) and cost 16 registers at TN = 256. TN = 64 keeps
  // four, as gemm_wgmma_kernel does; so does one warpgroup at any width (one warpgroup a CTA and one CTA an SM at
  // TN = 256: no other warp hides the decode; 207 registers, no spills). Measured with the shared scales above
  // (results/h100-2026-12-08-shfl-ab.txt); alone it was neutral (0.998x geomean).
  constexpr int SETS = TN <= 64 || WG == 1 ? 4 : 2;
  uint32_t a[SETS][2][4];

#pragma unroll
  for (int s = 0; s < S - 1; ++s) issue_w(c_begin + s, s);
  int st = 0, prev = S - 1;
  uint32_t phase = 0, prev_phase = 1;
  for (int c = c_begin; c < c_end; ++c) {
    __syncwarp();  // every lane decoded chunk c-1: its weight stage (prev) is free
    issue_w(c + S - 1, prev);
    cp_async_wait<S - 1>();
    __syncwarp();  // the scale bytes and a row's pieces come from other lanes' copies
    Bar::wait(&full[st], phase);
    const uint32_t xtile = smem_addr(xs + st * XTILE);
    wgmma_chunk<BF16, TN, SETS>(wring[st * WARPS + warp], lane, xtile, d, a, [&](int j) {
      // the wait before pair j completes pair j - SETS, so at j = SETS - 1 chunk c-1's last pair is done: the warp
      // is finished with that activation stage
      if (j == SETS - 1 && c > c_begin && lane == 0) cutlass::arch::ClusterBarrier::arrive(&empty[prev]);
    });
    // refill chunk c-1's stage with chunk c-1+S once every warp released it (its tensor cores are busy meanwhile)
    if (threadIdx.x == 0 && c > c_begin && c - 1 + S < c_end) {
      Bar::wait(&empty[prev], prev_phase);
      load_x(c - 1 + S, prev);
    }
    prev = st;
    prev_phase = phase;
    if (++st == S) { st = 0; phase ^= 1; }
  }
  cute::warpgroup_wait<0>();
#pragma unroll
  for (int i = 0; i < TN / 2; ++i) cute::warpgroup_fence_operand(d[i]);
  cp_async_wait<0>();
  finish_tile<ACT, MT, wgmma_split_ok(TN)>(p, acc.group(), n_base, m_base, g, t);
}

template <int TN, int WARPS, int S>
constexpr int wgmma_tma_smem_bytes() {
  return 1024 + S * TN * 256 + S * WARPS * 1152;
}

// cuTensorMapEncodeTiled from the driver the runtime already loaded (cudaGetDriverEntryPointByVersion), so the
// module links no libcuda and imports on machines without a driver (the availability check reports that).
using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
inline EncodeTiled encode_tiled() {
  static EncodeTiled fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess)
      f = nullptr;
    return reinterpret_cast<EncodeTiled>(f);
  }();
  return fn;
}

// The activation [M, K] (16-bit, row-major) as TMA boxes of 64 K values x TN rows with the 128-byte swizzle.
inline cudaError_t activation_tensor_map(const GemmParams& p, int tn, CUtensorMap* map) {
  const EncodeTiled encode = encode_tiled();
  if (!encode) return cudaErrorNotSupported;
  if (reinterpret_cast<uintptr_t>(p.a) % 16) return cudaErrorMisalignedAddress;
  const cuuint64_t dims[2] = {(cuuint64_t)p.k, (cuuint64_t)p.m};
  const cuuint64_t strides[1] = {(cuuint64_t)p.k * 2};
  const cuuint32_t box[2] = {64, (cuuint32_t)tn}, estride[2] = {1, 1};
  const CUresult r = encode(map, CU_TENSOR_MAP_DATA_TYPE_UINT16, 2, const_cast<void*>(p.a), dims, strides, box,
                            estride, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

// The TMA kernel was 8-14% faster than the cp.async one from TN = 128 on (H200, M = 1024: 252.5 -> 220.8 us; M = 4096:
// 977.7 -> 853.5 us) and 4-7% slower at TN = 64 (M = 64; 8192x8192: 53.8 -> 57.6 us) while it had two A register sets
// there against the cp.async kernel's four and split-K's reduction was a chain of round trips. With four sets it takes
// TN = 64 too (H100, microbench, M = 64, best configuration and split each: 8192x8192 42.4 -> 40.4 us, 8192x28672
// 115.6 -> 109.3, 57344x8192 213.9 -> 209.5; 6144x4096 25.0 -> 26.2; results/h100-2026-12-07-tm256-ab.txt).
template <int ACT, int TN, int WG, int S>
cudaError_t launch_wgmma(const GemmParams& p, cudaStream_t stream) {
  if (p.k % 128) return cudaErrorInvalidValue;  // whole 128-wide chunks (the weight ring)
  if (!wgmma_split_ok(TN) && p.split_k > 1) return cudaErrorInvalidValue;
  const dim3 grid((p.n + 64 * WG - 1) / (64 * WG), (p.m + TN - 1) / TN, p.split_k);
  if (grid.y > 65535u || grid.z > 65535u) return cudaErrorInvalidConfiguration;
  if constexpr (ACT != kActNVFP4 && TN >= 64) {
    CUtensorMap xmap;
    cudaError_t e = activation_tensor_map(p, TN, &xmap);
    if (e != cudaSuccess) return e;
    constexpr int bytes = wgmma_tma_smem_bytes<TN, 4 * WG, S>();
    static_assert(bytes <= 227 * 1024, "more shared memory than an H100 CTA can have");
    e = allow_dynamic_smem<gemm_wgmma_tma_kernel<ACT, TN, WG, S>>(bytes);
    if (e != cudaSuccess) return e;
    gemm_wgmma_tma_kernel<ACT, TN, WG, S><<<grid, WG * 128, bytes, stream>>>(p, xmap);
  } else {
    constexpr int bytes = wgmma_smem_bytes<ACT == kActNVFP4, TN, 4 * WG, S>();
    static_assert(bytes <= 227 * 1024, "more shared memory than an H100 CTA can have");
    const cudaError_t e = allow_dynamic_smem<gemm_wgmma_kernel<ACT, TN, WG, S>>(bytes);
    if (e != cudaSuccess) return e;
    gemm_wgmma_kernel<ACT, TN, WG, S><<<grid, WG * 128, bytes, stream>>>(p);
  }
  return cudaGetLastError();
}

}  // namespace
}  // namespace nvfp4_cutlass
