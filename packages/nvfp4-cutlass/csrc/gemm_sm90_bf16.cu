// The bf16 instantiations of the sm_90a GEMM kernels (see gemm_sm90.cuh).
#include "gemm_sm90.cuh"

namespace nvfp4_cutlass {

cudaError_t launch_gemm_bf16(const GemmParams& p, GemmConfig cfg, cudaStream_t stream) {
#define NVFP4_ACT kActBF16
  NVFP4_ALL_CONFIGS(NVFP4_CONFIG_CASE)
#undef NVFP4_ACT
  return cudaErrorInvalidValue;
}

}  // namespace nvfp4_cutlass
