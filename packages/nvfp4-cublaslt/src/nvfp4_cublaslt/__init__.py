"""nvfp4-cublaslt: exact NVFP4 GEMMs through cuBLASLt.

Hopper (sm_90): NVFP4 operands are dequantized to BF16/FP16 (exact) into a reused workspace, then a
cuBLASLt GEMM applies alpha (the global scales, read on the device) to its FP32 accumulator and adds the
bias in its epilogue. Blackwell (sm_100): cuBLASLt's native FP4 GEMM on swizzled scales.
The backend registers as ``"cublaslt"`` through the ``nvfp4.backends`` entry point.
"""

from .backend import CublasLtBackend
from .tactics import CublasLtTactic, invalid_reason

__all__ = ["CublasLtBackend", "CublasLtTactic", "invalid_reason"]
