// sm_90a NVFP4 GEMM for M = 1 with the weights brought in by TMA (included by gemm_sm90.cuh after the wgmma kernels;
// it shares the mma.sync chunk loop and the epilogue of the per-warp kernels).
//
// Why a separate kernel (H200, microbench, 8192x8192, M = 1; variants of the cp.async kernel with parts removed):
// the cp.async kernel took 24.0 us, 24.0 without its decode and MMAs (its 16-byte LDGSTS copies alone) and 21.2
// with its weight copies removed instead (decode, MMAs and activation loads alone). Both halves were near the
// whole: the copies had to get cheaper and the loop leaner at once. Here
//
// - each warp's weights arrive by TMA: its 16 rows x SB bytes (SB / 64 chunks of 128 K values) and their scales as
//   two 2D boxes a stage (one instruction each, lane 0), completing on the stage's mbarrier; S stages a warp. The
//   copies alone ran 18.8 us (SB = 256, S = 3, 4 warps a CTA, split 2).
// - the CTA stages its K slice of the one activation row in shared memory once, already paired the way the weight
//   decoder pairs K values (b_from_16bit), and every lane reads its B registers there (the lanes of one t read the
//   same 16 bytes: a broadcast): no predicated loads, zero fills or pairing PRMTs in the loop. Lanes of rows past
//   M = 1 multiply the same row; only column 0 is stored.
//
// Together: 24.3 -> 22.3 us on 8192x8192, 106.8 -> 93.7 on 57344x8192, 56.4 -> 52.7 on 8192x28672, 14.9 -> 14.9 on
// 6144x4096 (each at its best split). The TMA weights alone, with activations loaded as in the cp.async kernel,
// were slower than that kernel (26.5 us), and so was the first version with one 1D bulk copy a row (29.3 us):
// this kernel runs M = 1 only.
//
// W4A4 (ACT = kActNVFP4) decodes its packed activation row to FP16 while staging it and runs the FP16 loop: no
// act_fp16 dequantize launch first (that form stays a tactic too).
//
// Needs linear scales (a row's scales of a stage are a box only there), K % 256 == 0 (the scales' row stride,
// K / 16 bytes, must be a multiple of 16 for TMA), an even number of chunks a split-K slice (every stage then
// starts at an even chunk, so its scale box at a multiple of 16 bytes: an odd start, 8 bytes off, stopped the
// kernel with an illegal instruction on the H200) and a slice of at most kTmaMaxSliceChunks chunks (its activation
// copy in shared memory); tactics.py offers it only then and the launcher refuses the rest.
#pragma once

