"""Compile once per configuration, cache in the process, launch with raw pointers.

The key is (tactic, activation format, output dtype, scale layout): M, N, K
and the bias flag are run-time arguments, so one compile serves every layer and batch size. The first
compile of each key is logged with its time. Imports the DSL: only loaded
when a GEMM actually runs.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
import time

import cuda.bindings.driver as cuda
import cutlass
import cutlass.cute as cute
import torch
from cutlass.cute.runtime import make_ptr

from nvfp4 import workspace

from .kernels.dequantize_sm90 import Sm90NVFP4ToF16
from .kernels.gemm_sm90 import Sm90NVFP4Gemm
from .kernels.gemm_sm90_rs import Sm90NVFP4GemmRS
from .kernels.gemv_sm90 import Sm90NVFP4Gemv
from .tactics import Sm90Tactic, split_k_partials

log = logging.getLogger("nvfp4.cutedsl")

_OUT = {torch.bfloat16: cutlass.BFloat16, torch.float16: cutlass.Float16, torch.float32: cutlass.Float32}
_ACT = {"bf16": cutlass.BFloat16, "fp16": cutlass.Float16, "nvfp4": cutlass.Uint8}
_GMEM = cute.AddressSpace.gmem

_lock = threading.Lock()
_compiled: dict[tuple, object] = {}
_streams: dict[int, object] = {}
#: Marshalled arguments of recent launches, keyed by every address and size they hold.
_launches: dict[tuple, tuple] = {}
#: NVFP4_CUTEDSL_NO_ARG_CACHE=1 marshals the arguments on every call (the DSL's public call path).
_fast_path = [os.environ.get("NVFP4_CUTEDSL_NO_ARG_CACHE", "") not in ("1", "true", "yes")]


def _ptr(dtype, addr: int, align: int):
    return make_ptr(dtype, addr, _GMEM, assumed_align=align)


def _pointers(act: str, out_dtype: torch.dtype, addrs: dict):
    """The kernel's pointer arguments, with the alignments the kernel was compiled for."""
    o = _OUT[out_dtype]
    return (
        _ptr(cutlass.Uint8, addrs["w"], 16),  # TMA source
        _ptr(cutlass.Uint8, addrs["ws"], 2),  # 16-bit scale pairs in the weight_regs kernel
        _ptr(_ACT[act], addrs["x"], 16),  # TMA source
        _ptr(cutlass.Uint8, addrs["xs"], 1),
        _ptr(cutlass.Float32, addrs["gsa"], 4),
        _ptr(cutlass.Float32, addrs["gsb"], 4),
        _ptr(o, addrs["bias"], o.width // 8),
        _ptr(o, addrs["out"], o.width // 8),
        _ptr(cutlass.Float32, addrs["work"], 4),
        _ptr(cutlass.Int32, addrs["count"], 4),
    )


def _compile_once(key: tuple, build, what):
    """The compiled function for ``key``: ``build()`` runs once per process (under a lock), and its time is logged
    with ``what()``."""
    fn = _compiled.get(key)
    if fn is not None:
        return fn
    with _lock:
        fn = _compiled.get(key)
        if fn is None:
            t0 = time.perf_counter()
            fn = _compiled[key] = build()
            log.info("nvfp4.cutedsl: compiled %s in %.2f s", what(), time.perf_counter() - t0)
    return fn


@functools.cache
def _without_act_fp16(tactic: Sm90Tactic) -> Sm90Tactic:
    return dataclasses.replace(tactic, act_fp16=False)  # cached: dataclasses.replace costs microseconds a call


def get_compiled(tactic: Sm90Tactic, act: str, out_dtype: torch.dtype, layout: str, arch: str = "sm_90a"):
    if tactic.act_fp16:  # the FP16 weight-only GEMM that runs after the dequantize (launch)
        tactic, act = _without_act_fp16(tactic), "fp16"

    def build():
        kind = Sm90NVFP4Gemv if tactic.gemv_rows else Sm90NVFP4GemmRS if tactic.weight_regs else Sm90NVFP4Gemm
        gemm = kind(act=act, out_dtype=_OUT[out_dtype], layout=layout, tactic=tactic)
        fake = {name: 1 << 20 for name in ("w", "ws", "x", "xs", "gsa", "gsb", "bias", "out", "work", "count")}
        return cute.compile(gemm, *_pointers(act, out_dtype, fake), cutlass.Int32(1), cutlass.Int32(128),
                            cutlass.Int32(128), cutlass.Int32(0), cuda.CUstream(0), options=f"--gpu-arch {arch}")

    return _compile_once((tactic, act, out_dtype, layout, arch), build,
                         lambda: f"{tactic} a={act} out={out_dtype} layout={layout}")


def _stream(handle: int):
    st = _streams.get(handle)
    if st is None:
        st = _streams[handle] = cuda.CUstream(handle)
    return st


def get_dequantize(layout: str, arch: str = "sm_90a"):
    """The compiled NVFP4 -> FP16 kernel of the act_fp16 tactics (``kernels/dequantize_sm90.py``)."""
    def build():
        return cute.compile(Sm90NVFP4ToF16(layout=layout), *_dequantize_pointers(dict.fromkeys(_DEQ_ARGS, 1 << 20)),
                            cutlass.Int32(1), cutlass.Int32(32), cuda.CUstream(0), options=f"--gpu-arch {arch}")

    return _compile_once(("dequantize_f16", layout, arch), build,
                         lambda: f"the NVFP4 -> FP16 dequantize, layout={layout}")


_DEQ_ARGS = ("x", "xs", "gsa", "gsb", "out", "alpha")


def _dequantize_pointers(addrs: dict):
    return (
        _ptr(cutlass.Uint32, addrs["x"], 16),  # 8-byte loads of a block's codes
        _ptr(cutlass.Uint8, addrs["xs"], 1),
        _ptr(cutlass.Float32, addrs["gsa"], 4),
        _ptr(cutlass.Float32, addrs["gsb"], 4),
        _ptr(cutlass.Uint32, addrs["out"], 16),  # 16-byte stores
        _ptr(cutlass.Float32, addrs["alpha"], 4),
    )


def dequantize_f16(a, gsb, x16, alpha, layout: str, handle: int) -> None:
    """Queue on stream ``handle``: ``x16[M, K]`` = the NVFP4 ``a`` in FP16 without its global scale (exact), and
    ``alpha[0]`` = a's global scale times ``gsb[0]`` (FP32)."""
    m, k = a.shape
    fn = get_dequantize(layout)
    addrs = {"x": a.data.data_ptr(), "xs": a.scale.data_ptr(), "gsa": a.global_scale.data_ptr(),
             "gsb": gsb.data_ptr(), "out": x16.data_ptr(), "alpha": alpha.data_ptr()}
    key = (id(fn), *addrs.values(), m, k, handle)
    _run(fn, key, lambda: (*_dequantize_pointers(addrs), cutlass.Int32(m), cutlass.Int32(k), _stream(handle)))


def _dequantize_act(a, b, m: int, k: int, layout: str, handle: int):
    """The act_fp16 tactics' first launch: (a in FP16, alpha = both global scales' product), in one allocation
    (the copy, then alpha at M*K*2 bytes, a multiple of 64)."""
    buf = torch.empty(m * k * 2 + 16, dtype=torch.uint8, device=a.data.device)
    x16 = buf[: m * k * 2].view(torch.float16).view(m, k)
    alpha = buf[m * k * 2:].view(torch.float32)[:1]
    dequantize_f16(a, b.global_scale, x16, alpha, layout, handle)
    return x16, alpha


def launch(tactic: Sm90Tactic, a, b, bias, out, *, m: int, n: int, k: int, act: str, layout: str) -> None:
    handle = torch.cuda.current_stream(out.device).cuda_stream
    gsb = b.global_scale
    if tactic.act_fp16:
        # W4A4 as the FP16 weight-only GEMM of the dequantized activation; alpha carries both global scales.
        # The copy lives until both launches are queued; the caching allocator reuses it in stream order.
        a, gsb = _dequantize_act(a, b, m, k, layout, handle)
        act = "fp16"
    fn = get_compiled(tactic, act, out.dtype, layout)
    if act == "nvfp4":
        x, xs, gsa = a.data, a.scale, a.global_scale
    else:
        x, xs, gsa = a, b.scale, b.global_scale  # xs / gsa unused: valid addresses only
    if tactic.split_k > 1:
        tiles = -(-n // tactic.tile_w) * -(-m // tactic.tile_x)
        work, count = workspace.split_k(out.device, handle, "cutedsl", split_k_partials(tactic, m, n), tiles)
        work_addr, count_addr = work.data_ptr(), count.data_ptr()
    else:
        work_addr = count_addr = b.global_scale.data_ptr()  # unused
    addrs = {
        "w": b.data.data_ptr(), "ws": b.scale.data_ptr(), "x": x.data_ptr(), "xs": xs.data_ptr(),
        "gsa": gsa.data_ptr(), "gsb": gsb.data_ptr(), "bias": (bias if bias is not None else out).data_ptr(),
        "out": out.data_ptr(), "work": work_addr, "count": count_addr,
    }
    key = (id(fn), *addrs.values(), m, n, k, bias is not None, handle)
    _run(fn, key, lambda: (*_pointers(act, out.dtype, addrs), cutlass.Int32(m), cutlass.Int32(n), cutlass.Int32(k),
                           cutlass.Int32(1 if bias is not None else 0), _stream(handle)))


def _run(fn, key: tuple, make_args) -> None:
    """Launch ``fn`` with the arguments ``make_args()`` builds, marshalled once per distinct ``key`` (every
    address and size they hold): repeated launches with the same buffers (benchmarks, decode loops with static
    buffers) skip ~10-20 us of Python."""
    hit = _launches.get(key)
    if hit is None:
        args = make_args()
        if not _fast_path[0]:
            fn(*args)
            return
        exe, adapted = fn.generate_execution_args(*args)
        if len(_launches) >= 512:
            _launches.clear()
        # exe holds C pointers into args / adapted: keep both alive with it.
        hit = _launches[key] = (fn, exe, args, adapted)
    if _fast_path[0]:
        try:
            hit[0].run_compiled_program(hit[1])
            return
        except Exception as exc:  # a DSL whose private launch path differs: use the public call
            _fast_path[0] = False
            log.warning("nvfp4.cutedsl: cached-argument launch failed (%s); using the plain call", exc)
    fn(*hit[2])
