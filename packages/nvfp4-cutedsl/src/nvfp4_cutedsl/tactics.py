"""Ways to run the sm_90a kernel: ``Sm90Tactic`` and the one function that says which are valid.

Pure Python (no DSL import): the CPU tests and the tuner use it anywhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from nvfp4.problem import GemmProblem

#: K elements per pipeline stage by default: 4 wgmma K-steps of 16, i.e. 4 NVFP4 scale blocks.
TILE_K = 64
#: K tiles the register-sourced kernel can run (``Sm90Tactic.tile_k``); the shared-memory kernel's dequantizer
#: covers 64 K a pass, so it runs TILE_K only.
WEIGHT_REGS_TILE_KS = (64, 128)
#: Usable shared memory per CTA on sm_90 (227 KiB) less a reserve for barriers.
SMEM_BUDGET = 227 * 1024 - 2048
#: Largest accumulator fragment per thread we allow (FP32 registers).
MAX_ACC_PER_THREAD = 128
#: act_fp16: the dequantize kernel indexes with 32-bit integers (its largest, the FP16 copy's words, is M*K/2).
ACT_FP16_MAX_VALUES = 1 << 31
#: The split-K epilogue indexes its FP32 partials with 32-bit offsets.
SPLIT_K_MAX_PARTIALS = 1 << 31
#: Row GEMV (``gemv_rows``): K values a warp covers a step (32 lanes x 32 consecutive values), and the most
#: steps a K slice may have (the CTA stages the slice's activations in shared memory: 48 KiB).
GEMV_STEP_K = 1024
GEMV_MAX_STEPS = 24
#: Weight rows a warp may own in the row GEMV (pairs: an MMA's top and bottom halves).
GEMV_ROWS = (2, 4, 6, 8)


@dataclass(frozen=True)
class Sm90Tactic:
    """One way to tile the NVFP4 GEMM on sm_90a.

    tile_w: weight rows (output columns N) per CTA.
    tile_x: activation rows (output rows M) per CTA.
    stages: TMA pipeline depth (packed weight + activation tiles of ``tile_k``).
    swap_ab: True puts the weight on the wgmma M side (A operand) and the
        activation on its N side, i.e. computes ``out^T = W @ X^T``: the choice for
        small M, where the activation tile can be as narrow as 8 rows.
        False computes ``out = X @ W^T`` with the activation as A (large M).
    split_k: K is cut into this many slices, each CTA of a slice adds its FP32
        partial sums into a workspace and the last one to finish applies the
        epilogue. Gives small-M problems enough CTAs to fill the GPU.
    weight_regs: the weight as the register-sourced wgmma A operand
        (``kernels/gemm_sm90_rs.py``): each thread decodes its own fragment, no
        dequantized copy in shared memory and no CTA barrier per K tile; a
        producer warp (a warpgroup when tile_x > 128) issues the TMA loads.
        Weight-only (W4A4 runs it through ``act_fp16``), ``swap_ab`` only.
        False: the dequantized weight goes through shared memory (``gemm_sm90.py``).
    tile_k: K elements per pipeline stage (64 or 128; 128 only with ``weight_regs``). A 128-wide stage halves
        the barrier waits, releases and TMA issues per weight byte, and doubles the K a register set runs ahead
        of the wgmmas; it needs twice the shared memory a stage.
    act_fp16: W4A4 only. Dequantize the NVFP4 activation to FP16 first (``kernels/dequantize_sm90.py``,
        one pass, exact: E2M1 x E4M3 has at most 6 significant bits), then run the FP16 weight-only kernel
        of the other fields, with the activation's global scale in alpha. Costs a second launch and the
        FP16 copy's bytes; the W4A4 shared-memory kernel decodes the activation tile in every CTA instead.
    gemv_rows: 0, or the M = 1 row GEMV (``kernels/gemv_sm90.py``) with this many weight rows a warp: each lane
        streams 16 consecutive bytes of each of its rows a 1024-wide K step into registers, ``mma.sync`` on the
        diagonal. ``tile_w`` is then the CTA's rows (``tile_w / gemv_rows`` warps), ``tile_x`` 1, ``stages`` the
        steps a lane has in flight; ``swap_ab``, ``weight_regs`` and ``tile_k`` do not apply.
    """

    tile_w: int = 64
    tile_x: int = 16
    stages: int = 6
    swap_ab: bool = True
    split_k: int = 1
    weight_regs: bool = False
    act_fp16: bool = False
    tile_k: int = TILE_K
    gemv_rows: int = 0

    # -- derived shapes --------------------------------------------------------------------------
    @property
    def mma_tile(self) -> tuple[int, int]:
        """(wgmma M, wgmma N) of the CTA tile."""
        return (self.tile_w, self.tile_x) if self.swap_ab else (self.tile_x, self.tile_w)

    @property
    def producer_warps(self) -> int:
        """weight_regs: one producer warp, or a producer warpgroup (whose registers the consumers take)
        when the accumulator is wide (tile_x > 128). 0: the consumers issue the TMA loads themselves."""
        if not self.weight_regs or self.gemv_rows:
            return 0
        return 4 if self.tile_x > 128 else 1

    @property
    def threads(self) -> int:
        """One warpgroup of 128 threads per 64 rows of wgmma M, plus the producer warps (the row GEMV: a warp
        per ``gemv_rows`` rows)."""
        if self.gemv_rows:
            return 32 * (self.tile_w // self.gemv_rows)
        return 128 * (self.mma_tile[0] // 64) + 32 * self.producer_warps

    def smem_bytes(self, a_format: str) -> int:
        if self.gemv_rows:  # the staged activation slice
            return GEMV_MAX_STEPS * GEMV_STEP_K * 2 + 16
        if self.weight_regs:  # the ring only: packed weight + BF16/FP16 activation tiles
            return self.stages * (self.tile_w * self.tile_k // 2 + self.tile_x * self.tile_k * 2) + 2048
        w4a4 = a_format == "nvfp4"
        x_stage = self.tile_x * TILE_K // 2 if w4a4 else self.tile_x * TILE_K * 2
        per_stage = self.tile_w * TILE_K // 2 + x_stage
        dequant = 2 * self.tile_w * TILE_K * 2 + (2 * self.tile_x * TILE_K * 2 if w4a4 else 0)
        return self.stages * per_stage + dequant + 1024


def tactic_problem(tactic: Sm90Tactic, problem: GemmProblem) -> str | None:
    """None when ``tactic`` can run ``problem``, else the reason it cannot."""
    t = tactic
    if t.act_fp16:
        if problem.a_format != "nvfp4":
            return f"act_fp16 dequantizes an NVFP4 activation; this problem's a_format is {problem.a_format!r}"
        if problem.m * problem.k >= ACT_FP16_MAX_VALUES:
            return (f"act_fp16 indexes the FP16 copy with 32-bit offsets: M*K must be below "
                    f"{ACT_FP16_MAX_VALUES}, got {problem.m * problem.k}")
        problem = dataclasses.replace(problem, a_format="fp16")  # the GEMM that follows the dequantize
    if t.gemv_rows:
        return _gemv_problem(t, problem)
    mma_m, mma_n = t.mma_tile
    if mma_m not in (64, 128):
        return f"wgmma tile M (tile_{'w' if t.swap_ab else 'x'}) must be 64 or 128, got {mma_m}"
    if mma_n % 8 or not 8 <= mma_n <= 256:
        return f"wgmma tile N must be a multiple of 8 in [8, 256], got {mma_n}"
    if t.tile_k not in (WEIGHT_REGS_TILE_KS if t.weight_regs else (TILE_K,)):
        return (f"tile_k must be one of {WEIGHT_REGS_TILE_KS} with weight_regs and {TILE_K} without "
                f"(the shared-memory dequantizer covers {TILE_K} K a pass), got {t.tile_k}")
    if t.weight_regs:
        reason = _weight_regs_problem(t, problem)
        if reason:
            return reason
    else:
        reason = _smem_dequant_problem(t, problem)
        if reason:
            return reason
    if t.smem_bytes(problem.a_format) > SMEM_BUDGET:
        return f"needs {t.smem_bytes(problem.a_format)} bytes of shared memory, more than {SMEM_BUDGET}"
    acc_per_thread = mma_m * mma_n // (128 * (mma_m // 64))
    if acc_per_thread > MAX_ACC_PER_THREAD:
        return f"accumulator of {acc_per_thread} FP32 per thread exceeds {MAX_ACC_PER_THREAD}"
    if t.split_k < 1:
        return f"split_k must be >= 1, got {t.split_k}"
    k_tiles = -(-problem.k // t.tile_k)
    per_slice = -(-k_tiles // t.split_k)
    if t.split_k > 1 and (k_tiles < 2 * t.split_k or (t.split_k - 1) * per_slice >= k_tiles):
        return (f"split_k {t.split_k} leaves a K slice with fewer than 2 (or no) K tiles of {t.tile_k} "
                f"(K={problem.k})")
    if t.split_k > 1 and split_k_partials(t, problem.m, problem.n) >= SPLIT_K_MAX_PARTIALS:
        return (f"split_k {t.split_k} needs {split_k_partials(t, problem.m, problem.n)} FP32 partials, more "
                f"than the epilogue's 32-bit offsets reach ({SPLIT_K_MAX_PARTIALS})")
    return None


def gemv_slice_steps(k: int, split_k: int) -> int:
    """1024-wide steps of the row GEMV's longest K slice (slices are whole 32-value segments)."""
    per_split = -(-(k // 32) // split_k)
    return -(-per_split * 32 // GEMV_STEP_K)


def _gemv_problem(t: Sm90Tactic, problem: GemmProblem) -> str | None:
    if problem.m != 1:
        return f"the row GEMV (gemv_rows) runs M = 1 only, got M={problem.m}"
    if problem.a_format not in ("bf16", "fp16"):
        return (f"the row GEMV is weight-only (bf16/fp16 activations), got a_format {problem.a_format!r}; "
                "W4A4 runs it through act_fp16")
    if t.gemv_rows not in GEMV_ROWS:
        return f"gemv_rows must be one of {GEMV_ROWS}, got {t.gemv_rows}"
    if t.tile_w % t.gemv_rows or not 1 <= t.tile_w // t.gemv_rows <= 32:
        return f"tile_w must be gemv_rows ({t.gemv_rows}) times 1 to 32 warps, got {t.tile_w}"
    if t.tile_x != 1:
        return f"the row GEMV's tile_x is 1 (M = 1), got {t.tile_x}"
    if not 1 <= t.stages <= 4:
        return f"the row GEMV keeps 1 to 4 steps in flight (stages), got {t.stages}"
    if problem.k % 32:
        return f"the row GEMV needs K % 32 == 0 (whole 32-value segments), got K={problem.k}"
    segs = problem.k // 32
    if t.split_k < 1 or (t.split_k > 1 and (t.split_k - 1) * -(-segs // t.split_k) >= segs):
        return f"split_k {t.split_k} leaves an empty K slice (K={problem.k}: {segs} segments of 32)"
    if gemv_slice_steps(problem.k, t.split_k) > GEMV_MAX_STEPS:
        return (f"a K slice of {gemv_slice_steps(problem.k, t.split_k)} steps of {GEMV_STEP_K} exceeds the "
                f"{GEMV_MAX_STEPS} whose activations the CTA stages: raise split_k")
    if t.split_k > 1 and split_k_partials(t, problem.m, problem.n) >= SPLIT_K_MAX_PARTIALS:
        return f"split_k {t.split_k} needs more FP32 partials than 32-bit offsets reach"
    return None


def split_k_partials(t: Sm90Tactic, m: int, n: int) -> int:
    """FP32 partials a split-K launch stores: one whole CTA tile per output tile and K slice."""
    return -(-n // t.tile_w) * -(-m // t.tile_x) * t.split_k * t.tile_w * t.tile_x


def _weight_regs_problem(t: Sm90Tactic, problem: GemmProblem) -> str | None:
    if not t.swap_ab:
        return "weight_regs needs swap_ab=True (the weight is the wgmma A operand, the one read from registers)"
    if problem.a_format not in ("bf16", "fp16"):
        return (f"weight_regs is weight-only (bf16/fp16 activations), got a_format {problem.a_format!r}: "
                "W4A4 activations need dequantizing into shared memory, use weight_regs=False")
    if t.stages < 2:
        return f"stages must be >= 2, got {t.stages}"
    return None


def _smem_dequant_problem(t: Sm90Tactic, problem: GemmProblem) -> str | None:
    rows_per_pass = t.threads // 8  # the dequantizer covers rows_per_pass rows x 64 K per pass
    if t.tile_w % rows_per_pass:
        return f"tile_w {t.tile_w} must be a multiple of {rows_per_pass} (threads/8) for the dequantizer"
    if problem.a_format == "nvfp4" and t.tile_x % rows_per_pass:
        return f"W4A4 needs tile_x {t.tile_x} to be a multiple of {rows_per_pass} (threads/8)"
    if t.stages < 3:
        # the loop dequantizes tile i+1 before refilling the stage tile i-1 freed: 2 stages would wait forever
        return f"stages must be >= 3, got {t.stages}"
    return None