namespace nvfp4_cutlass {
namespace {

//: Longest split-K slice, in 128-wide chunks, whose activation row the CTA stages (256 bytes a chunk: 48 KiB).
constexpr int kTmaMaxSliceChunks = 192;

template <int SB>
struct TmaStage {
  static_assert(SB == 128 || SB == 256, "bytes a row and stage: 2 or 4 chunks");
  static constexpr int kChunks = SB / 64;    // 128-wide K chunks a stage
  static constexpr int kRow = SB;            // shared-memory stride of a weight row (the TMA box is dense)
  static constexpr int kScaleRow = SB / 8;   // scale bytes a row and stage
  static constexpr int kScales = 16 * kRow;  // offset of the scale rows
  static constexpr int kBytes = kScales + 16 * kScaleRow;
  static_assert(kBytes % 128 == 0, "TMA destinations are 128-byte aligned");
};

// Dynamic shared memory: alignment slack, the weight rings, then the activation slice.
template <int WARPS, int S, int SB>
constexpr int tma_ring_bytes() {
  return 128 + WARPS * S * TmaStage<SB>::kBytes;
}

template <int ACT, int WARPS, int S, int SB>
__global__ void __launch_bounds__(WARPS * 32) gemm_tma_m1_kernel(const GemmParams p,
                                                                 const __grid_constant__ CUtensorMap wmap,
                                                                 const __grid_constant__ CUtensorMap smap) {
  using St = TmaStage<SB>;
  using Bar = cutlass::arch::ClusterTransactionBarrier;
  constexpr bool BF16 = ACT == kActBF16;
  // W4A4 decodes its activation row to FP16 while staging it (below) and multiplies in FP16 from there on
  constexpr int MMA_ACT = ACT == kActNVFP4 ? kActFP16 : ACT;
  extern __shared__ uint8_t tma_smem_raw[];
  uint8_t* smem = tma_smem_raw + ((128 - ((uint32_t)__cvta_generic_to_shared(tma_smem_raw) & 127)) & 127);
  __shared__ uint64_t full[WARPS][S];
  const CtaTile ct(p, WARPS, 8);
  const int lane = ct.lane, warp = ct.warp, g = ct.g, t = ct.t, n_base = ct.n_base;
  const int c_begin = ct.c_begin, c_end = ct.c_end;
  uint8_t* ring = smem + warp * S * St::kBytes;
  uint4* xslice = reinterpret_cast<uint4*>(smem + WARPS * S * St::kBytes);  // [chunk][t][q]: B words

  // weights are read once: let L2 drop them first
  constexpr uint64_t hint = static_cast<uint64_t>(cute::TMA::CacheHintSm90::EVICT_FIRST);
  // Lane 0 loads the stage of chunks c0 .. c0 + kChunks - 1: rows past N and bytes past K arrive as zeros, bytes
  // past the slice (the next slice's) are never multiplied.
  auto issue = [&](int c0, int st) {
    if (c0 >= c_end || lane != 0) return;
    Bar::arrive_and_expect_tx(&full[warp][st], St::kBytes);
    uint8_t* dst = ring + st * St::kBytes;
    cute::SM90_TMA_LOAD_2D::copy(&wmap, &full[warp][st], hint, dst, c0 * 64, n_base);
    cute::SM90_TMA_LOAD_2D::copy(&smap, &full[warp][st], hint, dst + St::kScales, c0 * 8, n_base);
  };
  if (lane == 0) {
    if (warp == 0) {
      cute::prefetch_tma_descriptor(&wmap);
      cute::prefetch_tma_descriptor(&smap);
    }
#pragma unroll
    for (int s = 0; s < S; ++s) Bar::init(&full[warp][s], 1);
    cutlass::arch::fence_barrier_init();
  }
  __syncwarp();
#pragma unroll
  for (int s = 0; s < S; ++s) issue(c_begin + s * St::kChunks, s);

  // the activation slice, while the first stages load: element e is K values 8e .. 8e + 7 of the slice
  if constexpr (ACT == kActNVFP4) {
    // W4A4: 4 packed bytes and their block's scale an element, decoded to the FP16 values the act_fp16 tactics'
    // dequantize kernel would have written (E2M1 x E4M3, exact; a's global scale is in alpha), so the row needs
    // no second launch (H200: that launch was about 4 us of the 26 us of 8192x8192 at M = 1)
    const uint32_t* xd = reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(p.a) + (int64_t)c_begin * 64);
    const uint8_t* xsc = p.a_scale + (int64_t)c_begin * 8;
    for (int e = threadIdx.x; e < (c_end - c_begin) * 16; e += WARPS * 32) {
      uint32_t v[4];
      decode_word_f16(__ldg(xd + e), f16_block_scale(__ldg(xsc + (e >> 1))), v);
      xslice[e] = make_uint4(v[0], v[1], v[2], v[3]);  // FP16 pairs adjacent: b_from_16bit<false> is the identity
    }
  } else {
    const uint4* x = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p.a) + (int64_t)c_begin * 128);
    for (int e = threadIdx.x; e < (c_end - c_begin) * 16; e += WARPS * 32) {
      uint32_t b[4];
      b_from_16bit<BF16>(__ldg(x + e), b);
      xslice[e] = make_uint4(b[0], b[1], b[2], b[3]);
    }
  }
  __syncthreads();

  Accumulators<2, 1> acc;
  acc.zero();
  auto chunk = [&](const uint8_t* stage, int j, int c) {
    XRegs<MMA_ACT, 1> xr;
#pragma unroll
    for (int q = 0; q < 4; ++q) xr.v[0][q] = xslice[(c - c_begin) * 16 + 4 * t + q];
    const uint4 w0 = *reinterpret_cast<const uint4*>(stage + g * St::kRow + j * 64 + 16 * t);
    const uint4 w1 = *reinterpret_cast<const uint4*>(stage + (g + 8) * St::kRow + j * 64 + 16 * t);
    const uint8_t* sc = stage + St::kScales + j * 8 + 2 * t;
    const uint32_t p0 = block_scale_pair<BF16>(*reinterpret_cast<const uint16_t*>(sc + g * St::kScaleRow));
    const uint32_t p1 = block_scale_pair<BF16>(*reinterpret_cast<const uint16_t*>(sc + (g + 8) * St::kScaleRow));
    const uint32_t wscale[2][2] = {{scale_lo<BF16>(p0), scale_hi<BF16>(p0)}, {scale_lo<BF16>(p1), scale_hi<BF16>(p1)}};
    const uint32_t no_xscale[1][2] = {{0u, 0u}};
    mma_chunk_x<MMA_ACT, true>(acc, w0, w1, wscale, xr, no_xscale);
  };
  int st = 0;
  uint32_t phase = 0;
  for (int c0 = c_begin; c0 < c_end; c0 += St::kChunks) {
    Bar::wait(&full[warp][st], phase);
    const uint8_t* stage = ring + st * St::kBytes;
#pragma unroll
    for (int j = 0; j < St::kChunks; ++j)
      if (c0 + j < c_end) chunk(stage, j, c0 + j);
    __syncwarp();  // every lane has read the stage (its values fed the MMAs above): refill it
    issue(c0 + S * St::kChunks, st);
    if (++st == S) { st = 0; phase ^= 1; }
  }
  acc.fold();
  finish_tile<ACT, 1>(p, acc.group(), n_base, 0, g, t);
}

