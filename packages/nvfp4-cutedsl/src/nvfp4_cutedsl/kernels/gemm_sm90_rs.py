"""NVFP4 GEMM for sm_90a in CuTe DSL with the weight as the register-sourced wgmma operand.

``out^T[N, M] = deq(w) @ x^T`` (the weight on the wgmma M side), FP32 accumulation; weight-only
(BF16/FP16 activations). Per CTA: ``tile_w / 64`` consumer warpgroups and one producer warp (a
producer warpgroup that hands its registers to the consumers when ``tile_x > 128``).

1. The producer warp issues TMA loads of the packed weight tile (``tile_w x tile_k / 2`` bytes) and of
   the activation tile (``tile_x x tile_k``, 128B-swizzled for wgmma) into a ``stages``-deep mbarrier ring
   (``tile_k`` 64 or 128, a tactic field).
2. Each consumer thread dequantizes exactly the wgmma A fragment it holds: for its two rows it reads
   the rows' ``tile_k / 2`` packed bytes from shared memory (16-byte loads), gathers byte ``lane % 4`` of each
   word (the K pairs the fragment layout gives it), and turns each byte into one BF16/FP16 register
   times its block multiplier (``decode.py``). The scales come from global memory two K tiles ahead.
3. wgmma (A from registers, B from shared memory) runs on tile ``i`` while the threads decode tile
   ``i + 1`` into the other register set. No CTA-wide barrier in the loop: a warpgroup only waits
   for its own TMA data, and frees a stage once its wgmmas on it retired.
4. Epilogue shared with the shared-memory kernel (``epilogue.py``).

Against ``gemm_sm90.py``: no dequantized copy in shared memory, no ``__syncthreads`` per K tile, and no
shared-memory bandwidth for the weight beyond the packed bytes.
"""

from __future__ import annotations

import cuda.bindings.driver as cuda
import cutlass
import cutlass.cute as cute
import cutlass.pipeline as pipeline
import cutlass.utils.hopper_helpers as sm90_utils
from cutlass.cute.nvgpu.warpgroup import OperandSource
from cutlass.memory import SmemAllocator
from cutlass.tensor_utils import LayoutEnum

from ..tactics import Sm90Tactic
from .common import k_slice, load_stage, packed_weight_tma, scale_layout, tma_tiles
from .decode import BF16_WEIGHT_LOG2, gather_sel
from .epilogue import store_tile
from .fp4_convert import fp4_pairs, gather4, scale_pairs

BLOCK = 16
PRODUCER_REGS = 40
CONSUMER_REGS = 232  # (2 * 232 + 40) * 128 <= 64K registers


