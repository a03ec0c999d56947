// The fp16 instantiations of the sm_90a GEMM kernels.
#define NVFP4_ACT kActFP16
#define NVFP4_ACT_LAUNCH launch_gemm_fp16
#include "gemm_sm90_act.inc"
