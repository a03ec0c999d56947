"""The ``cutedsl`` backend: availability, supported problems, tactic candidates, dispatch.

Kernels live in ``kernels/`` (one module per architecture), tactics in
``tactics.py``; compilation and launching in ``runner.py``. Nothing here
imports the DSL at module import time.
"""

from __future__ import annotations

import dataclasses
import functools

import torch

from nvfp4.backend import Availability, Backend
from nvfp4.problem import GemmProblem
from nvfp4.tensor import NVFP4Tensor

from .tactics import GEMV_MAX_STEPS, TILE_K, Sm90Tactic, gemv_slice_steps, tactic_problem

#: Number of SMs of an H100 SXM; only used to size split-K when the device is not queried.
_DEFAULT_SMS = 132


@functools.cache
def _dsl_import_error() -> str | None:
    try:
        import cuda.bindings.driver  # noqa: F401
        import cutlass  # noqa: F401
        import cutlass.cute  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install raising anything else
        return f"CuTe DSL is not importable ({type(exc).__name__}: {exc}); pip install nvidia-cutlass-dsl"
    return None


def availability_reason() -> str | None:
    """None when the backend can run on this machine, else why not."""
    err = _dsl_import_error()
    if err:
        return err
    if not torch.cuda.is_available():
        return "no CUDA GPU visible to torch"
    major, minor = torch.cuda.get_device_capability()
    if (major, minor) != (9, 0):
        name = torch.cuda.get_device_name()
        return (f"needs compute capability 9.0 (Hopper, sm_90a); {name} is {major}.{minor} "
                "(the sm_100 native block-scaled path is not written)")
    return None


@functools.cache
def _sm_count(index: int) -> int:
    try:
        return torch.cuda.get_device_properties(index).multi_processor_count
    except Exception:
        return _DEFAULT_SMS


def _sms(problem: GemmProblem) -> int:
    return _sm_count(problem.device.index or 0) if problem.device.type == "cuda" else _DEFAULT_SMS


#: Resident warps an SM the row GEMV's split aims for.
GEMV_TARGET_WARPS_PER_SM = 16


