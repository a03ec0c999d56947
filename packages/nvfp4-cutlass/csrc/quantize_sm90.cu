// sm_90a NVFP4 quantization, bit-identical to nvfp4.quantize_ref.
//
// The reference, per 16-value block, in float32: amax, s = (amax / 6) / g with IEEE division, clamp to
// [2^-9, 448], round-to-nearest-even to E4M3, total = float(s) * g, then each x / total (IEEE) rounded to E2M1
// by the thresholds of nvfp4/e2m1.py (ties to the even code, saturate at 6, sign only on a nonzero code).
//
// bf16/fp16 inputs: computed literally, the 16 IEEE divisions and 7 compares per value made the kernel
// instruction-bound at 54-59% of HBM bandwidth on the H100. But fl(|x| / total) is monotonic in |x|, so "x
// passes threshold j" is "|x| >= U_j" for one boundary U_j of the input type, and total takes one value per
// E4M3 code (126 finite positive ones) in a tensor. Each CTA tabulates the 7 boundaries of every code once,
// searching with the reference's own division (exact by construction), then codes two values at a time:
// packed compares (set.ge.bf16x2 / f16x2) summed in the same packed type. Blocks whose total is not finite or
// is below 2^-100 (NaN/Inf inputs, absurd global scales) and fp32 inputs take the reference's arithmetic.
#include <cfloat>

#include "kernels.h"
#include "nvfp4_sm90.cuh"

namespace nvfp4_cutlass {
namespace {

constexpr int kThresholds = 7;
__constant__ const float kThreshold[kThresholds] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};

// Threshold j of nvfp4/e2m1.py: ties round to the even code, so the odd thresholds are inclusive.
__device__ __forceinline__ bool passes(float mag, int j) {
  return (j & 1) ? mag >= kThreshold[j] : mag > kThreshold[j];
}

__device__ __forceinline__ uint32_t e2m1_code(float y) {
  const float mag = fabsf(y);
  uint32_t code = 0;
#pragma unroll
  for (int j = 0; j < kThresholds; ++j) code += passes(mag, j);
  if (y < 0.f && code != 0u) code |= 8u;
  return code;
}

__device__ __forceinline__ uint8_t block_scale_code(float amax, float g) {
  float s = (amax / 6.0f) / g;
  if (s == s) s = fminf(fmaxf(s, 0x1p-9f), 448.0f);  // torch's clamp keeps a NaN
  return __nv_cvt_float_to_fp8(s, __NV_SATFINITE, __NV_E4M3);
}

// The boundary table is used only where it is exact for every input of the type (no subnormal boundaries).
__device__ __forceinline__ bool table_total(float total) { return total >= 0x1p-100f && total <= FLT_MAX; }

// One 16-value block in float32, literally as the reference: its 8 packed bytes (two words) and E4M3 scale.
// value(i) gives the block's i-th value as a float (converted where it is used: fewer live registers).
template <class Value>
__device__ __forceinline__ uint8_t quantize_block(Value&& value, float g, uint32_t packed[2]) {
  // torch's amax propagates NaN (fmaxf would drop it): an Inf input with the default global scale (Inf) gives
  // a NaN scale in the reference, so it must here too.
  float amax = 0.f;
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    const float a = fabsf(value(i));
    amax = (a > amax || a != a) ? a : amax;
  }
  const uint8_t s8 = block_scale_code(amax, g);
  const float total = e4m3_to_float(s8) * g;
  packed[0] = packed[1] = 0u;
#pragma unroll
  for (int i = 0; i < 16; ++i) packed[i >> 3] |= e2m1_code(value(i) / total) << (4 * (i & 7));
  return s8;
}

