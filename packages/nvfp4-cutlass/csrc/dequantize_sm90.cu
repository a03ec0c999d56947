// NVFP4 -> FP16 without the global scale: each value is E2M1 x E4M3, which FP16 holds exactly. The W4A4 GEMM
// tactics with act_fp16 run this on the activation and then the weight-only FP16 kernels (the global scale goes
// into their alpha), instead of every CTA decoding the packed activations again for each weight tile it owns:
// the same products, decoded once.
#include <algorithm>

#include "kernels.h"
#include "nvfp4_sm90.cuh"

namespace nvfp4_cutlass {
namespace {

// One thread a 16-value block: 8 data bytes and one scale in, 32 bytes out, grid-stride.
__global__ void __launch_bounds__(256) dequantize_fp16_kernel(const uint8_t* __restrict__ data,
                                                              const uint8_t* __restrict__ scale, __half* out,
                                                              int64_t blocks, int kb_total, int swizzled) {
  const int nkt = (kb_total + 3) >> 2;
  for (int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; b < blocks; b += (int64_t)gridDim.x * blockDim.x) {
    const int r = (int)(b / kb_total), kb = (int)(b % kb_total);
    const uint2 w = ld_stream8(data + b * 8);
    const uint32_t s2 = f16_block_scale(scale[scale_offset(r, kb, kb_total, nkt, swizzled != 0)]);
    uint32_t v[8];
    decode_word_f16(w.x, s2, v);  // v[i]: the values of byte i, the low nibble (lower K) in the low half
    decode_word_f16(w.y, s2, v + 4);
    uint4* o = reinterpret_cast<uint4*>(out + b * 16);
    o[0] = make_uint4(v[0], v[1], v[2], v[3]);
    o[1] = make_uint4(v[4], v[5], v[6], v[7]);
  }
}

}  // namespace

cudaError_t launch_dequantize_fp16(const uint8_t* data, const uint8_t* scale, void* out, int rows, int k,
                                   int swizzled, cudaStream_t stream) {
  if (rows < 1 || k < 16 || k % 16) return cudaErrorInvalidValue;
  const int64_t blocks = (int64_t)rows * (k / 16);
  const int threads = 256;
  const unsigned grid = (unsigned)std::min<int64_t>((blocks + threads - 1) / threads, 1 << 16);
  dequantize_fp16_kernel<<<grid, threads, 0, stream>>>(data, scale, static_cast<__half*>(out), blocks, k / 16,
                                                       swizzled);
  return cudaGetLastError();
}

}  // namespace nvfp4_cutlass
