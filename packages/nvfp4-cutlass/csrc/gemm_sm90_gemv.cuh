// sm_90a NVFP4 GEMM for M = 1 with whole-row weight reads: the "diagonal" mma.sync GEMV (included by gemm_sm90.cuh
// after the TMA kernel; it shares the chunk decode-and-MMA of the per-warp kernels).
//
// Why: the other M = 1 kernels give a warp 16 weight rows and each lane quarter of a 128-wide K chunk, because
// mma.m16n8k16 multiplies every row of A with the same K positions of B's column: lanes t = 0..3 of all eight row
// pairs must hold the same K values. So a warp load touches 16 rows x 64 bytes. Here that constraint goes away:
//
// - A's row i (i < 8) is the weight row r at K positions that lane (i, t) chooses, A's row 8 + i the row r' at
//   the same positions, and B's column i the activations at those positions too. Lane (g, t) holds exactly
//   A[g][k], A[g + 8][k] and B[k][g] for its k in {2t, 2t+1, 2t+8, 2t+9}, so it supplies matching weights and
//   activations from its own data, and D[g][g] (D[g + 8][g]) sums lanes 4g..4g+3's products of row r (r').
//   The off-diagonal sums mix unrelated positions and are never read; at the end the eight diagonal elements are
//   summed across the warp (5 shuffles a row, once a slice).
// - so each lane takes 16 consecutive bytes (32 values, two scale blocks) of its rows and a warp load reads 512
//   contiguous bytes of one row: a row's whole K slice streams as 512-byte runs, the plain-read pattern.
// - the tensor cores do no more work than in the 16-row kernels at M = 1 (256 useful products an MMA there and
//   here), the decode is the same code (mma_chunk), and the weights come straight into registers: a ring of U
//   steps of 16-byte loads a lane in flight, no shared memory, no barrier in the loop.
// - the CTA stages its K slice of the one activation row in shared memory once, paired for the decoder (W4A4:
//   decoded to FP16 on the way, as the TMA kernel does), so a lane reads its B registers with four 16-byte loads a
//   step that every row of the warp shares.
//
// Needs M = 1, K % 32 == 0 (whole 32-value segments; the scale pair of a segment is one aligned 16-bit load, in
// either scale layout) and a split-K slice of at most kGemvMaxSliceChunks chunks (its activations in shared memory).
#pragma once

namespace nvfp4_cutlass {
namespace {

//: K values a warp covers per step: 32 lanes x 32 consecutive values.
constexpr int kGemvStepK = 1024;
//: Longest split-K slice, in 128-wide chunks, whose activation row the CTA stages (2 bytes a value: 48 KiB).
constexpr int kGemvMaxSliceChunks = 192;

__device__ __forceinline__ uint32_t ld_stream_u16(const void* p) {
  unsigned short v;
  asm volatile("ld.global.nc.L1::no_allocate.u16 %0, [%1];" : "=h"(v) : "l"(p));
  return v;
}

// ACT: the activation kind (W4A4 multiplies in FP16 after decoding its row). WARPS: warps a CTA, sharing the
// staged activation slice. R: weight rows a warp (pairs of rows r, r' share one MMA's rows 0-7 and 8-15).
// U: steps of weight loads a lane has issued when it starts on a step (1024 K values a step; the weights land in
// registers, a ring of U slots: step s + U is loaded once step s is multiplied).
template <int ACT, int WARPS, int U, int R>
__global__ void __launch_bounds__(WARPS * 32) gemm_gemv_kernel(const GemmParams p) {
  static_assert(R % 2 == 0, "rows come in pairs: an MMA's top and bottom halves");
  constexpr int MMA_ACT = ACT == kActNVFP4 ? kActFP16 : ACT;
  constexpr bool BF16 = MMA_ACT == kActBF16;
  extern __shared__ uint4 gemv_x[];  // element e: K values k_begin + 8e .. + 7, paired like the weight decoder's
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int row0 = blockIdx.x * (WARPS * R) + warp * R;
  const int k_begin = blockIdx.z * p.chunks_per_split * 128;
  const int k_end = min(k_begin + p.chunks_per_split * 128, p.k);
  const int steps = (k_end - k_begin + kGemvStepK - 1) / kGemvStepK;
  const int kb_total = p.k >> 4, nkt = (kb_total + 3) >> 2;
  const bool swz = p.swizzled != 0;

  // rows past N read row N - 1 (never stored)
  const uint8_t* wrow[R];
  int srow[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    srow[r] = min(row0 + r, p.n - 1);
    wrow[r] = p.b_data + (int64_t)srow[r] * (p.k >> 1);
  }
  // step s: a lane's segment past the slice loads as zeros (scale 0)
  uint4 wb[U][R];
  uint32_t sb[U][R];
  auto load = [&](int u, int s) {
    const int kseg = k_begin + s * kGemvStepK + lane * 32;
    const bool ok = s < steps && kseg < k_end;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      wb[u][r] = ok ? ld_stream16(wrow[r] + (kseg >> 1)) : make_uint4(0u, 0u, 0u, 0u);
      sb[u][r] = ok ? ld_stream_u16(p.b_scale + scale_offset(srow[r], kseg >> 4, kb_total, nkt, swz)) : 0u;
    }
  };
#pragma unroll
  for (int u = 0; u < U; ++u) load(u, u);

