"""The ``cublaslt`` backend: availability, problem support, tactics, and ``run``.

Hopper path, per call on the caller's stream: dequantize the NVFP4 operands (both for W4A4, the weight
only for weight-only) into a workspace cached per (device, stream), computing alpha = a_gs * b_gs on
the device in the same kernel; then one cuBLASLt matmul reading alpha from device memory, adding the
bias in its epilogue and writing bf16/fp16/fp32. Pipelined tactics split N in chunks and dequantize
chunk i+1 on a side stream while chunk i multiplies.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import torch

from nvfp4 import workspace
from nvfp4.backend import Availability, Backend
from nvfp4.problem import GemmProblem

from . import _library
from .tactics import PATH_DEQUANT, PATH_FP4, CublasLtTactic, invalid_reason

log = logging.getLogger("nvfp4.cublaslt")

BF16, FP16, FP32 = 0, 1, 2
_CODES = {torch.bfloat16: BF16, torch.float16: FP16, torch.float32: FP32}
_DTYPES = {v: k for k, v in _CODES.items()}
_ELT = {BF16: 2, FP16: 2, FP32: 4}

#: cuBLASLt's own workspace (split-K partials, etc.): 32 MiB is what NVIDIA recommends on Hopper.
LT_WORKSPACE = 32 << 20
#: Name of the per-(device, stream) buffer: the dequantized operands, then cuBLASLt's workspace.
_WORKSPACE = "cublaslt.workspace"
#: How many of the heuristic's algorithms are offered as tactics.
HEURISTIC_COUNT = 8
#: ... and for the pipelined variant.
PIPELINED_COUNT = 4
#: Chunks of the pipelined variant, offered from this M on (where the GEMM is compute-bound and the
#: dequantization can hide under it).
PIPELINE_CHUNKS = 4
PIPELINE_MIN_M = 512
#: cuBLASLt's FP4 (CUDA_R_4F_E2M1, VEC16_UE4M3) arrived in 12.8.
FP4_MIN_VERSION = 120800


@dataclass(frozen=True)
class GemmTypes:
    ab: int  # dtype code of the dense GEMM's operands
    d: int  # dtype code of cuBLASLt's D (FP32 when scratch)
    scratch: bool  # D is an FP32 scratch; a cast kernel writes out (+ bias)


def gemm_types(problem: GemmProblem, path: str) -> GemmTypes:
    """Operand and output types of the cuBLASLt call for ``problem``.

    W4A4 dequantizes to FP16 when the output is FP16 (cuBLASLt has no BF16-in/FP16-out kernel), else BF16;
    both are exact. Weight-only keeps the activation's dtype: an FP32 activation runs an FP32 GEMM
    (CUBLAS_COMPUTE_32F without TF32: exact products). Where cuBLASLt cannot write the output dtype from
    those operands (and for the FP32 GEMM with a bias), D is FP32 and one cast kernel adds the bias and
    rounds once.
    """
    out = _CODES[problem.out_dtype]
    if path == PATH_FP4:
        return GemmTypes(BF16, out, False)
    if problem.a_format == "nvfp4":
        ab = FP16 if out == FP16 else BF16
    else:
        ab = {"bf16": BF16, "fp16": FP16, "fp32": FP32}[problem.a_format]
    if ab == FP32 and problem.has_bias:
        # The FP32 (SIMT) GEMM's bias epilogue is not relied on: the cast kernel adds the bias in FP32.
        return GemmTypes(ab, FP32, True)
    if out == ab and problem.has_bias and out != FP32 and (problem.n * 2) % 16:
        # Seen on the H100 (cuBLASLt 13.1, N = 130): with a 16-bit D whose rows are not 16-byte aligned,
        # the kernels cuBLASLt picks round to the output type before adding the bias (two roundings,
        # errors of an output ulp of the pre-bias value). An FP32 D and the cast kernel round once.
        return GemmTypes(ab, FP32, True)
    if out == ab or out == FP32:
        return GemmTypes(ab, out, False)
    return GemmTypes(ab, FP32, True)


def _alignment(ptr: int) -> int:
    """Largest power of two dividing ``ptr``, at most 256."""
    return 256 if ptr % 256 == 0 else ptr & -ptr


class _StreamState:
    """What one (device, stream) reuses across calls besides the workspace (``nvfp4.workspace``): the
    pipelining stream/events."""

    def __init__(self, device: int):
        self.device = device
        self.pipeline = None

    def pipe(self, chunks: int):
        if self.pipeline is None or self.pipeline.max_chunks < chunks:
            self.pipeline = _library._native.Pipeline(self.device, max(chunks, 8))
        return self.pipeline


class CublasLtBackend(Backend):
    name = "cublaslt"
    priority = 10

    def heuristic_priority(self, problem: GemmProblem) -> int:
        # The dequantize pass costs as much as a decode GEMM; at M >= 1024 it is hidden by the BF16
        # GEMM and this backend is the measured winner on the H100 (benchmarks/results/).
        return 30 if problem.m >= 1024 else self.priority

    def __init__(self):
        self._lock = threading.Lock()
        self._plans: dict = {}
        self._tactics: dict = {}
        self._states: dict = {}
        self._availability: Availability | None = None

    # -- can it run here ---------------------------------------------------------------------------
    def availability(self) -> Availability:
        if self._availability is None:
            self._availability = self._check_availability()
        return self._availability

    def _check_availability(self) -> Availability:
        native = _library._native
        if native is None:
            return Availability(False, f"native module nvfp4_cublaslt._native is missing: {_library.NATIVE_ERROR}")
        if not torch.version.cuda:
            return Availability(False, "no CUDA device: this torch build has no CUDA support")
        if not torch.cuda.is_available():
            probe = native.cuda_probe()
            return Availability(False, f"no CUDA device ({probe or 'torch.cuda.is_available() is False'})")
        caps = [torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())]
        usable = [i for i, c in enumerate(caps) if c >= (9, 0)]
        if not usable:
            found = ", ".join(f"{c[0]}.{c[1]}" for c in caps)
            return Availability(False, f"compute capability below 9.0 (found {found}): the kernels are built for "
                                       "sm_90a (Hopper) and sm_100a (Blackwell)")
        reason = _library.load()
        if reason:
            return Availability(False, reason)
        images = [i for i in usable if not native.kernel_image_error(i)]
        if not images:
            err = native.kernel_image_error(usable[0])
            c = caps[usable[0]]
            return Availability(False, f"this build has no kernels for sm_{c[0]}{c[1]} (built for sm_90a and, with "
                                       f"nvcc >= 12.8, sm_100a): {err}")
        return Availability(True)

    def _capability(self, device: torch.device) -> tuple[int, int]:
        return torch.cuda.get_device_capability(device)

    # -- can it run this problem ------------------------------------------------------------------------
    def supports(self, problem: GemmProblem) -> str | None:
        av = self.availability()
        if not av.ok:
            return av.reason
        if problem.device.type != "cuda":
            return f"needs a CUDA device, problem is on {problem.device}"
        cap = self._capability(problem.device)
        if cap < (9, 0):
            return f"needs compute capability >= 9.0, {problem.device} has {cap[0]}.{cap[1]}"
        if _library._native.kernel_image_error(_index(problem.device)):
            return f"this build has no kernels for sm_{cap[0]}{cap[1]}"
        if problem.k % 16:
            return f"K = {problem.k} must be a multiple of 16"
        if max(problem.m, problem.n) * (problem.k // 16) >= 1 << 32:
            return "more than 2^32 scale blocks in one operand"
        return None

    # -- tactics ---------------------------------------------------------------------------------------
    def _fp4_native(self, problem: GemmProblem) -> bool:
        return (self._capability(problem.device) == (10, 0) and not problem.weight_only
                and problem.layout == "swizzled" and _library._native.library_version() >= FP4_MIN_VERSION)

    def tactics(self, problem: GemmProblem):
        key = (problem.m, problem.n, problem.k, problem.a_format, problem.out_dtype, problem.has_bias,
               problem.layout, _index(problem.device))
        cached = self._tactics.get(key)
        if cached is not None:
            return cached
        out: list[CublasLtTactic] = []
        if self._fp4_native(problem):
            out += self.heuristic_tactics(problem, PATH_FP4, alpha_vector=False)
        # The alpha-vector mode where cuBLASLt has kernels for it (no C read), else device scalars.
        dequant = self.heuristic_tactics(problem, PATH_DEQUANT, alpha_vector=True)
        out += dequant or self.heuristic_tactics(problem, PATH_DEQUANT, alpha_vector=False)
        if not out:
            raise RuntimeError(f"cuBLASLt's heuristic offered no algorithm for {problem.describe()}")
        result = tuple(out)
        self._tactics[key] = result
        return result

    def heuristic_tactics(self, problem: GemmProblem, path: str, *, alpha_vector: bool) -> list[CublasLtTactic]:
        """cuBLASLt's heuristic algorithms for one path and pointer mode (and, from M = 512 when N splits,
        the pipelined variant's), best first."""
        dev = _index(problem.device)
        t = gemm_types(problem, path)
        bias = problem.has_bias and not t.scratch
        vec = int(alpha_vector)
        found = _library._native.heuristics(dev, 1 if path == PATH_FP4 else 0, problem.m, problem.n, problem.k,
                                            problem.n, t.ab, t.d, bias, alpha_vector, 16, 16, 16,
                                            HEURISTIC_COUNT, LT_WORKSPACE)
        out = [CublasLtTactic.from_config(path, cfg, 1, vec) for cfg, _ws, _waves in found]
        if out and path == PATH_DEQUANT and problem.m >= PIPELINE_MIN_M:
            probe = CublasLtTactic(PATH_DEQUANT, 0, 0, 0, 1, 0, 0, 0, 0, 0, chunks=PIPELINE_CHUNKS)
            if invalid_reason(probe, problem) is None:
                found = _library._native.heuristics(dev, 0, problem.m, problem.n // PIPELINE_CHUNKS, problem.k,
                                                    problem.n, t.ab, t.d, bias, alpha_vector, 16, 16, 16,
                                                    PIPELINED_COUNT, LT_WORKSPACE)
                out += [CublasLtTactic.from_config(path, cfg, PIPELINE_CHUNKS, vec) for cfg, _ws, _w in found]
        return out

    # -- run -----------------------------------------------------------------------------------------------
    def _plan(self, dev: int, path: str, m: int, nc: int, k: int, ldd: int, t: GemmTypes, bias: bool,
              alpha_vector: bool, aligns: tuple[int, int, int], config):
        key = (dev, path, m, nc, k, ldd, t, bias, alpha_vector, aligns, config)
        plan = self._plans.get(key)
        if plan is None:
            plan = _library._native.Plan(dev, 1 if path == PATH_FP4 else 0, m, nc, k, ldd, t.ab, t.d, bias,
                                         alpha_vector, *aligns, config, LT_WORKSPACE)
            self._plans[key] = plan
        return plan

    def run(self, problem: GemmProblem, tactic, a, b, *, bias, out) -> None:
        reason = invalid_reason(tactic, problem, self._capability(problem.device))
        if reason is not None:
            raise ValueError(f"tactic {tactic!r} cannot run {problem.describe()}: {reason}")
        dev = _index(problem.device)
        if dev != torch.cuda.current_device():
            with torch.cuda.device(dev):
                return self._run(problem, tactic, a, b, bias, out, dev)
        return self._run(problem, tactic, a, b, bias, out, dev)

    def _run(self, problem, tactic: CublasLtTactic, a, b, bias, out, dev: int) -> None:
        native = _library._native
        t = gemm_types(problem, tactic.path)
        m, n, k = problem.m, problem.n, problem.k
        chunks = tactic.chunks
        nc = n // chunks
        dense = a.detach() if problem.weight_only else None
        bias = bias.detach() if bias is not None else None
        epilogue_bias = bias is not None and not t.scratch
        aligns = (_alignment(dense.data_ptr()) if dense is not None else 256,
                  256 if t.scratch else _alignment(out.data_ptr()),
                  _alignment(bias.data_ptr()) if epilogue_bias else 256)
        config = tactic.config()
        if min(aligns) < 16:
            # Tactics assume 16-byte aligned pointers (every fresh torch tensor is); for a view that is not,
            # cuBLASLt's heuristic picks an algorithm for the real alignment instead of the tactic's.
            log.debug("cublaslt: under-aligned pointers %s, using the heuristic's algorithm", aligns)
            config = None
        else:
            aligns = (16, 16, 16)
        plan = self._plan(dev, tactic.path, m, nc, k, n, t, epilogue_bias, bool(tactic.alpha_vector), aligns, config)
        stream = torch.cuda.current_stream(dev)
        state = self._states.get((dev, stream.cuda_stream))
        if state is None:
            state = self._states[(dev, stream.cuda_stream)] = _StreamState(dev)
        fp4 = tactic.path == PATH_FP4
        nbytes = native.workspace_bytes(m, n, k, not fp4 and dense is None, not fp4, t.ab, t.scratch, LT_WORKSPACE)
        ws = workspace.scratch(torch.device("cuda", dev), stream.cuda_stream, _WORKSPACE, nbytes, torch.uint8)
        pipeline = state.pipe(chunks) if chunks > 1 else None
        nv = not problem.weight_only
        native.gemm(dev, plan, pipeline,
                    a.data if nv else None, a.scale.view(torch.uint8) if nv else None,
                    a.global_scale if nv else None, dense,
                    b.data, b.scale.view(torch.uint8), b.global_scale, bias, out, _CODES[out.dtype],
                    problem.layout == "swizzled", t.scratch, m, n, k, chunks, ws, stream.cuda_stream)

    # -- extras for benchmarks and tests ------------------------------------------------------------------
    def dequantize_into(self, t, out: torch.Tensor) -> None:
        """Dequantize NVFP4 tensor ``t`` (without its global scale) into ``out`` ([R, K] bf16/fp16/fp32)."""
        rows, k = t.shape
        if tuple(out.shape) != (rows, k) or out.dtype not in _CODES or not out.is_contiguous():
            raise ValueError(f"out must be a contiguous bf16/fp16/fp32 tensor of shape {(rows, k)}")
        dev = _index(t.device)
        _library._native.dequantize(dev, t.data, t.scale.view(torch.uint8), out, _CODES[out.dtype], rows, k,
                                    t.layout == "swizzled", torch.cuda.current_stream(dev).cuda_stream)

    def workspace_tensor(self, device: torch.device, stream=None) -> torch.Tensor | None:
        """The workspace reused by calls on (device, stream) — tests check it is not reallocated."""
        dev = _index(device)
        s = stream if stream is not None else torch.cuda.current_stream(dev)
        return workspace.current(torch.device("cuda", dev), s.cuda_stream, _WORKSPACE)


def _index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()
