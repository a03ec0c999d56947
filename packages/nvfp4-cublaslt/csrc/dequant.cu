// NVFP4 -> BF16/FP16/FP32 dequantization: memory-bound, one pass, coalesced loads and 16-byte stores.
//
// Decoding an E2M1 nibble without a lookup table: its sign goes to bit 15 of an FP16 and its three
// exponent+mantissa bits to bits 9..11, which makes the FP16 value e2m1 * 2^-14 exactly (code 1, 0.5,
// becomes the subnormal 2^-15). The 2^14 is folded into the block scale (e4m3 * 2^14 is exact in FP32),
// so each element costs one FP16->FP32 conversion and one multiply. The product e2m1 * e4m3 has at most
// 6 significant bits and lies in [2^-10, 2688]: exact in BF16, FP16 and FP32.
#include "dequant.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

namespace nvfp4lt {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float e4m3_times_2p14(uint8_t v) {
  __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(v), __NV_E4M3);
  return __half2float(__half(h)) * 16384.0f;
}

// Eight E2M1 codes (a 32-bit word, even element in each byte's low nibble) times scale `s`.
__device__ __forceinline__ void decode8(uint32_t w, float s, float (&v)[8]) {
  const uint32_t w4 = w >> 4;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    // byte 0 <- low nibble of byte j (element 2j), byte 2 <- high nibble of byte j (element 2j+1).
    const uint32_t x = __byte_perm(w, w4, j | (j << 4) | ((4 + j) << 8) | (j << 12));
    const uint32_t bits = ((x & 0x00080008u) << 12) | ((x & 0x00070007u) << 9);
    __half2_raw raw;
    raw.x = static_cast<unsigned short>(bits & 0xFFFFu);
    raw.y = static_cast<unsigned short>(bits >> 16);
    const float2 f = __half22float2(__half2(raw));
    v[2 * j] = f.x * s;
    v[2 * j + 1] = f.y * s;
  }
}

// Eight dequantized values to out (one 16-byte store for BF16/FP16, two for FP32).
template <typename Out>
struct Store8;

template <>
struct Store8<__nv_bfloat16> {
  static __device__ __forceinline__ uint32_t pack(float a, float b) {
    __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    return *reinterpret_cast<uint32_t*>(&h);
  }
  static __device__ __forceinline__ void store(__nv_bfloat16* dst, const float (&v)[8]) {
    *reinterpret_cast<uint4*>(dst) = make_uint4(pack(v[0], v[1]), pack(v[2], v[3]), pack(v[4], v[5]), pack(v[6], v[7]));
  }
};

template <>
struct Store8<__half> {
  static __device__ __forceinline__ uint32_t pack(float a, float b) {
    __half2 h = __floats2half2_rn(a, b);
    return *reinterpret_cast<uint32_t*>(&h);
  }
  static __device__ __forceinline__ void store(__half* dst, const float (&v)[8]) {
    *reinterpret_cast<uint4*>(dst) = make_uint4(pack(v[0], v[1]), pack(v[2], v[3]), pack(v[4], v[5]), pack(v[6], v[7]));
  }
};

template <>
struct Store8<float> {
  static __device__ __forceinline__ void store(float* dst, const float (&v)[8]) {
    reinterpret_cast<float4*>(dst)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(dst)[1] = make_float4(v[4], v[5], v[6], v[7]);
  }
};

__device__ __forceinline__ size_t scale_offset(uint32_t r, uint32_t kb, uint32_t kpb, uint32_t nkt, bool swizzled) {
  if (!swizzled) return static_cast<size_t>(r) * kpb + kb;
  return (static_cast<size_t>(r >> 7) * nkt + (kb >> 2)) * 512 + (r & 31) * 16 + ((r & 127) >> 5) * 4 + (kb & 3);
}

__device__ __forceinline__ void write_alpha(const float* gs_a, const float* gs_b, float* alpha_beta) {
  float a = gs_b ? *gs_b : 1.0f;
  if (gs_a) a *= *gs_a;
  alpha_beta[0] = a;
  alpha_beta[1] = 0.0f;
}

// The work unit is 8 elements: one 32-bit word of packed codes in, one 16-byte vector out, so a warp's
// load covers 128 contiguous bytes and its store 512 (fully coalesced). A thread handles kUnits units
// spaced a CTA apart, all loads issued before the first use (bytes in flight hide DRAM latency).
constexpr int kUnits = 4;

