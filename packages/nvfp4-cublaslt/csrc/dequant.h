// Kernels of the Hopper path (also built for sm_100a, where the Blackwell path uses them for alpha and
// for weight-only problems): NVFP4 -> BF16/FP16/FP32 dequantization, alpha on the device, and the
// FP32-scratch -> output cast (+ bias) used when cuBLASLt has no kernel writing the output dtype directly.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace nvfp4lt {

enum class DType : int { BF16 = 0, FP16 = 1, FP32 = 2 };

inline size_t dtype_size(DType t) { return t == DType::FP32 ? 4 : 2; }

// Dequantizes rows [row_begin, row_begin + rows) of an NVFP4 matrix with `k` columns into `out`, the
// dense [total_rows, k] buffer (written at the same rows). `data` is the packed [total_rows, k/2] base,
// `scale` the E4M3 scale buffer (linear [total_rows, k/16] or swizzled 128x4) as bytes. The global scale
// is NOT applied (alpha goes on the GEMM's FP32 accumulator): out = e2m1 * e4m3, exact in every dtype.
// When alpha_beta is not null, one thread also writes alpha_beta[0] = (*gs_a or 1) * *gs_b and
// alpha_beta[1] = 0 (the beta cuBLASLt reads in device pointer mode). When alpha_vec is not null, the
// same alpha goes to alpha_vec[0 .. rows) (cuBLASLt's per-row alpha vector, beta zero).
// Returns cudaErrorMisalignedAddress when `data` is not 4-byte aligned or `out` not 16-byte aligned.
cudaError_t launch_dequant(const uint8_t* data, const uint8_t* scale, void* out, DType out_type, int64_t row_begin,
                           int64_t rows, int64_t k, bool swizzled, const float* gs_a, const float* gs_b,
                           float* alpha_beta, float* alpha_vec, cudaStream_t stream);

// alpha_beta[0] = (*gs_a or 1) * *gs_b, alpha_beta[1] = 0 (the Blackwell path, which dequantizes nothing).
cudaError_t launch_alpha(const float* gs_a, const float* gs_b, float* alpha_beta, cudaStream_t stream);

// out[i, j] = cast(src[i, j] + bias[j]) for an [m, n] row-major FP32 src; bias (of out_type) may be null.
cudaError_t launch_cast_bias(const float* src, const void* bias, void* out, DType out_type, int64_t m, int64_t n,
                             cudaStream_t stream);

// cudaSuccess when this build has machine code the current device can run.
cudaError_t check_kernel_image();

}  // namespace nvfp4lt