class Sm90NVFP4GemmRS:
    """One compiled configuration: static formats, scale layout and tactic; M, N, K and bias are run-time."""

    def __init__(self, *, act: str, out_dtype, layout: str, tactic: Sm90Tactic):
        if act not in ("bf16", "fp16") or not tactic.swap_ab:
            raise ValueError(f"the register-sourced kernel is weight-only with swap_ab, got {act}, {tactic}")
        self.bf16 = act == "bf16"
        self.mma_dtype = cutlass.BFloat16 if self.bf16 else cutlass.Float16
        self.out_dtype = out_dtype
        self.layout = layout
        self.t = tactic
        self.consumer_warps = tactic.tile_w // 16
        self.producer_warp = self.consumer_warps  # the first warp after the consumers
        # A producer warpgroup hands its registers to two consumer warpgroups (setmaxnreg): 128 FP32
        # accumulators, two 16-register fragment sets and the decoder do not fit the 168 a thread of a
        # 384-thread CTA gets, and ptxas would serialise the wgmmas (wait after each) and spill.
        self.realloc = tactic.producer_warps == 4 and tactic.tile_w == 128
        self.threads = tactic.threads
        self.tile_k = tactic.tile_k
        self.packed_k = tactic.tile_k // 2  # bytes of packed codes per row per K tile
        self.pairs = tactic.tile_k // (2 * BLOCK)  # scale pairs (and gathered words) per row per K tile
        # The four lanes of a quad hold the same two rows, so they need the same 2 * pairs scale pairs: each lane
        # loads and converts a quarter of them and the quad shares the results by shuffle (as the cutlass
        # backend's wgmma kernel does), instead of every lane converting all of them: 11-16% fewer instructions
        # in the loop, 5-14% faster at M 16-256 on the H100 (results/h100-2026-12-08-shared-scales.txt).
        if (2 * self.pairs) % 4:
            raise ValueError(f"tile_k={tactic.tile_k}: the quad shares 2 * tile_k / 32 scale pairs in fours")
        self.own_pairs = 2 * self.pairs // 4
        self.mma_tiler = (tactic.tile_w, tactic.tile_x, tactic.tile_k)

    # ------------------------------------------------------------------------------------------
    @cute.jit
    def __call__(self, w_ptr: cute.Pointer, ws_ptr: cute.Pointer, x_ptr: cute.Pointer,
                 xs_ptr: cute.Pointer, gsa_ptr: cute.Pointer, gsb_ptr: cute.Pointer,
                 bias_ptr: cute.Pointer, out_ptr: cute.Pointer, work_ptr: cute.Pointer,
                 count_ptr: cute.Pointer, m: cutlass.Int32, n: cutlass.Int32, k: cutlass.Int32,
                 bias_on: cutlass.Int32, stream: cuda.CUstream):
        t = self.t
        k = cute.assume(k, divby=32)  # the caller guarantees it: TMA needs a 16-byte packed row pitch
        row_major = LayoutEnum.ROW_MAJOR  # K-major for both operands
        mX = cute.make_tensor(x_ptr, cute.make_layout((m, k), stride=(k, 1)))

        tiled_mma = sm90_utils.make_trivial_tiled_mma(
            self.mma_dtype, self.mma_dtype, row_major.sm90_mma_major_mode(),
            row_major.sm90_mma_major_mode(), cutlass.Float32, (t.tile_w // 64, 1, 1),
            tiler_mn=(64, t.tile_x), a_source=OperandSource.RMEM)

        x_layout = sm90_utils.make_smem_layout_b(row_major, self.mma_tiler, self.mma_dtype, t.stages)
        wp_layout, tma_w, tma_mW = packed_weight_tma(w_ptr, n, k, t.tile_w, t.stages, self.tile_k)
        tma_x, tma_mX = cute.nvgpu.cpasync.make_tiled_tma_atom(
            cute.nvgpu.cpasync.CopyBulkTensorTileG2SOp(), mX,
            cute.slice_(x_layout, (None, None, 0)), (t.tile_x, self.tile_k))
        tx_bytes = t.tile_w * self.packed_k + t.tile_x * self.tile_k * 2

        @cute.struct
        class SharedStorage:
            bars: cute.struct.MemRange[cutlass.Int64, t.stages * 2]
            flag: cute.struct.MemRange[cutlass.Int32, 4]
            sX: cute.struct.Align[cute.struct.MemRange[self.mma_dtype, cute.cosize(x_layout)], 1024]
            sWp: cute.struct.Align[cute.struct.MemRange[cutlass.Uint8, cute.cosize(wp_layout)], 128]

        grid_w = (n + t.tile_w - 1) // t.tile_w
        grid_x = (m + t.tile_x - 1) // t.tile_x
        self.kernel(tma_w, tma_mW, tma_x, tma_mX, ws_ptr, gsb_ptr, bias_ptr, out_ptr, work_ptr, count_ptr,
                    m, n, k, bias_on, tiled_mma, x_layout, wp_layout, tx_bytes, SharedStorage).launch(
            grid=[grid_w, grid_x, t.split_k], block=[self.threads, 1, 1], stream=stream)

    # ------------------------------------------------------------------------------------------
    @cute.kernel
    def kernel(self, tma_w: cute.CopyAtom, mW: cute.Tensor, tma_x: cute.CopyAtom, mX: cute.Tensor,
               ws_ptr: cute.Pointer, gsb_ptr: cute.Pointer, bias_ptr: cute.Pointer, out_ptr: cute.Pointer,
               work_ptr: cute.Pointer, count_ptr: cute.Pointer, m: cutlass.Int32, n: cutlass.Int32,
               k: cutlass.Int32, bias_on: cutlass.Int32, tiled_mma: cute.TiledMma,
               x_layout: cute.ComposedLayout, wp_layout: cute.Layout, tx_bytes: cutlass.Constexpr,
               SharedStorage: cutlass.Constexpr):
        t = self.t
        kb_total = k // BLOCK
        tidx, _, _ = cute.arch.thread_idx()
        warp_idx = cute.arch.make_warp_uniform(cute.arch.warp_idx())
        lane = tidx % 32
        bid_w, bid_x, bid_k = cute.arch.block_idx()
        _, kt_begin, kt_count = k_slice(k, t.split_k, bid_k, self.tile_k)

        if warp_idx == self.producer_warp:
            cute.nvgpu.cpasync.prefetch_descriptor(tma_w)
            cute.nvgpu.cpasync.prefetch_descriptor(tma_x)

        smem = SmemAllocator()
        storage = smem.allocate(SharedStorage)
        pipe = pipeline.PipelineTmaAsync.create(
            barrier_storage=storage.bars.data_ptr(), num_stages=t.stages,
            producer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread),
            consumer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread, self.consumer_warps),
            tx_count=tx_bytes, cta_layout_vmnk=cute.make_layout((1, 1, 1, 1)))
        sWp = storage.sWp.get_tensor(wp_layout)
        sX = storage.sX.get_tensor(x_layout.outer, swizzle=x_layout.inner)

        flag = storage.flag.get_tensor(cute.make_layout(4))
        alpha = cute.make_tensor(gsb_ptr, cute.make_layout(1))[0]
        if cutlass.const_expr(self.bf16):
            alpha = alpha * cutlass.Float32(2.0 ** BF16_WEIGHT_LOG2)  # the decoder's weights are 2^-8 too small
        epilogue = dict(swap_ab=True, split_k=t.split_k, out_dtype=self.out_dtype, alpha=alpha, bias_on=bias_on,
                        bias_ptr=bias_ptr, out_ptr=out_ptr, work_ptr=work_ptr, count_ptr=count_ptr, m=m, n=n,
                        tile_id=bid_x * ((n + t.tile_w - 1) // t.tile_w) + bid_w, split_idx=bid_k, tidx=tidx,
                        acc_threads=self.consumer_warps * 32)

        if warp_idx >= self.producer_warp:
            # ---- Producer: keep the ring full ---------------------------------------------------------
            if cutlass.const_expr(self.realloc):
                cute.arch.warpgroup_reg_dealloc(PRODUCER_REGS)
            if warp_idx == self.producer_warp:
                tWs, tWg = tma_tiles(tma_w, sWp, mW, (t.tile_w, self.packed_k), bid_w)
                tXs, tXg = tma_tiles(tma_x, sX, mX, (t.tile_x, self.tile_k), bid_x)
                prod = pipeline.make_pipeline_state(pipeline.PipelineUserType.Producer, t.stages)
                for _ in cutlass.range(kt_count, unroll=1):
                    load_stage(pipe, prod, kt_begin, ((tma_w, tWg, tWs), (tma_x, tXg, tXs)))
                    prod.advance()
            store_tile(None, None, flag, has_acc=False, **epilogue)  # the split-K path synchronises the CTA
        else:
            # ---- Consumers --------------------------------------------------------------------------------
            if cutlass.const_expr(self.realloc):
                cute.arch.warpgroup_reg_alloc(CONSUMER_REGS)
            thr_mma = tiled_mma.get_slice(tidx)
            cC = cute.local_tile(cute.make_identity_tensor((n, m)), (t.tile_w, t.tile_x), (bid_w, bid_x))
            tCcC = thr_mma.partition_C(cC)
            acc = cute.make_rmem_tensor(tCcC.shape, cutlass.Float32)
            acc.fill(0.0)
            wg_idx = cute.arch.make_warp_uniform(tidx // 128)
            thr_mma_wg = tiled_mma.get_slice(wg_idx * 128)
            tCrB = tiled_mma.make_fragment_B(thr_mma_wg.partition_B(sX))
            tCcA = thr_mma.partition_A(cute.make_identity_tensor((t.tile_w, self.tile_k)))
            # Two register sets of the A fragment: tile i decodes into set i % 2 while set (i-1) % 2 feeds wgmma.
            frag0 = cute.make_rmem_tensor(tCcA.shape, self.mma_dtype)
            frag1 = cute.make_rmem_tensor(tCcA.shape, self.mma_dtype)
            tiled_mma.set(cute.nvgpu.warpgroup.Field.ACCUMULATE, True)

            # This thread's rows: r and r + 8 of its warp's 16 (the fragment layout), K pairs of byte t.
            lrow = warp_idx * 16 + lane // 4
            sel = gather_sel(cutlass.Uint32(lane % 4))
            ws_layout = scale_layout(n, k, self.layout)
            mWs16 = cute.make_tensor(cute.recast_ptr(ws_ptr, dtype=cutlass.Uint16), cute.make_layout(1 << 30))
            # Byte offsets of the thread's two rows' scales at K block 0 (rows past N read row N - 1).
            rbase0 = cute.crd2idx((cutlass.min(bid_w * t.tile_w + lrow, n - 1), 0), ws_layout)
            rbase1 = cute.crd2idx((cutlass.min(bid_w * t.tile_w + lrow + 8, n - 1), 0), ws_layout)
            # [set][this lane's share u]: the quad's scale pair j = 4u + lane % 4 (row j // pairs, pair j % pairs)
            rS = cute.make_rmem_tensor((2, self.own_pairs), cutlass.Uint32)
            sWp32 = cute.recast_tensor(sWp, cutlass.Uint32)  # (tile_w, tile_k / 8, stages)

            self.load_scales(ws_layout, mWs16, rS, 0, rbase0, rbase1, kt_begin, kb_total, lane)
            self.load_scales(ws_layout, mWs16, rS, 1, rbase0, rbase1, kt_begin + 1, kb_total, lane)
            read = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, t.stages)
            rel = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, t.stages)
            num_k_blocks = cute.size(frag0, mode=[2])
            # Unrolled by two so the register set and the scale set are static.
            for j in cutlass.range((kt_count + 1) // 2, unroll=1):
                for half in cutlass.range_constexpr(2):
                    i = 2 * j + half
                    frag = frag0 if half == 0 else frag1
                    if i < kt_count:
                        pipe.consumer_wait(read)
                        stage = read.index
                        self.decode(sWp32, frag, rS, half, lrow, stage, sel, lane)
                        self.load_scales(ws_layout, mWs16, rS, half, rbase0, rbase1, kt_begin + i + 2, kb_total,
                                         lane)
                        cute.nvgpu.warpgroup.fence()
                        for kb in cutlass.range_constexpr(num_k_blocks):
                            cute.gemm(tiled_mma, acc, frag[(None, None, kb)], tCrB[(None, None, kb, stage)], acc)
                        cute.nvgpu.warpgroup.commit_group()
                        read.advance()
                        # Tile i-1's wgmmas retired: its stage is free (and its register set may be reused).
                        cute.nvgpu.warpgroup.wait_group(1)
                        if i > 0:
                            pipe.consumer_release(rel)
                            rel.advance()
            cute.nvgpu.warpgroup.wait_group(0)
            store_tile(acc, tCcC, flag, has_acc=True, **epilogue)

    # ------------------------------------------------------------------------------------------
    @cute.jit
    def load_scales(self, ws_layout: cute.Layout, mS16: cute.Tensor, rS: cute.Tensor, sset: cutlass.Constexpr,
                    rbase0, rbase1, kt, kb_total, lane):
        """This lane's share of the quad's scales in K tile ``kt``, as 16-bit pairs: pair j = 4u + lane % 4
        of the quad's 2 * pairs (row r's pairs, then row r + 8's).

        K/16 is even, so a pair (2j, 2j+1) is 2-byte aligned in both layouts. Pairs past the end of K
        read the last pair: their codes are TMA's zero fill, so any finite scale gives zero.
        """
        for u in cutlass.range_constexpr(self.own_pairs):
            j = 4 * u + lane % 4
            rbase = rbase0 + (rbase1 - rbase0) * (j // self.pairs)  # j < 2 * pairs: row r or row r + 8
            p = j % self.pairs
            kb = cutlass.min(kt * (self.tile_k // BLOCK) + 2 * p, kb_total - 2)
            koff = cute.crd2idx((0, kb), ws_layout)
            rS[(sset, u)] = cutlass.Uint32(mS16[(rbase + koff) >> 1])

    @cute.jit
    def decode(self, sP32: cute.Tensor, frag: cute.Tensor, rS: cute.Tensor, sset: cutlass.Constexpr, lrow,
               stage, sel, lane):
        """This thread's A fragment of one K tile: rows lrow and lrow + 8, K pairs of byte ``lane % 4``.

        Fragment registers per 16-wide K block kb (the SM90 RS layout): 4*kb + 0 (row r, K 2t..2t+1),
        + 1 (row r+8, same K), + 2 (row r, K 2t+8..), + 3 (row r+8, K 2t+8..).
        """
        f32 = cute.recast_tensor(frag, cutlass.Uint32)
        # this lane's share of the quad's block multipliers, then every pair's from the lane that converted it
        own = cute.make_rmem_tensor((self.own_pairs, 2), cutlass.Uint32)
        for u in cutlass.range_constexpr(self.own_pairs):
            s_a, s_b = scale_pairs(rS[(sset, u)], self.bf16)
            own[(u, 0)] = s_a
            own[(u, 1)] = s_b
        quad = lane - lane % 4
        for h in cutlass.range_constexpr(2):  # row r, row r + 8
            words = cute.make_rmem_tensor((self.packed_k // 4,), cutlass.Uint32)
            cute.autovec_copy(sP32[(lrow + 8 * h, None, stage)], words)
            for q in cutlass.range_constexpr(self.pairs):  # K blocks 2q, 2q + 1: words 4q .. 4q + 3
                g = gather4(words[4 * q], words[4 * q + 1], words[4 * q + 2], words[4 * q + 3], sel)
                j = self.pairs * h + q  # the quad's pair j: lane j % 4 converted it, as its share j // 4
                s_a = cute.arch.shuffle_sync(own[(j // 4, 0)], quad + j % 4)
                s_b = cute.arch.shuffle_sync(own[(j // 4, 1)], quad + j % 4)
                v = fp4_pairs(g, s_a, s_b, self.bf16)
                # byte 0: block 2q, K 2t..; 1: block 2q, K 2t+8..; 2, 3: block 2q + 1
                f32[8 * q + h] = v[0]
                f32[8 * q + 2 + h] = v[1]
                f32[8 * q + 4 + h] = v[2]
                f32[8 * q + 6 + h] = v[3]
