"""NVFP4 GEMV (M = 1) for sm_90a in CuTe DSL: whole weight rows streamed into registers, ``mma.sync`` on the
diagonal. The same structure as the cutlass backend's row GEMV (``csrc/gemm_sm90_gemv.cuh``), which beat every
MMA-layout kernel at M = 1 on the H100 and H200.

Why not the wgmma kernels at M = 1: their fragment layout gives each thread fixed K positions of 16 rows, so a
warp's loads touch many rows a few bytes each, and every K tile passes a barrier. Here:

- ``mma.m16n8k16`` with A's row ``g`` (``g < 8``) the weight row ``r`` at the K positions lane ``(g, t)``
  chooses, A's row ``8 + g`` the row ``r'`` at the same positions, and B's column ``g`` the activations at
  those positions. Lane ``(g, t)`` holds exactly ``A[g][k]``, ``A[g + 8][k]`` and ``B[k][g]`` for its four
  ``k``, so it supplies matching weights and activations from its own data, and ``D[g][g]`` (``D[g + 8][g]``)
  sums lanes ``4g .. 4g + 3``'s products of row ``r`` (``r'``). Off-diagonal sums mix unrelated positions and
  are never read; the eight diagonal elements are summed across the warp once at the end.
- So each lane takes 16 consecutive bytes (32 values, two scale blocks) of each of its rows a step, and a warp
  load reads 512 contiguous bytes of one row: a row's K slice streams in 512-byte runs.
- The weights land in registers, ``stages`` steps of loads in flight a lane; no shared memory for them and no
  barrier in the loop. The CTA stages its K slice of the activation row in shared memory once (swizzled so a
  warp's 16-byte reads are conflict-free); every row of the warp multiplies the same activation registers.
- Decode: byte ``i`` of a packed word is the K pair ``(2i, 2i + 1)``, which ``fp4_pairs`` turns into one
  BF16/FP16 register times the block multiplier, so the activations need no reordering.

Needs M = 1, K % 32 == 0 and a K slice of at most ``tactics.GEMV_MAX_STEPS`` (24) steps of 1024 (the staged
activations: 48 KiB); split-K CTAs publish one FP32 partial a row and the last CTA of the tile adds them in slice
order (``epilogue.last_to_arrive``).
"""

from __future__ import annotations

import cuda.bindings.driver as cuda
import cutlass
import cutlass.cute as cute
from cutlass.memory import SmemAllocator

from ..tactics import GEMV_MAX_STEPS, GEMV_STEP_K, Sm90Tactic
from .common import scale_layout
from .decode import BF16_WEIGHT_LOG2
from .epilogue import last_to_arrive
from .fp4_convert import fp4_pairs, scale_pairs
from .ptx_ops import ld_stream_u16, ld_stream_v4, lds_v4, mma16816

BLOCK = 16
#: 16-byte pieces of staged activations a step (1024 values of 2 bytes).
STEP_PIECES = GEMV_STEP_K // 8


def _piece_slot(e):
    """Where staged piece ``e`` (K values k_begin + 8e .. + 7) sits: e ^ ((e >> 3) & 7). The four pieces a lane
    reads a step are 4 lane + 0..3, so without the swizzle the eight lanes of a 16-byte load phase would hit two
    bank groups. The staging loop and the reads share this one definition."""
    return e ^ ((e >> 3) & 7)