  // the activation slice, while the first steps load; positions past the slice are zeros, so the zero weights
  // there multiply zeros (a lane's segment past K must not meet a NaN)
  for (int e = threadIdx.x; e < steps * (kGemvStepK / 8); e += WARPS * 32) {
    const int k = k_begin + 8 * e;
    uint32_t v[4] = {0u, 0u, 0u, 0u};
    if (k < k_end) {
      if constexpr (ACT == kActNVFP4) {  // exact FP16 values of E2M1 x E4M3; a's global scale is in alpha
        const uint32_t word = __ldg(reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(p.a) + (k >> 1)));
        decode_word_f16(word, f16_block_scale(__ldg(p.a_scale + scale_offset(0, k >> 4, kb_total, nkt, swz))), v);
      } else {
        b_from_16bit<BF16>(__ldg(reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p.a) + k)), v);
      }
    }
    gemv_x[e] = make_uint4(v[0], v[1], v[2], v[3]);
  }
  __syncthreads();

  Accumulators<2, 1> acc[R / 2];
#pragma unroll
  for (int pr = 0; pr < R / 2; ++pr) acc[pr].zero();
  auto compute = [&](int s, const uint4 (&w)[R], const uint32_t (&sc)[R]) {
    const uint4* xs = gemv_x + s * (kGemvStepK / 8) + lane * 4;
    const uint4 xv[4] = {xs[0], xs[1], xs[2], xs[3]};
#pragma unroll
    for (int pr = 0; pr < R / 2; ++pr) {
      const uint32_t p0 = block_scale_pair<BF16>(sc[2 * pr]), p1 = block_scale_pair<BF16>(sc[2 * pr + 1]);
      const uint32_t wscale[2][2] = {{scale_lo<BF16>(p0), scale_hi<BF16>(p0)}, {scale_lo<BF16>(p1), scale_hi<BF16>(p1)}};
      mma_chunk<BF16, BF16>(acc[pr], w[2 * pr], w[2 * pr + 1], wscale, [&](int, int q, uint32_t (&b)[4]) {
        const uint4 v = xv[q];
        b[0] = v.x; b[1] = v.y; b[2] = v.z; b[3] = v.w;
      });
    }
  };
  for (int s0 = 0; s0 < steps; s0 += U) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (s0 + u < steps) compute(s0 + u, wb[u], sb[u]);
      load(u, s0 + u + U);
    }
  }

  // the diagonal: D[g][g] is element g & 1 of lane (g, g / 2), D[g + 8][g] element 2 + (g & 1)
  float res[R];
#pragma unroll
  for (int pr = 0; pr < R / 2; ++pr) {
    acc[pr].fold();
    const float* v = acc[pr].v[0][0];
    const bool diag = t == (g >> 1);
    float d0 = diag ? ((g & 1) ? v[1] : v[0]) : 0.f, d1 = diag ? ((g & 1) ? v[3] : v[2]) : 0.f;
#pragma unroll
    for (int o = 16; o; o >>= 1) {
      d0 += __shfl_xor_sync(0xFFFFFFFFu, d0, o);
      d1 += __shfl_xor_sync(0xFFFFFFFFu, d1, o);
    }
    res[2 * pr] = d0;
    res[2 * pr + 1] = d1;
  }
  // lane r < R owns row row0 + r from here on
  float mine = 0.f;
#pragma unroll
  for (int r = 0; r < R; ++r)
    if (lane == r) mine = res[r];
  const int n = row0 + lane;
  const bool owner = lane < R && n < p.n;

  if (p.split_k > 1) {  // publish this slice's sums; the last CTA of the tile to arrive adds them in slice order
    if (owner) p.partials[(int64_t)blockIdx.z * p.n + n] = mine;
    __syncthreads();
    __shared__ bool last;
    if (threadIdx.x == 0) {
      __threadfence();
      last = atomicAdd(p.counters + blockIdx.x, 1u) == (unsigned)(p.split_k - 1);
      if (last) __threadfence();
    }
    __syncthreads();
    if (!last) return;
    if (owner) {
      float s = 0.f;
      for (int z = 0; z < p.split_k; ++z) s += __ldcg(p.partials + (int64_t)z * p.n + n);
      mine = s;
    }
    if (threadIdx.x == 0) p.counters[blockIdx.x] = 0u;  // ready for the next launch (CUDA-graph replays included)
  }
  if (owner) store_out(p, 0, n, mine, epilogue_alpha<ACT>(p), bias_at(p, n));
}

template <int ACT, int WARPS, int U, int R>
cudaError_t launch_gemv(const GemmParams& p, cudaStream_t stream) {
  if (ACT == kActNVFP4 && (!p.a_scale || !p.a_gs)) return cudaErrorInvalidValue;  // W4A4: a's scales and global scale
  if (p.m != 1 || p.k % 32 || p.chunks_per_split < 1 || p.chunks_per_split > kGemvMaxSliceChunks)
    return cudaErrorInvalidValue;
  if (reinterpret_cast<uintptr_t>(p.b_data) % 16 || reinterpret_cast<uintptr_t>(p.b_scale) % 2 ||
      reinterpret_cast<uintptr_t>(p.a) % (ACT == kActNVFP4 ? 4 : 16))
    return cudaErrorMisalignedAddress;
  const dim3 grid((p.n + WARPS * R - 1) / (WARPS * R), 1, p.split_k);
  if (grid.z > 65535u) return cudaErrorInvalidConfiguration;
  // up to kGemvMaxSliceChunks * 256 = 48 KiB, which with the epilogue's static flag is past what a kernel may take
  // without opting in (a 192-chunk slice failed to launch before this)
  const cudaError_t e = allow_dynamic_smem<gemm_gemv_kernel<ACT, WARPS, U, R>>(kGemvMaxSliceChunks * 256);
  if (e != cudaSuccess) return e;
  const int steps = (p.chunks_per_split * 128 + kGemvStepK - 1) / kGemvStepK;
  gemm_gemv_kernel<ACT, WARPS, U, R><<<grid, WARPS * 32, steps * kGemvStepK * 2, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace
}  // namespace nvfp4_cutlass