template <typename Out>
__global__ void __launch_bounds__(kThreads) dequant_kernel(const uint32_t* __restrict__ data,
                                                           const uint8_t* __restrict__ scale, Out* __restrict__ out,
                                                           uint32_t units, uint32_t unit_begin, uint32_t kpb,
                                                           uint32_t nkt, bool swizzled, const float* gs_a,
                                                           const float* gs_b, float* alpha_beta, float* alpha_vec,
                                                           uint32_t alpha_n) {
  if (alpha_beta != nullptr && blockIdx.x == 0 && threadIdx.x == 0) write_alpha(gs_a, gs_b, alpha_beta);
  if (alpha_vec != nullptr) {
    // The per-row alpha of cuBLASLt's ALPHA_DEVICE_VECTOR_BETA_ZERO mode: one value, alpha_n rows.
    float a = gs_b ? *gs_b : 1.0f;
    if (gs_a) a *= *gs_a;
    for (uint32_t i = blockIdx.x * kThreads + threadIdx.x; i < alpha_n; i += gridDim.x * kThreads) alpha_vec[i] = a;
  }
  const uint32_t first = blockIdx.x * (kThreads * kUnits) + threadIdx.x;
  uint32_t w[kUnits];
  uint8_t sc[kUnits];
#pragma unroll
  for (int j = 0; j < kUnits; ++j) {
    const uint32_t u = first + j * kThreads;
    w[j] = 0;
    sc[j] = 0;
    if (u < units) {
      const uint32_t g = (unit_begin + u) >> 1;  // scale block (16 elements) in the whole matrix
      const uint32_t r = g / kpb;
      w[j] = __ldcs(data + unit_begin + u);  // read once: do not keep in cache
      sc[j] = __ldg(scale + scale_offset(r, g - r * kpb, kpb, nkt, swizzled));
    }
  }
#pragma unroll
  for (int j = 0; j < kUnits; ++j) {
    const uint32_t u = first + j * kThreads;
    if (u < units) {
      float v[8];
      decode8(w[j], e4m3_times_2p14(sc[j]), v);
      Store8<Out>::store(out + static_cast<size_t>(unit_begin + u) * 8, v);
    }
  }
}

__global__ void alpha_kernel(const float* gs_a, const float* gs_b, float* alpha_beta) {
  write_alpha(gs_a, gs_b, alpha_beta);
}

template <typename Out>
__global__ void cast_bias_kernel(const float* __restrict__ src, const Out* __restrict__ bias, Out* __restrict__ out,
                                 int64_t total, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = src[i];
    if (bias != nullptr) v += static_cast<float>(bias[i % n]);
    out[i] = static_cast<Out>(v);
  }
}

template <typename Out>
cudaError_t launch_typed(const uint8_t* data, const uint8_t* scale, void* out, int64_t row_begin, int64_t rows,
                         int64_t k, bool swizzled, const float* gs_a, const float* gs_b, float* alpha_beta,
                         float* alpha_vec, cudaStream_t stream) {
  const uint32_t kpb = static_cast<uint32_t>(k / 16);
  const uint32_t nkt = (kpb + 3) / 4;
  const uint32_t units = static_cast<uint32_t>(rows * (k / 8));
  const uint32_t unit_begin = static_cast<uint32_t>(row_begin * (k / 8));
  const uint32_t per_cta = kThreads * kUnits;
  const uint32_t grid = units == 0 ? 1 : (units + per_cta - 1) / per_cta;
  dequant_kernel<Out><<<grid, kThreads, 0, stream>>>(reinterpret_cast<const uint32_t*>(data), scale,
                                                     static_cast<Out*>(out), units, unit_begin, kpb, nkt, swizzled,
                                                     gs_a, gs_b, alpha_beta, alpha_vec,
                                                     static_cast<uint32_t>(rows));
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_dequant(const uint8_t* data, const uint8_t* scale, void* out, DType out_type, int64_t row_begin,
                           int64_t rows, int64_t k, bool swizzled, const float* gs_a, const float* gs_b,
                           float* alpha_beta, float* alpha_vec, cudaStream_t stream) {
  if (reinterpret_cast<uintptr_t>(data) % 4 != 0 || reinterpret_cast<uintptr_t>(out) % 16 != 0)
    return cudaErrorMisalignedAddress;
  if (k % 16 != 0 || rows < 0 || row_begin < 0 || (row_begin + rows) * (k / 8) >= (int64_t(1) << 32))
    return cudaErrorInvalidValue;
  switch (out_type) {
    case DType::BF16:
      return launch_typed<__nv_bfloat16>(data, scale, out, row_begin, rows, k, swizzled, gs_a, gs_b, alpha_beta, alpha_vec, stream);
    case DType::FP16:
      return launch_typed<__half>(data, scale, out, row_begin, rows, k, swizzled, gs_a, gs_b, alpha_beta, alpha_vec, stream);
    case DType::FP32:
      return launch_typed<float>(data, scale, out, row_begin, rows, k, swizzled, gs_a, gs_b, alpha_beta, alpha_vec, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t launch_alpha(const float* gs_a, const float* gs_b, float* alpha_beta, cudaStream_t stream) {
  alpha_kernel<<<1, 1, 0, stream>>>(gs_a, gs_b, alpha_beta);
  return cudaGetLastError();
}

cudaError_t launch_cast_bias(const float* src, const void* bias, void* out, DType out_type, int64_t m, int64_t n,
                             cudaStream_t stream) {
  const int64_t total = m * n;
  const int grid = static_cast<int>(std::min<int64_t>((total + 255) / 256, 65535));
  switch (out_type) {
    case DType::BF16:
      cast_bias_kernel<__nv_bfloat16><<<grid, 256, 0, stream>>>(src, static_cast<const __nv_bfloat16*>(bias),
                                                               static_cast<__nv_bfloat16*>(out), total, n);
      break;
    case DType::FP16:
      cast_bias_kernel<__half><<<grid, 256, 0, stream>>>(src, static_cast<const __half*>(bias),
                                                        static_cast<__half*>(out), total, n);
      break;
    case DType::FP32:
      cast_bias_kernel<float><<<grid, 256, 0, stream>>>(src, static_cast<const float*>(bias),
                                                       static_cast<float*>(out), total, n);
      break;
  }
  return cudaGetLastError();
}

cudaError_t check_kernel_image() {
  cudaFuncAttributes attr;
  return cudaFuncGetAttributes(&attr, dequant_kernel<__nv_bfloat16>);
}

}  // namespace nvfp4lt
