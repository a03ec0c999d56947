// Host-side interface of the sm_90a kernels (no torch, no Python: plain pointers and a stream).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

namespace nvfp4_cutlass {

enum ActKind : int { kActBF16 = 0, kActFP16 = 1, kActNVFP4 = 2 };
enum OutKind : int { kOutBF16 = 0, kOutFP16 = 1, kOutFP32 = 2 };

// out[M, N] = cast(alpha * (deq(a) @ deq(b)^T) + bias), computed as D^T = W x X^T so the weight b is operand
// A (mma.m16n8k16's 16 rows, or wgmma's 64 from registers) and M the N-side operand.
struct GemmParams {
  const uint8_t* b_data;   // [N, K/2] packed E2M1, even K in the low nibble
  const uint8_t* b_scale;  // E4M3 bits: linear [N, K/16] or the 128x4 swizzled buffer
  const float* b_gs;       // device scalar: b's global dequantization scale
  const void* a;           // [M, K] bf16/fp16, or [M, K/2] packed E2M1 (W4A4)
  const uint8_t* a_scale;  // W4A4 only: a's E4M3 scales, same layout as b's
  const float* a_gs;       // W4A4 (alpha = a_gs * b_gs), or FP16 a dequantized from NVFP4 (nullptr: none)
  const void* bias;        // nullptr or [N] of the output dtype
  void* out;               // [M, N] contiguous, output dtype
  float* partials;         // split_k > 1: [split_k, M, N] fp32 partial sums
  unsigned* counters;      // split_k > 1: one arrival counter per output tile, zero on entry and on exit
  int m, n, k;
  int swizzled;            // scale layout of b (and a)
  int out_dtype;           // OutKind
  int split_k;             // K slices, reduced by the last CTA of each tile
  int chunks_per_split;    // 128-wide K chunks per slice
};

// Kernel families: mma.sync with per-warp activation registers (cp.async ring, register stages or the shared
// activation tile), the warpgroup-MMA kernel, the M = 1 kernel with TMA-fed weights (unroll = chunks a stage), and
// the M = 1 kernel reading whole weight rows (unroll = 1024-wide K steps in flight, warp_rows = 2-8 rows a warp).
enum GemmKernel : int { kKernelMmaSync = 0, kKernelWgmma = 1, kKernelTmaM1 = 2, kKernelGemv = 3 };

// One compiled kernel configuration: tile_m activation rows per CTA, warps per CTA (tile_n = warp_rows * warps),
// unroll = 128-wide K chunks whose loads are issued before any of them is computed (the TMA kernel: chunks a
// stage), stages (1, 2: registers; >= 3: depth of the shared-memory ring), kernel: the family (GemmKernel),
// warp_rows = weight rows a warp owns (16; 32 for some cp.async configurations; 2-8, in pairs, for the row GEMV).
struct GemmConfig { int tile_m, warps, unroll, stages, kernel, warp_rows = 16; };

// Configurations compiled into this build (count written to *n).
const GemmConfig* gemm_configs(int* n);

// cudaErrorInvalidValue for a configuration that is not compiled in.
cudaError_t launch_gemm(const GemmParams& p, int act, GemmConfig cfg, cudaStream_t stream);

// NVFP4 quantization bit-identical to nvfp4.quantize_ref. x: [rows, k] of x_dtype (OutKind numbering:
// 0 bf16, 1 fp16, 2 fp32); data [rows, k/2]; scale linear [rows, k/16] or swizzled (padding pre-zeroed).
cudaError_t launch_quantize(const void* x, int x_dtype, const float* global_scale, uint8_t* data, uint8_t* scale,
                            int rows, int k, int swizzled, cudaStream_t stream);

// NVFP4 -> FP16 without the global scale (E2M1 x E4M3 is exact in FP16): data [rows, k/2], scale linear
// [rows, k/16] or swizzled, out [rows, k] FP16 (16-byte aligned). The W4A4 tactics with act_fp16 feed it to the
// FP16 GEMM kernels.
cudaError_t launch_dequantize_fp16(const uint8_t* data, const uint8_t* scale, void* out, int rows, int k,
                                   int swizzled, cudaStream_t stream);

}  // namespace nvfp4_cutlass