def _split_for(problem: GemmProblem, tile_w: int, tile_x: int, tile_k: int = TILE_K) -> int:
    """Split K until the grid covers the GPU about twice (small M leaves too few CTAs otherwise)."""
    sms = _sms(problem)
    ctas = -(-problem.n // tile_w) * -(-problem.m // tile_x)
    k_tiles = -(-problem.k // tile_k)
    split = 1
    while ctas * split < 2 * sms and split < 16 and k_tiles >= 4 * split * 2:
        split *= 2
    return split


def _gemv_split(problem: GemmProblem, rows_per_cta: int, warps: int) -> int:
    """The row GEMV's split: about 16 resident warps an SM (the cutlass backend's heuristic for the same kernel),
    at least 512 K a slice, raised until a slice's activations fit the staged buffer."""
    ctas = -(-problem.n // rows_per_cta)
    segs = max(1, problem.k // 32)
    return _gemv_fitting(problem.k, min(round(_sms(problem) * GEMV_TARGET_WARPS_PER_SM / (ctas * warps)),
                                        max(1, segs // 16)))


def _gemv_fitting(k: int, split: int) -> int:
    """``split`` raised until a K slice's activations fit the GEMV's staged buffer, then lowered to the first
    split without an empty slice."""
    segs = max(1, k // 32)
    split = max(1, min(split, segs))
    while gemv_slice_steps(k, split) > GEMV_MAX_STEPS and split < segs:
        split += 1
    while split > 1 and (split - 1) * -(-segs // split) >= segs:
        split -= 1
    return split


def candidate_tactics(problem: GemmProblem) -> list[Sm90Tactic]:
    """Tactics worth profiling for the problem's M bucket, the heuristic pick first (unfiltered)."""
    m = problem.m
    w4a4 = problem.a_format == "nvfp4"
    # Few candidates per bucket: each costs a compile per format/layout when profiled.
    out: list[Sm90Tactic] = []
    # Weight-only: the register-sourced kernel (weight_regs) first, it measured fastest on the H200 at every
    # M (README); the shared-memory kernel stays a candidate (and is the only one that reads a W4A4 activation
    # as NVFP4; the act_fp16 tactics dequantize it first).
    if m <= 16:
        tx = 16 if (w4a4 or m > 8) else 8
        rx = 16 if m > 8 else 8  # the register-sourced kernel reads an FP16/BF16 activation tile
        sk = _split_for(problem, 64, rx)
        regs = [Sm90Tactic(64, rx, 8, True, sk, weight_regs=True),
                Sm90Tactic(64, rx, 4, True, min(2 * sk, 16), weight_regs=True)]
        out += [Sm90Tactic(64, tx, 8, True, sk),
                Sm90Tactic(128, 32 if w4a4 else tx, 6, True, _split_for(problem, 128, 32 if w4a4 else tx))]
    elif m <= 64:
        # One consumer warpgroup (64 weight rows) per CTA: 128 registers, three CTAs an SM; the two-warpgroup
        # CTA (154 registers) runs one an SM. Measured on the H200 (README): 8192x8192 M = 64 62.0 -> 46.9 us.
        sk = _split_for(problem, 64, 64)
        # 128-wide K stages at a quarter and half the split (H200, 2026-12-01, probe of every split):
        # 8192x8192 47.0 -> 44.6 us, 6144x4096 30.3 -> 25.1 (the old candidates' splits were too deep there);
        # 57344x8192 199.7 -> 204.8, which the 64-wide one keeps. At M <= 16 they lost by 5-20%.
        sk_wide_k = _split_for(problem, 64, 64, 128)
        regs = [Sm90Tactic(64, 64, 6, True, max(1, sk // 2), weight_regs=True),
                Sm90Tactic(64, 64, 6, True, sk, weight_regs=True),
                Sm90Tactic(64, 64, 4, True, max(1, sk_wide_k // 4), weight_regs=True, tile_k=128),
                Sm90Tactic(64, 64, 4, True, max(1, sk_wide_k // 2), weight_regs=True, tile_k=128)]
        sk128 = _split_for(problem, 128, 64)
        out += [Sm90Tactic(128, 64, 6, True, sk128),
                Sm90Tactic(128, 64, 6, True, max(1, sk128 // 2)),  # W4A4 8192x8192: 64.0 -> 58.0 us
                Sm90Tactic(64, 64, 6, True, sk)]
    elif m <= 256:
        # The activation tile as wide as M, so each weight tile is decoded once (not once per 128 rows of M).
        tx = 256 if m > 128 else 128
        regs = [Sm90Tactic(64, tx, 5, True, 1, weight_regs=True),
                Sm90Tactic(64, tx, 4, True, 1, weight_regs=True),
                Sm90Tactic(128, tx, 5 if tx == 256 else 6, True, 1, weight_regs=True)]
        if -(-problem.n // 64) * -(-m // tx) < _sms(problem):
            # Fewer 64-row CTAs than SMs: half-wide activation tiles double the grid, at one more decode of
            # each weight tile (H200, 2026-12-01: 4096x14336 M = 256 99.1 -> 82.9 us, M = 128 81.7 -> 66.2 at
            # split 2; they lost on 8192x8192 and 6144x4096, which get them too: the tuner decides).
            regs += [Sm90Tactic(64, tx // 2, 5, True, 1, weight_regs=True),
                     Sm90Tactic(64, tx // 2, 5, True, 2, weight_regs=True)]
        out += [Sm90Tactic(128, 128, 5, True, 1),
                Sm90Tactic(128, 128, 5, True, _split_for(problem, 128, 128))]
    else:
        regs = [Sm90Tactic(128, 256, 5, True, 1, weight_regs=True),
                Sm90Tactic(128, 256, 4, True, 1, weight_regs=True),
                Sm90Tactic(64, 256, 5, True, 1, weight_regs=True)]
        out += [Sm90Tactic(128, 256, 5, True, 1),
                Sm90Tactic(256, 128, 4, False, 1)]
    if m == 1:
        # The row GEMV (kernels/gemv_sm90.py): (rows a warp, warps, steps in flight) as the cutlass backend's
        # M = 1 candidates of the same kernel, each at the heuristic split and (the first) half and twice it.
        gemv = []
        for rows, warps, ahead in ((4, 8, 1), (4, 8, 2), (2, 8, 2), (4, 4, 1)):
            sk = _gemv_split(problem, rows * warps, warps)
            splits = (sk, _gemv_fitting(problem.k, sk // 2), _gemv_fitting(problem.k, 2 * sk)) if not gemv else (sk,)
            gemv += [Sm90Tactic(rows * warps, 1, ahead, True, s, gemv_rows=rows) for s in splits]
        regs = gemv + regs
    if not w4a4:
        out = regs + out
    else:
        # W4A4: the activation dequantized to FP16 once, then the register-sourced FP16 kernel (act_fp16), first;
        # the shared-memory kernel that decodes both operands in every CTA after it.
        out = [dataclasses.replace(t, act_fp16=True) for t in regs] + [t for t in out if not t.weight_regs]
    seen: list[Sm90Tactic] = []
    for t in out:
        if t not in seen:
            seen.append(t)
    return seen


@functools.lru_cache(maxsize=4096)
def _tactic_reason(tactic: Sm90Tactic, problem: GemmProblem) -> str | None:
    return tactic_problem(tactic, problem)


class CuteDslBackend(Backend):
    """NVFP4 GEMM in CuTe DSL for Hopper: TMA, in-kernel dequantization, wgmma, FP32 accumulation."""

    name = "cutedsl"
    priority = 20

    def availability(self) -> Availability:
        reason = availability_reason()
        return Availability(reason is None, reason or "")

    def supports(self, problem: GemmProblem) -> str | None:
        if problem.device.type != "cuda":
            return f"runs on CUDA devices only, problem is on {problem.device}"
        if problem.a_format == "fp32":
            return ("fp32 activations are not supported: the kernel multiplies on BF16/FP16 tensor "
                    "cores and rounding fp32 inputs would not be exact; pass bf16 or fp16 activations")
        if problem.a_format not in ("bf16", "fp16", "nvfp4"):
            return f"a_format must be bf16, fp16 or nvfp4, got {problem.a_format!r}"
        if problem.k % 32:
            return (f"K must be a multiple of 32 (TMA needs a 16-byte row pitch for packed FP4 data), "
                    f"got K={problem.k}")
        if problem.out_dtype not in (torch.bfloat16, torch.float16, torch.float32):
            return f"out_dtype must be bfloat16, float16 or float32, got {problem.out_dtype}"
        if not self.tactics(problem):
            return "no valid tactic for this problem"
        return None

    def tactics(self, problem: GemmProblem):
        return tuple(t for t in candidate_tactics(problem) if tactic_problem(t, problem) is None)

    def run(self, problem: GemmProblem, tactic, a, b, *, bias, out) -> None:
        if not isinstance(tactic, Sm90Tactic):
            raise TypeError(f"tactic must be an Sm90Tactic, got {tactic!r}")
        reason = _tactic_reason(tactic, problem)
        if reason:
            raise ValueError(f"tactic {tactic} cannot run {problem.describe()}: {reason}")
        if not isinstance(b, NVFP4Tensor):
            raise TypeError(f"b must be an NVFP4Tensor, got {type(b).__name__}")
        w4a4 = problem.a_format == "nvfp4"
        if w4a4 != isinstance(a, NVFP4Tensor):
            raise TypeError(f"a must be {'an NVFP4Tensor' if w4a4 else 'a dense tensor'} for a_format "
                            f"{problem.a_format!r}, got {type(a).__name__}")
        if b.layout != problem.layout or (w4a4 and a.layout != problem.layout):
            raise ValueError(f"scale layouts must be {problem.layout!r}")
        x = a.data if w4a4 else a
        for name, tensor in (("a", x), ("b", b.data)):
            if tensor.data_ptr() % 16:
                raise ValueError(f"{name} data must be 16-byte aligned for TMA (data_ptr % 16 = "
                                 f"{tensor.data_ptr() % 16}); pass a fresh contiguous tensor")
        # The weight scales' pointer is compiled 2-byte aligned (runner._pointers): the register-sourced kernel
        # reads them two at a time. The activation scales (W4A4) are read a byte at a time.
        if b.scale.data_ptr() % 2:
            raise ValueError("b.scale must be 2-byte aligned (data_ptr % 2 = 1); pass a fresh contiguous "
                             "tensor, not a view starting at an odd byte")
        from . import runner  # imports the DSL

        runner.launch(tactic, a, b, bias, out, m=problem.m, n=problem.n, k=problem.k,
                      act=problem.a_format, layout=problem.layout)
