"""``nvfp4-cutedsl``: an NVFP4 GEMM backend written in CuTe DSL.

Importing this package never imports the DSL or touches a GPU; the DSL is
loaded on the first compile. ``CuteDslBackend().availability()`` says whether
it can run here and why not.
"""

from .backend import CuteDslBackend
from .tactics import Sm90Tactic, tactic_problem

__all__ = ["CuteDslBackend", "Sm90Tactic", "tactic_problem"]
__version__ = "0.1.0"
