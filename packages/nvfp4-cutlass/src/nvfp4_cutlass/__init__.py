"""nvfp4-cutlass: sm_90a (Hopper) NVFP4 GEMM and quantize kernels for the ``nvfp4`` core.

Importing this package never touches the GPU and never fails for want of a GPU, a driver or the compiled
module; ``CutlassBackend().availability()`` says why it cannot run.
"""

from .backend import CutlassBackend
from .quantizer import CutlassQuantizer
from .tactics import CutlassTactic, valid_tactics

__all__ = ["CutlassBackend", "CutlassQuantizer", "CutlassTactic", "valid_tactics"]
__version__ = "0.1.0"
