"""NVFP4 GEMM for sm_90a in CuTe DSL: TMA loads, dequantization to BF16/FP16 in shared memory, wgmma.

``out[M, N] = cast(alpha * (deq(a) @ deq(w).T) + bias)``, FP32 accumulation.

Per CTA and per K tile of 64 (four NVFP4 scale blocks):

1. One thread issues TMA loads of the packed weight tile (``tile_w x 32`` bytes)
   and of the activation tile (BF16/FP16 ``tile_x x 64``, or packed NVFP4
   ``tile_x x 32`` bytes for W4A4) into a ``stages``-deep ring guarded by
   mbarriers (``PipelineTmaAsync``).
2. Every thread dequantizes 8 elements at a time: one 32-bit word of packed
   codes from shared memory plus its E4M3 scale (read from global memory two
   tiles ahead, through a CuTe layout that is either row-major or the swizzled
   128x4 atoms, so both layouts run the same code) become 8 exact BF16/FP16
   values (``decode.py``), stored with one 16-byte store into a 128B-swizzled
   buffer in the layout wgmma reads. Two such buffers alternate.
3. wgmma (shared-memory operands, FP32 accumulators) consumes buffer ``k`` while
   the threads dequantize tile ``k+1`` into the other buffer.
4. Epilogue: ``alpha`` (global scales read on the device) times the
   accumulator, plus bias, cast, predicated stores. With ``split_k > 1`` the
   CTAs of one output tile store FP32 partial tiles in a workspace and the last
   one (an atomic counter) sums them and applies the epilogue (``epilogue.py``).

The register-sourced kernel (``gemm_sm90_rs.py``) is faster for weight-only problems; this one stays
for W4A4, whose packed activations must be dequantized into shared memory for wgmma's B operand
anyway, and as a tuning candidate.
"""

from __future__ import annotations

import cuda.bindings.driver as cuda
import cutlass
import cutlass.cute as cute
import cutlass.pipeline as pipeline
import cutlass.utils.hopper_helpers as sm90_utils
from cutlass.memory import SmemAllocator
from cutlass.tensor_utils import LayoutEnum

from ..tactics import TILE_K, Sm90Tactic
from .common import PACKED_K, k_slice, load_stage, packed_weight_tma, scale_layout, tma_tiles
from .epilogue import store_tile
from .fp4_convert import fp4x8_to_16x8, scale_pair

BLOCK = 16
WORDS_K = PACKED_K // 4  # 32-bit words of packed codes per row per K tile (8 elements each)


