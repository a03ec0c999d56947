"""``nvfp4.explain``: which backend and tactic a GEMM call runs, and why."""

from __future__ import annotations

import torch

from .gemm import AUTO, _check_operands
from .tuning import TUNER, Decision, ensure_env_cache


def explain(a, b, *, bias=None, out_dtype: torch.dtype = torch.bfloat16, backend: str = AUTO,
            out: torch.Tensor | None = None) -> Decision:
    """The decision ``nvfp4.gemm`` with the same arguments makes (profiling first if needed).

    ``str(decision)`` is a table: every candidate backend and tactic with its
    time, failure or the reason it was not a candidate.
    """
    problem = _check_operands(a, b, bias, out_dtype, out, backend)
    ensure_env_cache()
    return TUNER.explain(problem, backend)
