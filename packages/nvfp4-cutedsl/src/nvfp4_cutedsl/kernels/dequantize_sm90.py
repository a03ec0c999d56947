"""NVFP4 to FP16 without the global scale: the first step of the W4A4 ``act_fp16`` tactics (``tactics.py``).

One thread a 16-value scale block: an 8-byte load of its codes, its E4M3 scale through the CuTe layout of
``scale_layout.py`` (linear or swizzled), the shared-memory kernel's decoder (``fp4x8_to_16x8``: E2M1 as FP16
times the scale as FP16, one ``mul.rn``, exact: at most 6 significant bits, in [2^-10, 2688]) and two 16-byte
stores. The block's global scale is not applied (that would round): thread 0 writes
``alpha = global_scale(a) * global_scale(b)`` next to the copy, and the FP16 GEMM that follows reads it where it
reads the weight's global scale, so the activation's global scale costs no launch of its own.
"""

from __future__ import annotations

import cuda.bindings.driver as cuda
import cutlass
import cutlass.cute as cute

from .common import scale_layout
from .fp4_convert import fp4x8_to_16x8, scale_pair

BLOCK = 16
THREADS = 256


class Sm90NVFP4ToF16:
    """One compiled configuration per scale layout; rows and K are run-time (K a multiple of 32)."""

    def __init__(self, *, layout: str):
        self.layout = layout

    @cute.jit
    def __call__(self, x_ptr: cute.Pointer, xs_ptr: cute.Pointer, gsa_ptr: cute.Pointer, gsb_ptr: cute.Pointer,
                 out_ptr: cute.Pointer, alpha_ptr: cute.Pointer, rows: cutlass.Int32, k: cutlass.Int32,
                 stream: cuda.CUstream):
        k = cute.assume(k, divby=32)
        blocks = rows * (k // BLOCK)
        self.kernel(x_ptr, xs_ptr, gsa_ptr, gsb_ptr, out_ptr, alpha_ptr, rows, k).launch(
            grid=[(blocks + THREADS - 1) // THREADS, 1, 1], block=[THREADS, 1, 1], stream=stream)

    @cute.kernel
    def kernel(self, x_ptr: cute.Pointer, xs_ptr: cute.Pointer, gsa_ptr: cute.Pointer, gsb_ptr: cute.Pointer,
               out_ptr: cute.Pointer, alpha_ptr: cute.Pointer, rows: cutlass.Int32, k: cutlass.Int32):
        tidx, _, _ = cute.arch.thread_idx()
        bidx, _, _ = cute.arch.block_idx()
        kb = k // BLOCK
        blocks = rows * kb
        i = bidx * THREADS + tidx  # block i of row i // kb: codes at words 2i, 2i + 1; FP16 at words 8i .. 8i + 7
        if i == 0:
            alpha = cute.make_tensor(alpha_ptr, cute.make_layout(1))
            alpha[0] = cute.make_tensor(gsa_ptr, cute.make_layout(1))[0] * cute.make_tensor(
                gsb_ptr, cute.make_layout(1))[0]
        if i < blocks:
            row = i // kb
            codes = cute.make_tensor(x_ptr, cute.make_layout((2, blocks), stride=(1, 2)))
            words = cute.make_tensor(out_ptr, cute.make_layout((8, blocks), stride=(1, 8)))
            scales = cute.make_tensor(xs_ptr, scale_layout(rows, k, self.layout))
            rc = cute.make_rmem_tensor((2,), cutlass.Uint32)
            cute.autovec_copy(codes[(None, i)], rc)
            s2 = scale_pair(cutlass.Uint32(scales[(row, i - row * kb)]), False)
            ro = cute.make_rmem_tensor((8,), cutlass.Uint32)
            for h in cutlass.range_constexpr(2):
                v = fp4x8_to_16x8(rc[h], s2, False)
                for j in cutlass.range_constexpr(4):
                    ro[4 * h + j] = v[j]
            cute.autovec_copy(ro, words[(None, i)])