class Sm90NVFP4Gemm:
    """One compiled configuration: static formats, scale layout and tactic; M, N, K and bias are run-time."""

    def __init__(self, *, act: str, out_dtype, layout: str, tactic: Sm90Tactic):
        self.w4a4 = act == "nvfp4"
        # FP16 activations multiply FP16 weights; BF16 and NVFP4 activations use BF16 (both exact
        # for dequantized NVFP4 values).
        self.mma_dtype = cutlass.Float16 if act == "fp16" else cutlass.BFloat16
        self.x_dtype = cutlass.Uint8 if self.w4a4 else self.mma_dtype
        self.out_dtype = out_dtype
        self.layout = layout
        self.t = tactic
        self.threads = tactic.threads
        mma_m, mma_n = tactic.mma_tile
        self.mma_tiler = (mma_m, mma_n, TILE_K)

    # ------------------------------------------------------------------------------------------
    @cute.jit
    def __call__(self, w_ptr: cute.Pointer, ws_ptr: cute.Pointer, x_ptr: cute.Pointer,
                 xs_ptr: cute.Pointer, gsa_ptr: cute.Pointer, gsb_ptr: cute.Pointer,
                 bias_ptr: cute.Pointer, out_ptr: cute.Pointer, work_ptr: cute.Pointer,
                 count_ptr: cute.Pointer, m: cutlass.Int32, n: cutlass.Int32, k: cutlass.Int32,
                 bias_on: cutlass.Int32, stream: cuda.CUstream):
        t = self.t
        # The caller guarantees K % 32 == 0: packed rows are a multiple of 16 bytes (TMA pitch).
        k = cute.assume(k, divby=32)
        row_major = LayoutEnum.ROW_MAJOR  # K-major for both operands

        if cutlass.const_expr(self.w4a4):
            mX = cute.make_tensor(x_ptr, cute.make_layout((m, k // 2), stride=(k // 2, 1)))
        else:
            mX = cute.make_tensor(x_ptr, cute.make_layout((m, k), stride=(k, 1)))

        tiled_mma = sm90_utils.make_trivial_tiled_mma(
            self.mma_dtype, self.mma_dtype, row_major.sm90_mma_major_mode(),
            row_major.sm90_mma_major_mode(), cutlass.Float32,
            (self.mma_tiler[0] // 64, 1, 1), tiler_mn=(64, self.mma_tiler[1]))

        # Dequantized operands: two K-major 128B-swizzled buffers in the layout wgmma reads.
        if cutlass.const_expr(t.swap_ab):
            wd_layout = sm90_utils.make_smem_layout_a(row_major, self.mma_tiler, self.mma_dtype, 2)
            xd_layout = sm90_utils.make_smem_layout_b(row_major, self.mma_tiler, self.mma_dtype, 2)
            x_layout = sm90_utils.make_smem_layout_b(row_major, self.mma_tiler, self.mma_dtype, t.stages)
        else:
            wd_layout = sm90_utils.make_smem_layout_b(row_major, self.mma_tiler, self.mma_dtype, 2)
            xd_layout = sm90_utils.make_smem_layout_a(row_major, self.mma_tiler, self.mma_dtype, 2)
            x_layout = sm90_utils.make_smem_layout_a(row_major, self.mma_tiler, self.mma_dtype, t.stages)
        # Packed codes land row-major, unswizzled: 32 bytes a row per K tile.
        wp_layout, tma_w, tma_mW = packed_weight_tma(w_ptr, n, k, t.tile_w, t.stages)
        xp_layout = cute.make_layout((t.tile_x, PACKED_K, t.stages), stride=(PACKED_K, 1, t.tile_x * PACKED_K))

        if cutlass.const_expr(self.w4a4):
            tma_x, tma_mX = cute.nvgpu.cpasync.make_tiled_tma_atom(
                cute.nvgpu.cpasync.CopyBulkTensorTileG2SOp(), mX,
                cute.slice_(xp_layout, (None, None, 0)), (t.tile_x, PACKED_K))
            x_stage_bytes = t.tile_x * PACKED_K
        else:
            tma_x, tma_mX = cute.nvgpu.cpasync.make_tiled_tma_atom(
                cute.nvgpu.cpasync.CopyBulkTensorTileG2SOp(), mX,
                cute.slice_(x_layout, (None, None, 0)), (t.tile_x, TILE_K))
            x_stage_bytes = t.tile_x * TILE_K * 2
        tx_bytes = t.tile_w * PACKED_K + x_stage_bytes

        x_dense_elems = 16 if self.w4a4 else cute.cosize(x_layout)
        x_packed_elems = cute.cosize(xp_layout) if self.w4a4 else 16
        xd_elems = cute.cosize(xd_layout) if self.w4a4 else 16

        @cute.struct
        class SharedStorage:
            bars: cute.struct.MemRange[cutlass.Int64, t.stages * 2]
            flag: cute.struct.MemRange[cutlass.Int32, 4]
            sX: cute.struct.Align[cute.struct.MemRange[self.mma_dtype, x_dense_elems], 1024]
            sWd: cute.struct.Align[cute.struct.MemRange[self.mma_dtype, cute.cosize(wd_layout)], 1024]
            sXd: cute.struct.Align[cute.struct.MemRange[self.mma_dtype, xd_elems], 1024]
            sWp: cute.struct.Align[cute.struct.MemRange[cutlass.Uint8, cute.cosize(wp_layout)], 128]
            sXp: cute.struct.Align[cute.struct.MemRange[cutlass.Uint8, x_packed_elems], 128]

        grid_w = (n + t.tile_w - 1) // t.tile_w
        grid_x = (m + t.tile_x - 1) // t.tile_x
        self.kernel(tma_w, tma_mW, tma_x, tma_mX, ws_ptr, xs_ptr, gsa_ptr, gsb_ptr, bias_ptr,
                    out_ptr, work_ptr, count_ptr, m, n, k, bias_on, tiled_mma, wd_layout, xd_layout, x_layout,
                    wp_layout, xp_layout, tx_bytes, SharedStorage).launch(
            grid=[grid_w, grid_x, t.split_k], block=[self.threads, 1, 1], stream=stream)

    # ------------------------------------------------------------------------------------------
    @cute.kernel
    def kernel(self, tma_w: cute.CopyAtom, mW: cute.Tensor, tma_x: cute.CopyAtom, mX: cute.Tensor,
               ws_ptr: cute.Pointer, xs_ptr: cute.Pointer, gsa_ptr: cute.Pointer,
               gsb_ptr: cute.Pointer, bias_ptr: cute.Pointer, out_ptr: cute.Pointer,
               work_ptr: cute.Pointer, count_ptr: cute.Pointer, m: cutlass.Int32,
               n: cutlass.Int32, k: cutlass.Int32, bias_on: cutlass.Int32, tiled_mma: cute.TiledMma,
               wd_layout: cute.ComposedLayout,
               xd_layout: cute.ComposedLayout, x_layout: cute.ComposedLayout,
               wp_layout: cute.Layout, xp_layout: cute.Layout, tx_bytes: cutlass.Constexpr,
               SharedStorage: cutlass.Constexpr):
        t = self.t
        kb_total = k // BLOCK
        tidx, _, _ = cute.arch.thread_idx()
        warp_idx = cute.arch.make_warp_uniform(cute.arch.warp_idx())
        bid_w, bid_x, bid_k = cute.arch.block_idx()

        if warp_idx == 0:
            cute.nvgpu.cpasync.prefetch_descriptor(tma_w)
            cute.nvgpu.cpasync.prefetch_descriptor(tma_x)

        smem = SmemAllocator()
        storage = smem.allocate(SharedStorage)
        num_warps = self.threads // 32
        pipe = pipeline.PipelineTmaAsync.create(
            barrier_storage=storage.bars.data_ptr(), num_stages=t.stages,
            producer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread),
            consumer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread, num_warps),
            tx_count=tx_bytes, cta_layout_vmnk=cute.make_layout((1, 1, 1, 1)))

        sWp = storage.sWp.get_tensor(wp_layout)
        sWd = storage.sWd.get_tensor(wd_layout.outer, swizzle=wd_layout.inner)
        if cutlass.const_expr(self.w4a4):
            sXp = storage.sXp.get_tensor(xp_layout)
            sXd = storage.sXd.get_tensor(xd_layout.outer, swizzle=xd_layout.inner)
            sXmma = sXd
        else:
            sX = storage.sX.get_tensor(x_layout.outer, swizzle=x_layout.inner)
            sXmma = sX

        # ---- K range of this CTA (split-K slice) -------------------------------------------------
        _, kt_begin, kt_count = k_slice(k, t.split_k, bid_k)

        # ---- TMA partitions ----------------------------------------------------------------------
        tWs, tWg = tma_tiles(tma_w, sWp, mW, (t.tile_w, PACKED_K), bid_w)
        if cutlass.const_expr(self.w4a4):
            tXs, tXg = tma_tiles(tma_x, sXp, mX, (t.tile_x, PACKED_K), bid_x)
        else:
            tXs, tXg = tma_tiles(tma_x, sX, mX, (t.tile_x, TILE_K), bid_x)

        # ---- MMA partitions ------------------------------------------------------------------------
        wg_idx = cute.arch.make_warp_uniform(tidx // 128)
        thr_mma_wg = tiled_mma.get_slice(wg_idx * 128)
        thr_mma = tiled_mma.get_slice(tidx)
        if cutlass.const_expr(t.swap_ab):
            tCrA = tiled_mma.make_fragment_A(thr_mma_wg.partition_A(sWd))
            tCrB = tiled_mma.make_fragment_B(thr_mma_wg.partition_B(sXmma))
        else:
            tCrA = tiled_mma.make_fragment_A(thr_mma_wg.partition_A(sXmma))
            tCrB = tiled_mma.make_fragment_B(thr_mma_wg.partition_B(sWd))

        mma_m, mma_n = t.mma_tile
        if cutlass.const_expr(t.swap_ab):
            c_shape = (n, m)
            c_coord = (bid_w, bid_x)
        else:
            c_shape = (m, n)
            c_coord = (bid_x, bid_w)
        cC = cute.local_tile(cute.make_identity_tensor(c_shape), (mma_m, mma_n), c_coord)
        tCcC = thr_mma.partition_C(cC)
        acc = cute.make_rmem_tensor(tCcC.shape, cutlass.Float32)
        acc.fill(0.0)
        # wgmma overwrites D unless told to accumulate; the accumulators start at zero instead.
        tiled_mma.set(cute.nvgpu.warpgroup.Field.ACCUMULATE, True)

        # ---- Dequantizer: threads/8 rows x 8 words per pass, 8 elements a thread ---------------------
        rows_per_pass = self.threads // 8
        deq_atom = cute.make_copy_atom(cute.nvgpu.CopyUniversalOp(), self.mma_dtype, num_bits_per_copy=128)
        deq_copy = cute.make_tiled_copy_tv(
            deq_atom, cute.make_layout((rows_per_pass, WORDS_K), stride=(WORDS_K, 1)), cute.make_layout((1, 8)))
        thr_deq = deq_copy.get_slice(tidx)
        tDsW = thr_deq.partition_D(sWd)  # ((8), tile_w / rows_per_pass, 1, 2)
        sWp32 = cute.recast_tensor(sWp, cutlass.Uint32)  # (tile_w, 8, stages)
        w_passes = t.tile_w // rows_per_pass
        my_row = tidx // WORDS_K
        my_word = tidx % WORDS_K
        mWs = cute.make_tensor(ws_ptr, scale_layout(n, k, self.layout))
        rWs = cute.make_rmem_tensor((2, w_passes), cutlass.Int32)  # two tiles in flight
        if cutlass.const_expr(self.w4a4):
            tDsX = thr_deq.partition_D(sXd)
            sXp32 = cute.recast_tensor(sXp, cutlass.Uint32)
            x_passes = t.tile_x // rows_per_pass
            mXs = cute.make_tensor(xs_ptr, scale_layout(m, k, self.layout))
            rXs = cute.make_rmem_tensor((2, x_passes), cutlass.Int32)

        # ---- Producer prologue: fill the ring ---------------------------------------------------------
        prod = pipeline.make_pipeline_state(pipeline.PipelineUserType.Producer, t.stages)
        if warp_idx == 0:
            for _ in cutlass.range(cutlass.min(t.stages, kt_count), unroll=1):
                load_stage(pipe, prod, kt_begin, ((tma_w, tWg, tWs), (tma_x, tXg, tXs)))
                prod.advance()

        read = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, t.stages)
        rel = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, t.stages)

        # Scales travel two K tiles ahead of their use, in two register sets (tile t uses set t % 2):
        # a global load then has two loop iterations to land.
        self.load_scales(mWs, rWs, 0, bid_w * t.tile_w, n, kt_begin, my_row, my_word, rows_per_pass, kb_total)
        self.load_scales(mWs, rWs, 1, bid_w * t.tile_w, n, kt_begin + 1, my_row, my_word, rows_per_pass, kb_total)
        if cutlass.const_expr(self.w4a4):
            self.load_scales(mXs, rXs, 0, bid_x * t.tile_x, m, kt_begin, my_row, my_word, rows_per_pass, kb_total)
            self.load_scales(mXs, rXs, 1, bid_x * t.tile_x, m, kt_begin + 1, my_row, my_word, rows_per_pass,
                             kb_total)
        pipe.consumer_wait(read)
        self.dequant(sWp32, tDsW, rWs, 0, read.index, 0, my_row, my_word, rows_per_pass, w_passes)
        if cutlass.const_expr(self.w4a4):
            self.dequant(sXp32, tDsX, rXs, 0, read.index, 0, my_row, my_word, rows_per_pass, x_passes)
        read.advance()
        self.load_scales(mWs, rWs, 0, bid_w * t.tile_w, n, kt_begin + 2, my_row, my_word, rows_per_pass, kb_total)
        if cutlass.const_expr(self.w4a4):
            self.load_scales(mXs, rXs, 0, bid_x * t.tile_x, m, kt_begin + 2, my_row, my_word, rows_per_pass,
                             kb_total)
        cute.arch.fence_proxy("async.shared", space="cta")
        cute.arch.sync_threads()

        # ---- Main loop ------------------------------------------------------------------------------
        # Iteration i issues the wgmmas of tile i, waits for those of tile i-1 (so its operand buffers
        # and pipeline stage are free), dequantizes tile i+1 while tile i's wgmmas run, and refills
        # the stage freed by tile i-1. The tensor cores stay fed as long as a dequantization is
        # shorter than a tile's wgmmas.
        num_k_blocks = cute.size(tCrA, mode=[2])
        mma_st = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, t.stages)
        # Unrolled by two so the operand buffer (i % 2) and the scale register set are static.
        for j in cutlass.range((kt_count + 1) // 2, unroll=1):
            for half in cutlass.range_constexpr(2):
                i = 2 * j + half
                if i < kt_count:
                    buf = half
                    nxt = 1 - half
                    x_idx = mma_st.index
                    if cutlass.const_expr(self.w4a4):
                        x_idx = buf
                    cute.nvgpu.warpgroup.fence()
                    for kb in cutlass.range_constexpr(num_k_blocks):
                        if cutlass.const_expr(t.swap_ab):
                            a_op, b_op = tCrA[(None, None, kb, buf)], tCrB[(None, None, kb, x_idx)]
                        else:
                            a_op, b_op = tCrA[(None, None, kb, x_idx)], tCrB[(None, None, kb, buf)]
                        cute.gemm(tiled_mma, acc, a_op, b_op, acc)
                    cute.nvgpu.warpgroup.commit_group()
                    mma_st.advance()
                    cute.nvgpu.warpgroup.wait_group(1)
                    if i > 0:
                        pipe.consumer_release(rel)
                        rel.advance()

                    if i + 1 < kt_count:
                        pipe.consumer_wait(read)
                        self.dequant(sWp32, tDsW, rWs, nxt, read.index, nxt, my_row, my_word, rows_per_pass,
                                     w_passes)
                        if cutlass.const_expr(self.w4a4):
                            self.dequant(sXp32, tDsX, rXs, nxt, read.index, nxt, my_row, my_word, rows_per_pass,
                                         x_passes)
                        read.advance()
                        self.load_scales(mWs, rWs, nxt, bid_w * t.tile_w, n, kt_begin + i + 3, my_row, my_word,
                                         rows_per_pass, kb_total)
                        if cutlass.const_expr(self.w4a4):
                            self.load_scales(mXs, rXs, nxt, bid_x * t.tile_x, m, kt_begin + i + 3, my_row,
                                             my_word, rows_per_pass, kb_total)

                    cute.arch.fence_proxy("async.shared", space="cta")
                    cute.arch.sync_threads()

                    # Refill only after a release (in iteration 0 nothing was freed: acquiring would deadlock).
                    if warp_idx == 0:
                        if i > 0 and prod.count < kt_count:
                            load_stage(pipe, prod, kt_begin, ((tma_w, tWg, tWs), (tma_x, tXg, tXs)))
                            prod.advance()
        cute.nvgpu.warpgroup.wait_group(0)

        # ---- Epilogue ----------------------------------------------------------------------------------
        alpha = cute.make_tensor(gsb_ptr, cute.make_layout(1))[0]
        if cutlass.const_expr(self.w4a4):
            alpha = alpha * cute.make_tensor(gsa_ptr, cute.make_layout(1))[0]
        store_tile(acc, tCcC, storage.flag.get_tensor(cute.make_layout(4)), swap_ab=t.swap_ab, split_k=t.split_k,
                   out_dtype=self.out_dtype, alpha=alpha, bias_on=bias_on, bias_ptr=bias_ptr, out_ptr=out_ptr,
                   work_ptr=work_ptr, count_ptr=count_ptr, m=m, n=n,
                   tile_id=bid_x * ((n + t.tile_w - 1) // t.tile_w) + bid_w, split_idx=bid_k, tidx=tidx,
                   acc_threads=self.threads, has_acc=True)

    # ------------------------------------------------------------------------------------------
    @cute.jit
    def load_scales(self, mS: cute.Tensor, rS: cute.Tensor, sset: cutlass.Constexpr, row0, rows, kt, my_row,
                    my_word, rows_per_pass: cutlass.Constexpr, kb_total):
        """Scales of this thread's chunks of K tile ``kt`` into registers (clamped in range).

        Rows past the end and K tiles past the end read a valid scale whose codes
        are zero (TMA fills out-of-range data with zeros) or whose rows are never stored.
        """
        kb = cutlass.min(kt * (TILE_K // BLOCK) + my_word // 2, kb_total - 1)
        for p in cutlass.range_constexpr(cute.size(rS, mode=[1])):
            r = cutlass.min(row0 + p * rows_per_pass + my_row, rows - 1)
            rS[(sset, p)] = cutlass.Int32(mS[(r, kb)])

    @cute.jit
    def dequant(self, sP32: cute.Tensor, tDs: cute.Tensor, rS: cute.Tensor, sset: cutlass.Constexpr, stage, buf, my_row,
                my_word, rows_per_pass: cutlass.Constexpr, passes: cutlass.Constexpr):
        """8 packed codes a thread and pass -> 8 BF16/FP16 values in the swizzled wgmma buffer."""
        bf16 = self.mma_dtype == cutlass.BFloat16
        for p in cutlass.range_constexpr(passes):
            word = cutlass.Uint32(sP32[(p * rows_per_pass + my_row, my_word, stage)])
            dst = tDs[(None, p, 0, buf)]
            frag = cute.make_rmem_tensor_like(dst, self.mma_dtype)
            words = cute.recast_tensor(frag, cutlass.Uint32)
            vals = fp4x8_to_16x8(word, scale_pair(cutlass.Uint32(rS[(sset, p)]), bf16), bf16)
            for q in cutlass.range_constexpr(4):
                words[q] = vals[q]
            cute.copy(deq_atom_for(self.mma_dtype), frag, dst)


def deq_atom_for(dtype):
    """A 16-byte universal copy atom (one vector store of 8 BF16/FP16 values)."""
    return cute.make_copy_atom(cute.nvgpu.CopyUniversalOp(), dtype, num_bits_per_copy=128)