// bf16 / fp16 as packed pairs.
template <typename T> struct Packed;
template <> struct Packed<__nv_bfloat16> {
  using T2 = __nv_bfloat162;
  static constexpr uint32_t kInf = 0x7F80u;
  static constexpr float kCountBase = 128.f;  // ulp 1 in [128, 256): a count of passes lands in the low bits
  static __device__ __forceinline__ float to_float(uint32_t bits) {
    return __bfloat162float(__ushort_as_bfloat16((unsigned short)bits));
  }
  static __device__ __forceinline__ uint32_t bits_round_down(float f) {
    return __bfloat16_as_ushort(__float2bfloat16_rd(f));
  }
};
template <> struct Packed<__half> {
  using T2 = __half2;
  static constexpr uint32_t kInf = 0x7C00u;
  static constexpr float kCountBase = 1024.f;
  static __device__ __forceinline__ float to_float(uint32_t bits) {
    return __half2float(__ushort_as_half((unsigned short)bits));
  }
  static __device__ __forceinline__ uint32_t bits_round_down(float f) { return __half_as_ushort(__float2half_rd(f)); }
};

template <typename T2>
__device__ __forceinline__ T2 as_pair(uint32_t u) { return *reinterpret_cast<T2*>(&u); }
template <typename T2>
__device__ __forceinline__ uint32_t pair_bits(T2 v) { return *reinterpret_cast<uint32_t*>(&v); }

// The smallest magnitude (as bits of T) whose quotient by total passes threshold j; Inf passes everything.
template <typename T>
__device__ uint32_t threshold_boundary(float total, int j) {
  using P = Packed<T>;
  uint32_t b = min(P::bits_round_down(kThreshold[j] * total) & 0x7FFFu, P::kInf);  // within an ulp or two
  while (b < P::kInf && !passes(P::to_float(b) / total, j)) ++b;
  while (b > 0u && passes(P::to_float(b - 1u) / total, j)) --b;
  return b;
}

// Boundaries of every E4M3 code, each duplicated into both halves of a pair: [code][threshold].
struct BoundaryTable {
  uint32_t u[128][8];
};

template <typename T>
__device__ void build_table(BoundaryTable& tab, float g) {
  for (int task = threadIdx.x; task < 128 * kThresholds; task += blockDim.x) {
    const int code = task / kThresholds, j = task % kThresholds;
    const float total = e4m3_to_float((uint8_t)code) * g;  // the reference's total for this scale
    const uint32_t b = table_total(total) ? threshold_boundary<T>(total, j) : Packed<T>::kInf;
    tab.u[code][j] = b | (b << 16);
  }
}

// One block of 16 bf16/fp16 values (raw: 8 pairs) -> packed bytes and E4M3 scale.
template <typename T>
__device__ __forceinline__ uint8_t quantize_pairs(const uint4 (&raw)[2], float g, const BoundaryTable& tab,
                                                  uint32_t packed[2]) {
  using P = Packed<T>;
  using T2 = typename P::T2;
  const uint32_t x[8] = {raw[0].x, raw[0].y, raw[0].z, raw[0].w, raw[1].x, raw[1].y, raw[1].z, raw[1].w};
  uint32_t mag[8];
  T2 amax2 = as_pair<T2>(0u);
#pragma unroll
  for (int p = 0; p < 8; ++p) {
    mag[p] = x[p] & 0x7FFF7FFFu;
    amax2 = __hmax2_nan(amax2, as_pair<T2>(mag[p]));
  }
  amax2 = __hmax2_nan(amax2, as_pair<T2>(__byte_perm(pair_bits(amax2), 0u, 0x1032)));  // with the other half
  const float amax = __low2float(amax2);
  const uint8_t s8 = block_scale_code(amax, g);
  const float total = e4m3_to_float(s8) * g;
  if (!table_total(total)) {  // NaN / Inf / extreme global scale: the reference's arithmetic, literally
    auto value = [&](int i) {
      const T2 h = as_pair<T2>(x[i >> 1]);
      return (i & 1) ? __high2float(h) : __low2float(h);
    };
    return quantize_block(value, g, packed);
  }
  const uint4 lo = *reinterpret_cast<const uint4*>(&tab.u[s8 & 0x7F][0]);
  const uint4 hi = *reinterpret_cast<const uint4*>(&tab.u[s8 & 0x7F][4]);
  const uint32_t bound[kThresholds] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z};
  packed[0] = packed[1] = 0u;
