"""The oracle every contender's output is checked against before it is timed.

Two checks on the same inputs the timing uses:

* sampled rows (all rows up to ``max_rows``, else a random ``max_rows`` of them
  including the first and last) against the float64 reference
  (``gemm_ref_f64``), element by element, within the conformance suite's
  rigorous bound (``nvfp4.testing.error_bound``);
* every row against the BF16 baseline's output (relative L2 error of each row
  under ``baseline_rtol``): catches a wrong tile in rows the sample missed.

The output is poisoned with NaN before the run, so unwritten elements fail.
Computing the float64 reference for every row of an 8192 x 57344 output would
cost more than the whole sweep; the two checks together cost milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..layouts import LINEAR
from ..reference import gemm_ref_f64
from ..tensor import NVFP4Tensor
from ..testing.numerics import error_bound

#: Relative L2 error of one row against the BF16 baseline. Both sides carry
#: about 2**-9 relative rounding (bf16 weights and outputs): a few 1e-3 is
#: normal, a wrong tile is of order 1.
BASELINE_RTOL = 2e-2
CHUNK_ROWS = 1024


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str
    #: max |out - ref| / bound over the sampled rows (<= 1 passes).
    worst_vs_bound: float | None = None
    #: max over rows of the relative L2 error against the BF16 baseline.
    worst_row_vs_bf16: float | None = None

    def to_json(self) -> dict:
        return {"ok": self.ok, "message": self.message, "worst_vs_bound": self.worst_vs_bound,
                "worst_row_vs_bf16": self.worst_row_vs_bf16}


def rows_of(a, rows: torch.Tensor):
    """Rows ``rows`` of a dense activation or of an NVFP4 one (read through its linear scales)."""
    if isinstance(a, NVFP4Tensor):
        lin = a.to_layout(LINEAR)
        # Gather the E4M3 scales as bytes: indexing float8 tensors is not implemented everywhere.
        scale = lin.scale.view(torch.uint8)[rows].view(lin.scale.dtype)
        return NVFP4Tensor(lin.data[rows], scale, lin.global_scale, LINEAR, (len(rows), a.shape[1]))
    return a[rows]


class Oracle:
    """The float64 reference of some rows and the BF16 baseline output of all rows, for one problem."""

    def __init__(self, a, b: NVFP4Tensor, baseline_out: torch.Tensor | None, *, bias=None, out_dtype=torch.bfloat16,
                 max_rows: int = 256, seed: int = 0, baseline_rtol: float = BASELINE_RTOL):
        m = a.shape[0]
        dev = b.device
        if m <= max_rows:
            rows = torch.arange(m, device=dev)
        else:
            gen = torch.Generator(device="cpu").manual_seed(seed)
            inner = torch.randperm(m - 2, generator=gen)[: max_rows - 2] + 1
            rows = torch.cat([torch.tensor([0, m - 1]), inner]).sort().values.to(dev)
        self.rows = rows
        a_rows = rows_of(a, rows)
        self.ref = gemm_ref_f64(a_rows, b, bias)
        self.bound = error_bound(a_rows, b, bias, out_dtype)
        self.baseline = baseline_out
        self.baseline_rtol = baseline_rtol

    def check(self, out: torch.Tensor) -> CheckResult:
        if not bool(torch.isfinite(out).all()):
            bad = (~torch.isfinite(out)).nonzero()[:3].tolist()
            return CheckResult(False, f"non-finite output (unwritten or overflowed) at {bad}")
        sampled = out[self.rows].double()
        err = (sampled - self.ref).abs()
        ratio = float((err / self.bound).max())
        worst_row = self._worst_row_vs_baseline(out)
        if ratio > 1.0:
            idx = int(torch.argmax((err - self.bound).flatten()))
            r, c = divmod(idx, out.shape[1])
            row = int(self.rows[r])
            return CheckResult(False, f"off the float64 reference at ({row}, {c}): got {float(sampled[r, c]):.6g}, "
                               f"reference {float(self.ref[r, c]):.6g}, error {ratio:.3g}x the bound",
                               ratio, worst_row)
        if worst_row > self.baseline_rtol:
            return CheckResult(False, f"a row is {worst_row:.3g} off the BF16 baseline (relative L2; allowed "
                               f"{self.baseline_rtol:g}) though the sampled rows match the reference",
                               ratio, worst_row)
        return CheckResult(True, "ok", ratio, worst_row)

    def _worst_row_vs_baseline(self, out: torch.Tensor) -> float:
        if self.baseline is None:  # the BF16 baseline itself failed: the sampled rows are all we check
            return 0.0
        worst = 0.0
        for start in range(0, out.shape[0], CHUNK_ROWS):
            o = out[start:start + CHUNK_ROWS].float()
            base = self.baseline[start:start + CHUNK_ROWS].float()
            rel = (o - base).norm(dim=1) / base.norm(dim=1).clamp_min(1e-30)
            worst = max(worst, float(rel.max()))
        return worst
