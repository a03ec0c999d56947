// The nvfp4 instantiations of the sm_90a GEMM kernels.
#define NVFP4_ACT kActNVFP4
#define NVFP4_ACT_LAUNCH launch_gemm_nvfp4
#include "gemm_sm90_act.inc"