// A 2D TMA view of a [rows, row_bytes] byte matrix in boxes of box_bytes x 16 rows (no swizzle).
inline cudaError_t byte_tensor_map(const void* base, int rows, int row_bytes, int box_bytes, CUtensorMap* map) {
  const EncodeTiled encode = encode_tiled();
  if (!encode) return cudaErrorNotSupported;
  const cuuint64_t dims[2] = {(cuuint64_t)row_bytes, (cuuint64_t)rows};
  const cuuint64_t strides[1] = {(cuuint64_t)row_bytes};
  const cuuint32_t box[2] = {(cuuint32_t)box_bytes, 16}, estride[2] = {1, 1};
  const CUresult r = encode(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<void*>(base), dims, strides, box,
                            estride, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

template <int ACT, int WARPS, int S, int SB>
cudaError_t launch_tma_m1(const GemmParams& p, cudaStream_t stream) {
  if (ACT == kActNVFP4 && (!p.a_scale || !p.a_gs)) return cudaErrorInvalidValue;  // W4A4: a's scales and global scale
  if (p.m != 1 || p.swizzled || p.k % 256 || p.chunks_per_split % 2 || p.chunks_per_split > kTmaMaxSliceChunks)
    return cudaErrorInvalidValue;
  if (reinterpret_cast<uintptr_t>(p.b_data) % 16 || reinterpret_cast<uintptr_t>(p.b_scale) % 16 ||
      reinterpret_cast<uintptr_t>(p.a) % 16)
    return cudaErrorMisalignedAddress;
  const dim3 grid((p.n + 16 * WARPS - 1) / (16 * WARPS), 1, p.split_k);
  if (grid.z > 65535u) return cudaErrorInvalidConfiguration;
  CUtensorMap wmap, smap;
  cudaError_t e = byte_tensor_map(p.b_data, p.n, p.k / 2, SB, &wmap);
  if (e == cudaSuccess) e = byte_tensor_map(p.b_scale, p.n, p.k / 16, SB / 8, &smap);
  if (e != cudaSuccess) return e;
  constexpr int ring = tma_ring_bytes<WARPS, S, SB>(), most = ring + kTmaMaxSliceChunks * 256;
  static_assert(most <= 227 * 1024, "more shared memory than an H100 CTA can have");
  e = allow_dynamic_smem<gemm_tma_m1_kernel<ACT, WARPS, S, SB>>(most);
  if (e != cudaSuccess) return e;
  gemm_tma_m1_kernel<ACT, WARPS, S, SB><<<grid, WARPS * 32, ring + p.chunks_per_split * 256, stream>>>(p, wmap, smap);
  return cudaGetLastError();
}

}  // namespace
}  // namespace nvfp4_cutlass