#pragma unroll
  for (int p = 0; p < 8; ++p) {
    const T2 m = as_pair<T2>(mag[p]);
    const uint32_t first = pair_bits(__hge2(m, as_pair<T2>(bound[0])));  // 1.0 where the code is nonzero
    T2 count = __hadd2(as_pair<T2>(first), T2(P::kCountBase, P::kCountBase));
#pragma unroll
    for (int j = 1; j < kThresholds; ++j) count = __hadd2(count, __hge2(m, as_pair<T2>(bound[j])));
    // bit 13 is set in 1.0 of both types: move it under the sign bit (15 -> 3) to keep a sign only on a
    // nonzero code
    const uint32_t nib = (pair_bits(count) & 0x00070007u) | ((x[p] >> 12) & (first >> 10) & 0x00080008u);
    packed[p >> 2] |= ((nib | (nib >> 12)) & 0xFFu) << (8 * (p & 3));
  }
  return s8;
}

// The order in which a thread visits its units of work, one grid stride apart. Linear: unit i is block i and
// scale byte i. Swizzled: unit i is scale byte i of the swizzled buffer (padding included, skipped), so a warp
// writes 32 consecutive scale bytes (one sector) instead of 8 scattered pieces of 4, and reads 128-byte runs of
// 8 rows, still whole sectors. The grid is even there, so the stride is a multiple of a 512-byte atom: a thread
// keeps its place inside the atom and steps over atoms without a division.
template <bool SWZ>
struct BlockCursor;

template <>
struct BlockCursor<false> {
  int64_t i, stride, items;
  __device__ __forceinline__ BlockCursor(int rows, int kb_total)
      : i((int64_t)blockIdx.x * blockDim.x + threadIdx.x), stride((int64_t)gridDim.x * blockDim.x),
        items((int64_t)rows * kb_total) {}
  __device__ __forceinline__ bool valid() const { return i < items; }
  __device__ __forceinline__ int64_t block() const { return i; }  // -1: padding
  __device__ __forceinline__ int64_t scale_offset() const { return i; }
  __device__ __forceinline__ void advance() { i += stride; }
};

template <>
struct BlockCursor<true> {
  int rows, kb_total, nkt, row_tiles, r_in, kb_in, rt, kt, step_rt, step_kt;
  __device__ __forceinline__ BlockCursor(int rows_, int kb_total_)
      : rows(rows_), kb_total(kb_total_), nkt((kb_total_ + 3) >> 2), row_tiles((rows_ + 127) >> 7) {
    const int within = (int)threadIdx.x + (int)(blockIdx.x & 1) * 256;  // blockDim.x == 256
    r_in = ((within & 15) >> 2) * 32 + (within >> 4);
    kb_in = within & 3;
    const int atom = (int)(blockIdx.x >> 1), step = (int)(gridDim.x >> 1);
    rt = atom / nkt;
    kt = atom % nkt;
    step_rt = step / nkt;
    step_kt = step % nkt;
  }
  __device__ __forceinline__ bool valid() const { return rt < row_tiles; }
  __device__ __forceinline__ int64_t block() const {
    const int r = rt * 128 + r_in, kb = kt * 4 + kb_in;
    return (r < rows && kb < kb_total) ? (int64_t)r * kb_total + kb : -1;
  }
  __device__ __forceinline__ int64_t scale_offset() const {
    return ((int64_t)rt * nkt + kt) * 512 + (r_in & 31) * 16 + (r_in >> 5) * 4 + kb_in;
  }
  __device__ __forceinline__ void advance() {
    rt += step_rt;
    kt += step_kt;
    if (kt >= nkt) { kt -= nkt; ++rt; }
  }
};

__device__ __forceinline__ void load_block(const uint4* src, int64_t block, uint4 (&v)[2]) {
  v[0] = v[1] = make_uint4(0u, 0u, 0u, 0u);
  if (block >= 0) {
    v[0] = ld_stream16(src + 2 * block);
    v[1] = ld_stream16(src + 2 * block + 1);
  }
}

