"""nvfp4: one NVFP4 GEMM API over every installed backend, choosing the fastest by measuring.

    import nvfp4
    w = nvfp4.quantize(weight)                     # NVFP4Tensor [N, K]
    y = nvfp4.gemm(x, w)                           # weight-only: x is bf16 [M, K]
    y = nvfp4.gemm(nvfp4.quantize(x), w)           # W4A4
    print(nvfp4.explain(x, w))                     # which backend/tactic, and why
"""

from __future__ import annotations

from . import nn
from . import ops as _ops  # noqa: F401  (registers torch.ops.nvfp4.*)
from ._version import __version__
from .backend import Availability, Backend, DefaultTactic, Quantizer
from .checkpoint import load_modelopt, save_modelopt
from .deprecations import cute_dsl_nvfp4_gemm_blackwell as cute_dsl_nvfp4_gemm_blackwell
from .deprecations import nvfp4_gemm as nvfp4_gemm
from .deprecations import nvfp4_gemm_cublaslt as nvfp4_gemm_cublaslt
from .errors import BackendUnavailableError, NoBackendError, UnsupportedProblemError
from .explain import explain
from .gemm import gemm, gemm_fp4
from .hookspecs import hookimpl, hookspec
from .layouts import LINEAR, SWIZZLED
from .logs import configure_from_env as _configure_logging
from .problem import GemmProblem
from .quantize import dequantize, dequantize_ref, quantize, quantize_ref
from .reference import gemm_ref
from .registry import backends, plugin_errors, quantizers, register_backend, unregister_backend
from .tensor import NVFP4Tensor
from .tuning import autotune

_configure_logging()

__all__ = [
    "LINEAR", "SWIZZLED", "Availability", "Backend", "BackendUnavailableError", "DefaultTactic", "GemmProblem",
    "NVFP4Tensor", "NoBackendError", "Quantizer", "UnsupportedProblemError", "__version__", "autotune",
    "backends", "dequantize", "dequantize_ref", "explain", "gemm", "gemm_fp4", "gemm_ref", "hookimpl", "hookspec",
    "load_modelopt", "nn", "plugin_errors", "quantize", "quantize_ref", "quantizers", "register_backend",
    "save_modelopt", "unregister_backend",
]
