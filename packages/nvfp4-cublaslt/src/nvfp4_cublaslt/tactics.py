"""How the ``cublaslt`` backend can run a problem: a cuBLASLt algorithm named by its configuration.

A tactic is stable across processes: it holds the algorithm's configuration values (algo id, tile,
stages, split-K, reduction scheme, CTA swizzle, custom option, inner and cluster shape), never a
position in the heuristic's list, which can change between cuBLASLt versions and runs. ``run`` rebuilds
the algorithm from these values (``cublasLtMatmulAlgoInit`` + config attributes) and cuBLASLt checks it.
"""

from __future__ import annotations

from dataclasses import dataclass

from nvfp4.problem import GemmProblem

#: Dequantize, then a BF16/FP16/FP32 cuBLASLt GEMM (Hopper and later).
PATH_DEQUANT = "dequant"
#: cuBLASLt's native FP4 GEMM (CUDA_R_4F_E2M1, VEC16_UE4M3 swizzled scales): compute capability 10.0.
PATH_FP4 = "fp4"
PATHS = (PATH_DEQUANT, PATH_FP4)

#: Pipelined variants split N into this many chunks: chunk i's GEMM overlaps chunk i+1's dequantization.
CHUNK_CHOICES = (1, 2, 4, 8)
#: Each chunk of a pipelined GEMM covers a multiple of this many output columns (keeps pointers aligned).
CHUNK_ALIGN = 128

# cublasLtReductionScheme_t values: NONE = 0, INPLACE = 1, COMPUTE_TYPE = 2, OUTPUT_TYPE = 4.
REDUCTION_NONE = 0
REDUCTION_COMPUTE_TYPE = 2


@dataclass(frozen=True)
class CublasLtTactic:
    path: str
    algo_id: int
    tile: int
    stages: int
    splitk: int
    reduction: int
    swizzle: int
    custom_option: int
    inner_shape: int
    cluster_shape: int
    #: 1: dequantize all, then one GEMM. >1: N split in chunks, dequantization overlapping the GEMMs.
    chunks: int = 1
    #: 1: alpha as a per-row device vector with beta zero (CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_ZERO,
    #: kernels that never read C); 0: alpha and beta as device scalars (CUBLASLT_POINTER_MODE_DEVICE).
    alpha_vector: int = 0

    def config(self) -> tuple[int, ...]:
        """The native module's configuration tuple."""
        return (self.algo_id, self.tile, self.stages, self.splitk, self.reduction, self.swizzle,
                self.custom_option, self.inner_shape, self.cluster_shape)

    @classmethod
    def from_config(cls, path: str, config, chunks: int = 1, alpha_vector: int = 0) -> CublasLtTactic:
        return cls(path, *(int(v) for v in config), chunks=chunks, alpha_vector=alpha_vector)


def invalid_reason(tactic: object, problem: GemmProblem, capability: tuple[int, int] | None = None) -> str | None:
    """None when ``tactic`` can run ``problem`` (on a device of ``capability``), else why not.

    The checks that need no GPU; cuBLASLt itself checks the algorithm when a plan is built.
    """
    if not isinstance(tactic, CublasLtTactic):
        return f"not a CublasLtTactic: {tactic!r}"
    if tactic.path not in PATHS:
        return f"path must be one of {PATHS}, got {tactic.path!r}"
    ints = (tactic.algo_id, tactic.tile, tactic.stages, tactic.reduction, tactic.swizzle,
            tactic.custom_option, tactic.inner_shape, tactic.cluster_shape, tactic.chunks)
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in ints + (tactic.alpha_vector,)):
        return "configuration fields must be non-negative integers"
    # splitk: >= 1, or -1, which cuBLASLt 13.1 reports for some FP32 (SIMT) algorithms (seen on the H100).
    if not isinstance(tactic.splitk, int) or isinstance(tactic.splitk, bool) or not (
            tactic.splitk >= 1 or tactic.splitk == -1):
        return f"splitk must be >= 1 (or -1, as cuBLASLt reports for some algorithms), got {tactic.splitk!r}"
    if tactic.splitk != 1 and tactic.reduction not in (REDUCTION_NONE, REDUCTION_COMPUTE_TYPE):
        return ("split-K reduced in the output type rounds partial sums before alpha; "
                "only an FP32 (compute type) reduction keeps the semantics")
    if tactic.alpha_vector not in (0, 1):
        return f"alpha_vector must be 0 or 1, got {tactic.alpha_vector!r}"
    if tactic.chunks not in CHUNK_CHOICES:
        return f"chunks must be one of {CHUNK_CHOICES}, got {tactic.chunks}"
    if tactic.chunks > 1:
        if tactic.path != PATH_DEQUANT:
            return "only the dequantize path is pipelined in chunks"
        if problem.n % (tactic.chunks * CHUNK_ALIGN):
            return f"N = {problem.n} does not split into {tactic.chunks} chunks of a multiple of {CHUNK_ALIGN}"
    if tactic.path == PATH_FP4:
        if problem.weight_only:
            return "the native FP4 path needs both operands in NVFP4 (W4A4)"
        if tactic.alpha_vector:
            return "the native FP4 path takes a scalar alpha"
        if problem.layout != "swizzled":
            return "the native FP4 path reads swizzled 128x4 scales only"
        if capability is not None and capability != (10, 0):
            return f"the native FP4 path needs compute capability 10.0, device has {capability[0]}.{capability[1]}"
    return None
