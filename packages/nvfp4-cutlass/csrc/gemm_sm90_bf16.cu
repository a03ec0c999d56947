// The bf16 instantiations of the sm_90a GEMM kernels.
#define NVFP4_ACT kActBF16
#define NVFP4_ACT_LAUNCH launch_gemm_bf16
#include "gemm_sm90_act.inc"