class Sm90NVFP4Gemv:
    """One compiled configuration: static formats, scale layout and tactic; N, K and bias are run-time."""

    def __init__(self, *, act: str, out_dtype, layout: str, tactic: Sm90Tactic):
        if act not in ("bf16", "fp16") or not tactic.gemv_rows:
            raise ValueError(f"the row GEMV is weight-only (bf16/fp16 activations), got {act}, {tactic}")
        self.bf16 = act == "bf16"
        self.out_dtype = out_dtype
        self.layout = layout
        self.t = tactic
        self.rows = tactic.gemv_rows
        self.warps = tactic.tile_w // tactic.gemv_rows
        self.unroll = tactic.stages

    @cute.jit
    def __call__(self, w_ptr: cute.Pointer, ws_ptr: cute.Pointer, x_ptr: cute.Pointer,
                 xs_ptr: cute.Pointer, gsa_ptr: cute.Pointer, gsb_ptr: cute.Pointer,
                 bias_ptr: cute.Pointer, out_ptr: cute.Pointer, work_ptr: cute.Pointer,
                 count_ptr: cute.Pointer, m: cutlass.Int32, n: cutlass.Int32, k: cutlass.Int32,
                 bias_on: cutlass.Int32, stream: cuda.CUstream):
        @cute.struct
        class SharedStorage:
            flag: cute.struct.MemRange[cutlass.Int32, 4]
            sx: cute.struct.Align[cute.struct.MemRange[cutlass.Uint32, GEMV_MAX_STEPS * GEMV_STEP_K // 2], 16]

        grid_w = (n + self.t.tile_w - 1) // self.t.tile_w
        self.kernel(w_ptr, ws_ptr, x_ptr, gsb_ptr, bias_ptr, out_ptr, work_ptr, count_ptr, n, k, bias_on,
                    SharedStorage).launch(grid=[grid_w, 1, self.t.split_k], block=[self.warps * 32, 1, 1],
                                          stream=stream)

    @cute.kernel
    def kernel(self, w_ptr: cute.Pointer, ws_ptr: cute.Pointer, x_ptr: cute.Pointer, gsb_ptr: cute.Pointer,
               bias_ptr: cute.Pointer, out_ptr: cute.Pointer, work_ptr: cute.Pointer, count_ptr: cute.Pointer,
               n: cutlass.Int32, k: cutlass.Int32, bias_on: cutlass.Int32, SharedStorage: cutlass.Constexpr):
        t, R, U = self.t, self.rows, self.unroll
        k = cute.assume(k, divby=32)
        tidx, _, _ = cute.arch.thread_idx()
        lane = tidx % 32
        warp = cute.arch.make_warp_uniform(cute.arch.warp_idx())
        g = lane // 4
        q4 = lane % 4
        bid_w, _, bid_k = cute.arch.block_idx()
        row0 = bid_w * t.tile_w + warp * R
        # this CTA's K slice, in whole 32-value segments
        segs = k // 32
        per_split = (segs + t.split_k - 1) // t.split_k
        k_begin = bid_k * per_split * 32
        k_end = cutlass.min(k_begin + per_split * 32, k)
        steps = (k_end - k_begin + GEMV_STEP_K - 1) // GEMV_STEP_K

        smem = SmemAllocator()
        storage = smem.allocate(SharedStorage)
        flag = storage.flag.get_tensor(cute.make_layout(4))
        sx = storage.sx.get_tensor(cute.make_layout(GEMV_MAX_STEPS * GEMV_STEP_K // 2))
        sx_addr = storage.sx.data_ptr().toint()  # smem: a 32-bit shared address

        # rows past N read row N - 1 (never stored)
        ws_layout = scale_layout(n, k, self.layout)
        w_base = w_ptr.toint()
        ws_base = ws_ptr.toint()
        wrow = []
        srow = []
        for r in cutlass.range_constexpr(R):
            row = cutlass.min(row0 + r, n - 1)
            wrow.append(w_base + cutlass.Int64(row) * cutlass.Int64(k // 2))
            srow.append(ws_base + cutlass.Int64(cute.crd2idx((row, 0), ws_layout)))

        wb = cute.make_rmem_tensor((U, R, 4), cutlass.Uint32)  # the ring: step u's 16 bytes of each row
        sb = cute.make_rmem_tensor((U, R), cutlass.Uint32)  # and its two block scales

        ld = (wb, sb, wrow, srow, ws_layout, k_begin, k_end, steps, lane)
        for u in cutlass.range_constexpr(U):
            self.load(*ld, u, u)

        # ---- the activation slice, while the first steps load, swizzled (_piece_slot). Past the slice: zeros
        # (the zero weights there must not meet a NaN).
        x_base = x_ptr.toint()
        for e in cutlass.range(tidx, steps * STEP_PIECES, self.warps * 32, unroll=1):
            kk = k_begin + 8 * e
            ok = cutlass.Int32(0)
            if kk < k_end:
                ok = cutlass.Int32(1)
            v = ld_stream_v4(x_base + cutlass.Int64(kk) * 2, ok)
            pos = _piece_slot(e)
            for j in cutlass.range_constexpr(4):
                sx[4 * pos + j] = v[j]
        cute.arch.sync_threads()

        # two accumulator sets (even / odd K step of a word) halve the dependent MMA chain of a row pair
        acc = cute.make_rmem_tensor((R // 2, 2, 4), cutlass.Float32)
        acc.fill(0.0)

        for s0 in cutlass.range(0, steps, U, unroll=1):
            for u in cutlass.range_constexpr(U):
                if s0 + u < steps:
                    self.compute(acc, wb, sb, sx_addr, lane, u, s0 + u)
                self.load(*ld, u, s0 + u + U)

        # ---- the diagonal: D[g][g] is element g & 1 of lane (g, g / 2), D[g + 8][g] element 2 + (g & 1)
        mine = cutlass.Float32(0.0)
        for pr in cutlass.range_constexpr(R // 2):
            d0 = cutlass.Float32(0.0)
            d1 = cutlass.Float32(0.0)
            if q4 == g // 2:
                if g % 2 == 0:
                    d0 = acc[(pr, 0, 0)] + acc[(pr, 1, 0)]
                    d1 = acc[(pr, 0, 2)] + acc[(pr, 1, 2)]
                else:
                    d0 = acc[(pr, 0, 1)] + acc[(pr, 1, 1)]
                    d1 = acc[(pr, 0, 3)] + acc[(pr, 1, 3)]
            for o in cutlass.range_constexpr(5):
                d0 = d0 + cute.arch.shuffle_sync_bfly(d0, 16 >> o)
                d1 = d1 + cute.arch.shuffle_sync_bfly(d1, 16 >> o)
            if lane == 2 * pr:  # lane r < R owns row row0 + r from here on
                mine = d0
            if lane == 2 * pr + 1:
                mine = d1
        nrow = row0 + lane
        owner = (lane < R) & (nrow < n)

        alpha = cute.make_tensor(gsb_ptr, cute.make_layout(1))[0]
        if cutlass.const_expr(self.bf16):
            alpha = alpha * cutlass.Float32(2.0 ** BF16_WEIGHT_LOG2)  # the decoder's weights are 2^-8 too small
        last = True
        if cutlass.const_expr(t.split_k > 1):  # publish this slice's sums; the tile's last CTA adds them in order
            mPart = cute.make_tensor(work_ptr, cute.make_layout((n, t.split_k), stride=(1, n)))
            if owner:
                mPart[(nrow, bid_k)] = mine
            last = last_to_arrive(count_ptr, bid_w, t.split_k, flag, tidx)
            if last & owner:
                mine = cutlass.Float32(0.0)
                for z in cutlass.range(t.split_k, unroll=1):
                    mine = mine + mPart[(nrow, z)]
        if last & owner:
            v = mine * alpha
            if bias_on != 0:
                v = v + cute.make_tensor(bias_ptr, cute.make_layout((n,)))[nrow].to(cutlass.Float32)
            cute.make_tensor(out_ptr, cute.make_layout((n,)))[nrow] = v.to(self.out_dtype)

    @cute.jit
    def load(self, wb: cute.Tensor, sb: cute.Tensor, wrow, srow, ws_layout: cute.Layout, k_begin, k_end, steps,
             lane, u: cutlass.Constexpr, s):
        """Step ``s``'s loads into ring slot ``u``; a lane's segment past the slice loads zeros (scale 0)."""
        kseg = k_begin + s * GEMV_STEP_K + lane * 32
        ok = cutlass.Int32(0)
        if (s < steps) & (kseg < k_end):
            ok = cutlass.Int32(1)
        koff = cutlass.Int64(cute.crd2idx((0, kseg // BLOCK), ws_layout))
        for r in cutlass.range_constexpr(self.rows):
            v = ld_stream_v4(wrow[r] + cutlass.Int64(kseg // 2), ok)
            for j in cutlass.range_constexpr(4):
                wb[(u, r, j)] = v[j]
            sb[(u, r)] = ld_stream_u16(srow[r] + koff, ok)

    @cute.jit
    def compute(self, acc: cute.Tensor, wb: cute.Tensor, sb: cute.Tensor, sx_addr, lane, u: cutlass.Constexpr, s):
        """Decode ring slot ``u`` (step ``s``) and multiply it with the staged activations of the step."""
        xv = []
        for qq in cutlass.range_constexpr(4):
            e = s * STEP_PIECES + lane * 4 + qq
            xv.append(lds_v4(sx_addr + _piece_slot(e) * 16))
        for pr in cutlass.range_constexpr(self.rows // 2):
            s_r = scale_pairs(sb[(u, 2 * pr)], self.bf16)  # blocks 0, 1 of row r's segment
            s_r2 = scale_pairs(sb[(u, 2 * pr + 1)], self.bf16)
            for qq in cutlass.range_constexpr(4):  # word qq: K 8qq .. 8qq + 7 of the segment, block qq // 2
                a = fp4_pairs(wb[(u, 2 * pr, qq)], s_r[qq // 2], s_r[qq // 2], self.bf16)
                a2 = fp4_pairs(wb[(u, 2 * pr + 1, qq)], s_r2[qq // 2], s_r2[qq // 2], self.bf16)
                for h in cutlass.range_constexpr(2):
                    d = mma16816((acc[(pr, h, 0)], acc[(pr, h, 1)], acc[(pr, h, 2)], acc[(pr, h, 3)]),
                                 (a[2 * h], a2[2 * h], a[2 * h + 1], a2[2 * h + 1]),
                                 (xv[qq][2 * h], xv[qq][2 * h + 1]), self.bf16)
                    for i in cutlass.range_constexpr(4):
                        acc[(pr, h, i)] = d[i]
