"""The contract a backend plugin implements: ``Backend``, ``Availability``, ``Quantizer``.

A backend answers four questions the core asks (see ``docs/plugins.md``):
can you run here (``availability``), can you run this problem (``supports``),
which ways of running it are there (``tactics``), and run it (``run``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .problem import GemmProblem
from .tensor import NVFP4Tensor

#: A tactic is a frozen dataclass or a JSON-serialisable value (hashable).
Tactic = Hashable


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class DefaultTactic:
    """The tactic of a backend that has only one way to run."""


class Backend:
    """Base class of every GEMM backend.

    Subclasses set ``name`` and implement ``run``; the rest have defaults.
    ``run`` receives contiguous operands on the problem's device: ``a`` an
    ``NVFP4Tensor`` (W4A4) or a dense tensor (weight-only), ``b`` an
    ``NVFP4Tensor`` with the same scale layout, ``bias`` None or a contiguous
    ``[N]`` tensor of ``problem.out_dtype``, and ``out`` a contiguous ``[M, N]``
    tensor of ``problem.out_dtype`` to overwrite. It launches on the current
    CUDA stream, must not synchronise the device or read the global scales on
    the host (CUDA graphs capture it), and applies ``alpha`` to the FP32
    accumulator before bias and the cast to the output dtype.
    """

    name: str = ""
    #: A backend that is only a last resort (the reference) sets this: ``auto``
    #: profiles it only when no other backend supports the problem.
    fallback_only: bool = False
    #: Orders backends for the heuristic choice, used only when nothing was
    #: measured and measuring is not allowed (CUDA graph capture, budget spent).
    priority: int = 0

    def availability(self) -> Availability:
        return Availability(True)

    def supports(self, problem: GemmProblem) -> str | None:
        """None when the problem is supported, else the reason it is not.

        Decisions are made per M bucket (the next power of two): a backend that
        supports a bucket's M must support every M in that bucket.
        """
        return None

    def tactics(self, problem: GemmProblem) -> Sequence[Tactic]:
        """Every valid tactic for the problem, at least one; the first is the heuristic pick."""
        return (DefaultTactic(),)

    def heuristic_priority(self, problem: GemmProblem) -> int:
        """Rank for the heuristic choice (higher first); override to depend on the problem."""
        return self.priority

    def heuristic_tactic(self, problem: GemmProblem) -> Tactic:
        """The tactic used when nothing was profiled and profiling is not allowed (CUDA graph capture)."""
        return self.tactics(problem)[0]

    def run(self, problem: GemmProblem, tactic: Tactic, a: NVFP4Tensor | torch.Tensor, b: NVFP4Tensor,
            *, bias: torch.Tensor | None, out: torch.Tensor) -> None:
        raise NotImplementedError(f"backend {self.name!r} does not implement run()")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class Quantizer:
    """A fast ``quantize`` a plugin offers; it must give ``quantize_ref``'s bytes exactly."""

    name: str = ""
    #: Higher wins when several quantizers support an input.
    priority: int = 0

    def availability(self) -> Availability:
        return Availability(True)

    def supports(self, x: torch.Tensor, layout: str) -> str | None:
        return None

    def quantize(self, x: torch.Tensor, global_scale: torch.Tensor, layout: str) -> NVFP4Tensor:
        """``x`` 2-D contiguous float, ``global_scale`` a float32 0-d tensor on x's device."""
        raise NotImplementedError


def describe_tactic(tactic: Any) -> str:
    """A short human-readable form of a tactic, for tables and logs."""
    if tactic is None:
        return "-"
    if isinstance(tactic, DefaultTactic):
        return "default"
    import dataclasses

    if dataclasses.is_dataclass(tactic):
        fields = ", ".join(f"{f.name}={getattr(tactic, f.name)}" for f in dataclasses.fields(tactic))
        return f"{type(tactic).__name__}({fields})"
    return repr(tactic)
