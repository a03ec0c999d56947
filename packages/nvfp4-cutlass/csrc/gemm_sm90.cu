// The compiled configuration list and the dispatch on the activation kind (kernels: gemm_sm90.cuh).
#include "gemm_sm90.cuh"

namespace nvfp4_cutlass {
namespace {

#define NVFP4_CONFIG_ENTRY(TM, W, U, S, KN, WR) GemmConfig{TM, W, U, S, KN, WR},
const GemmConfig kConfigs[] = {NVFP4_ALL_CONFIGS(NVFP4_CONFIG_ENTRY)};
#undef NVFP4_CONFIG_ENTRY

}  // namespace

const GemmConfig* gemm_configs(int* n) {
  *n = (int)(sizeof(kConfigs) / sizeof(kConfigs[0]));
  return kConfigs;
}

cudaError_t launch_gemm(const GemmParams& p, int act, GemmConfig cfg, cudaStream_t stream) {
  switch (act) {
    case kActBF16: return launch_gemm_bf16(p, cfg, stream);
    case kActFP16: return launch_gemm_fp16(p, cfg, stream);
    case kActNVFP4: return launch_gemm_nvfp4(p, cfg, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace nvfp4_cutlass
