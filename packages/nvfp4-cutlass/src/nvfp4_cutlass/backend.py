"""``CutlassBackend``: the ``cutlass`` GEMM backend (sm_90a kernels of csrc/gemm_sm90.cu)."""

from __future__ import annotations

import torch

from nvfp4 import workspace
from nvfp4.backend import Availability, Backend
from nvfp4.problem import GemmProblem
from nvfp4.tensor import NVFP4Tensor

from . import device, native
from .tactics import CutlassTactic, chunks_per_split, is_valid, valid_tactics

_ACT = {"bf16": 0, "fp16": 1, "nvfp4": 2}
_OUT = {torch.bfloat16: 0, torch.float16: 1, torch.float32: 2}
_INT32_MAX = 2**31 - 1


def _aligned16(t: torch.Tensor) -> torch.Tensor:
    """The kernels load 16 bytes at a time; a tensor view at an odd offset is copied to a fresh allocation."""
    return t if t.data_ptr() % 16 == 0 else t.clone()


class CutlassBackend(Backend):
    name = "cutlass"
    priority = 50

    def heuristic_priority(self, problem: GemmProblem) -> int:
        # Without measurements (H100, benchmarks/results/): first up to M = 256, where the mma.sync decode
        # kernels and the wgmma kernel win most points; last above, where cuBLASLt's BF16 GEMM does.
        return self.priority if problem.m <= 256 else 0

    def availability(self) -> Availability:
        return device.availability()

    def supports(self, problem: GemmProblem) -> str | None:
        if problem.a_format == "fp32":
            return ("fp32 activations are not supported: the BF16/FP16 tensor cores would round them, and this "
                    "backend computes exactly; cast a to bf16/fp16 or use another backend")
        if problem.a_format not in _ACT:
            return f"a_format {problem.a_format!r} is not one of {sorted(_ACT)}"
        if problem.out_dtype not in _OUT:
            return f"out_dtype {problem.out_dtype} is not bf16, fp16 or fp32"
        if problem.k % 16:
            return f"K={problem.k} is not a multiple of 16"
        if max(problem.m, problem.n, problem.k) > _INT32_MAX // 2:
            return "M, N and K must each be below 2^30 (32-bit indices in the kernels)"
        return device.device_reason(problem.device)

    def tactics(self, problem: GemmProblem):
        return valid_tactics(problem, sm_count=device.device_sms(problem.device))

    def run(self, problem: GemmProblem, tactic, a, b: NVFP4Tensor, *, bias, out) -> None:
        if problem.device.index is not None and problem.device.index != torch.cuda.current_device():
            with torch.cuda.device(problem.device):  # the launch goes to the current device
                return self.run(problem, tactic, a, b, bias=bias, out=out)
        if not isinstance(tactic, CutlassTactic):  # a foreign tactic is a caller's bug: never substitute one
            raise TypeError(f"cutlass: tactic must be a CutlassTactic, got {tactic!r}")
        reason = is_valid(problem, tactic)
        if reason is not None:
            raise ValueError(f"cutlass: {reason}")
        mod = native.module()
        swizzled = b.layout == "swizzled"
        # Locals keep any realigned copy alive until the launch is queued (the allocator may otherwise hand
        # its memory to the workspace below).
        b_data = _aligned16(b.data)
        # TMA reads the scales from 16-byte boundaries, the row GEMV 2 bytes at a time
        b_scale = _aligned16(b.scale) if tactic.tma_m1 or tactic.gemv else b.scale
        stream = torch.cuda.current_stream(problem.device).cuda_stream
        m, n, k = problem.m, problem.n, problem.k
        act = _ACT[problem.a_format]
        if isinstance(a, NVFP4Tensor):
            if a.layout != b.layout:
                raise ValueError(f"a.layout ({a.layout!r}) and b.layout ({b.layout!r}) must match")
            a_data = _aligned16(a.data)
            a_scale, a_gs = a.scale.data_ptr(), a.global_scale.data_ptr()
            if tactic.act_fp16:  # exact FP16 products of E2M1 and E4M3; a's global scale stays in alpha
                a_fp16 = torch.empty((m, k), dtype=torch.float16, device=problem.device)
                mod.dequantize_fp16(a_data.data_ptr(), a_scale, a_fp16.data_ptr(), m, k, swizzled, stream)
                a_data, a_scale, act = a_fp16, 0, _ACT["fp16"]
        else:
            a_data = _aligned16(a)
            a_scale = a_gs = 0
        partials = counters = 0
        if tactic.split_k > 1:
            tiles = -(-n // tactic.tile_n) * -(-m // tactic.tile_m)
            part, cnt = workspace.split_k(problem.device, stream, "cutlass", tactic.split_k * m * n, tiles)
            partials, counters = part.data_ptr(), cnt.data_ptr()
        mod.gemm(b_data.data_ptr(), b_scale.data_ptr(), b.global_scale.data_ptr(), a_data.data_ptr(), a_scale, a_gs,
                 0 if bias is None else bias.data_ptr(), out.data_ptr(), partials, counters, m, n, k,
                 act, swizzled, _OUT[problem.out_dtype], tactic.tile_m, tactic.warps,
                 tactic.unroll, tactic.stages, tactic.kernel, tactic.warp_rows, tactic.split_k,
                 chunks_per_split(k, tactic.split_k),
                 stream)
