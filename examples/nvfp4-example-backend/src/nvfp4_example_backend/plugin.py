"""The plugin module the entry point names: it holds the hook implementations."""

from __future__ import annotations

from dataclasses import dataclass

import torch

import nvfp4
from nvfp4.quantize import dequantize_ref


@dataclass(frozen=True)
class Chunk:
    """Compute the output in column chunks of ``cols`` (bounds the float32 weight copy)."""

    cols: int


def valid_tactics(problem: nvfp4.GemmProblem) -> list[Chunk]:
    """The one place that says which tactics are valid: chunks no wider than N."""
    return [Chunk(c) for c in (256, 1024, 4096) if c <= max(problem.n, 256)]


class ExampleBackend(nvfp4.Backend):
    """Dequantizes to float32 (exact) and multiplies with TF32 off: correct anywhere torch runs."""

    name = "example"

    def availability(self) -> nvfp4.Availability:
        return nvfp4.Availability(True)

    def supports(self, problem: nvfp4.GemmProblem) -> str | None:
        if problem.device.type not in ("cpu", "cuda"):
            return f"runs on cpu and cuda, not {problem.device.type}"
        return None

    def tactics(self, problem):
        return valid_tactics(problem)

    def run(self, problem, tactic: Chunk, a, b, *, bias, out) -> None:
        if isinstance(a, nvfp4.NVFP4Tensor):
            da = _unit_dequant(a)
            alpha = a.global_scale * b.global_scale
        else:
            da = a.float()
            alpha = b.global_scale
        allow = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False  # products of exact values must stay exact
        try:
            for c0 in range(0, problem.n, tactic.cols):
                rows = slice(c0, min(problem.n, c0 + tactic.cols))
                wb = _unit_dequant(b, rows)
                acc = (da @ wb.T) * alpha
                if bias is not None:
                    acc += bias[rows].float()
                out[:, rows] = acc.to(out.dtype)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = allow


def _unit_dequant(t: nvfp4.NVFP4Tensor, rows: slice | None = None) -> torch.Tensor:
    """e2m1 * e4m3 in float32 (exact), without the global scale (alpha goes on the accumulator)."""
    one = torch.ones((), dtype=torch.float32, device=t.device)
    lin = t.linear_scale()
    if rows is not None:
        n = rows.stop - rows.start
        sub = nvfp4.NVFP4Tensor(t.data[rows], lin[rows], one, "linear", (n, t.shape[1]))
    else:
        sub = nvfp4.NVFP4Tensor(t.data, lin, one, "linear", t.shape)
    return dequantize_ref(sub, torch.float32)


@nvfp4.hookimpl
def nvfp4_register_backends():
    return [ExampleBackend()]