// bf16/fp16: a grid of a few CTAs per SM, each builds its table once and strides over the blocks, one block
// a thread per step with the next block's 32 bytes already in flight.
template <typename T, bool SWZ>
__global__ void __launch_bounds__(256, 4)
    quantize_packed_kernel(const void* __restrict__ x, const float* __restrict__ gs, uint8_t* __restrict__ data,
                           uint8_t* __restrict__ scale, int rows, int kb_total) {
  __shared__ __align__(16) BoundaryTable tab;
  const uint4* src = static_cast<const uint4*>(x);
  BlockCursor<SWZ> at(rows, kb_total);
  int64_t blk = at.valid() ? at.block() : -1;
  uint4 cur[2];
  load_block(src, blk, cur);
  const float g = __ldg(gs);
  build_table<T>(tab, g);
  __syncthreads();
  while (at.valid()) {
    BlockCursor<SWZ> next = at;
    next.advance();
    const int64_t next_blk = next.valid() ? next.block() : -1;
    uint4 nxt[2];
    load_block(src, next_blk, nxt);
    if (blk >= 0) {
      uint32_t packed[2];
      scale[at.scale_offset()] = quantize_pairs<T>(cur, g, tab, packed);
      reinterpret_cast<uint2*>(data)[blk] = make_uint2(packed[0], packed[1]);
    }
    at = next;
    blk = next_blk;
    cur[0] = nxt[0];
    cur[1] = nxt[1];
  }
}

// fp32 inputs (rare: offline weight conversion): one thread per block, the reference's arithmetic.
__global__ void __launch_bounds__(256) quantize_f32_kernel(const float* __restrict__ x, const float* __restrict__ gs,
                                                           uint8_t* __restrict__ data, uint8_t* __restrict__ scale,
                                                           int64_t blocks, int kb_total, int swizzled) {
  const int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= blocks) return;
  float v[16];
  const float4* p = reinterpret_cast<const float4*>(x) + b * 4;
#pragma unroll
  for (int h = 0; h < 4; ++h) {
    const float4 q = __ldg(p + h);
    v[4 * h] = q.x; v[4 * h + 1] = q.y; v[4 * h + 2] = q.z; v[4 * h + 3] = q.w;
  }
  uint32_t packed[2];
  const uint8_t s8 = quantize_block([&](int i) { return v[i]; }, __ldg(gs), packed);
  reinterpret_cast<uint2*>(data)[b] = make_uint2(packed[0], packed[1]);
  scale[swizzled ? swizzled_scale_offset((int)(b / kb_total), (int)(b % kb_total), (kb_total + 3) >> 2) : b] = s8;
}

int sm_count() {
  int dev = 0, n = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
    return 132;
  return n;
}

}  // namespace

cudaError_t launch_quantize(const void* x, int x_dtype, const float* global_scale, uint8_t* data, uint8_t* scale,
                            int rows, int k, int swizzled, cudaStream_t stream) {
  const int kb_total = k / 16;
  const int64_t blocks = (int64_t)rows * kb_total;
  if (blocks == 0) return cudaSuccess;
  const int threads = 256;
  const int64_t full = (blocks + threads - 1) / threads;
  if (x_dtype == kOutFP32) {
    if (full > 0x7fffffff) return cudaErrorInvalidConfiguration;
    quantize_f32_kernel<<<(unsigned)full, threads, 0, stream>>>(static_cast<const float*>(x), global_scale, data,
                                                                scale, blocks, kb_total, swizzled);
    return cudaGetLastError();
  }
  // One wave of 4 resident CTAs an SM, each striding over its share. Swizzled: the padding is part of the work
  // (items is a multiple of 512, so the grid is even either way, as BlockCursor<true> needs).
  const int64_t items = swizzled ? (int64_t)((rows + 127) / 128) * ((kb_total + 3) / 4) * 512 : blocks;
  const unsigned grid = (unsigned)std::min<int64_t>((items + threads - 1) / threads, 4 * sm_count() & ~1);
  auto launch = [&](auto kernel) {
    kernel<<<grid, threads, 0, stream>>>(x, global_scale, data, scale, rows, kb_total);
    return cudaGetLastError();
  };
  switch (x_dtype) {
    case kOutBF16:
      return swizzled ? launch(quantize_packed_kernel<__nv_bfloat16, true>)
                      : launch(quantize_packed_kernel<__nv_bfloat16, false>);
    case kOutFP16:
      return swizzled ? launch(quantize_packed_kernel<__half, true>) : launch(quantize_packed_kernel<__half, false>);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace nvfp4_cutlass
