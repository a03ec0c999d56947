"""The epilogue both sm_90a kernels share: alpha, bias, cast, predicated stores, split-K reduction."""

from __future__ import annotations

import cutlass
import cutlass.cute as cute

#: Accumulators whose bias values ``_store`` loads together, ahead of their stores.
_BIAS_GROUP = 16


@cute.jit
def store_tile(acc, tCcC, sflag: cute.Tensor, *, swap_ab: cutlass.Constexpr,
               split_k: cutlass.Constexpr, out_dtype: cutlass.Constexpr, alpha: cutlass.Float32,
               bias_on: cutlass.Int32, bias_ptr: cute.Pointer, out_ptr: cute.Pointer,
               work_ptr: cute.Pointer, count_ptr: cute.Pointer, m: cutlass.Int32, n: cutlass.Int32,
               tile_id: cutlass.Int32, split_idx: cutlass.Int32, tidx: cutlass.Int32,
               acc_threads: cutlass.Constexpr, has_acc: cutlass.Constexpr):
    """``out = cast(alpha * acc + bias)`` for this thread's accumulators. Every thread of the CTA calls
    this (the split-K path synchronises the CTA); those without accumulators (a producer warp) pass
    ``has_acc=False`` and ``None`` for ``acc`` and ``tCcC``. The first ``acc_threads`` threads hold the
    accumulators, the same number each.

    With ``split_k > 1`` each CTA of an output tile stores its FP32 partial tile in the workspace in
    fragment order (register ``j`` of thread ``t`` at ``j * acc_threads + t``: every store instruction of a
    warp writes 128 contiguous bytes, and no atomics), then counts itself in on the tile's counter. The
    last to arrive adds the partials of slices 0, 1, ... in that order, so the result does not depend on
    which CTA finished last, applies the epilogue and resets the counter. The partials need no clearing:
    every launch rewrites the ones it reads.
    """
    if cutlass.const_expr(split_k == 1):
        if cutlass.const_expr(has_acc):
            _store(acc, tCcC, swap_ab, out_dtype, alpha, bias_on, bias_ptr, out_ptr, m, n)
    else:
        if cutlass.const_expr(has_acc):
            mPart = _partials(acc, work_ptr, tile_id, split_k, acc_threads)
            for j in cutlass.range_constexpr(cute.size(acc)):
                mPart[(j, tidx, split_idx)] = acc[j]
        if last_to_arrive(count_ptr, tile_id, split_k, sflag, tidx):
            if cutlass.const_expr(has_acc):
                mPart = _partials(acc, work_ptr, tile_id, split_k, acc_threads)
                for j in cutlass.range_constexpr(cute.size(acc)):
                    v = cutlass.Float32(0.0)
                    for s in cutlass.range_constexpr(split_k):
                        v = v + mPart[(j, tidx, s)]
                    acc[j] = v
                _store(acc, tCcC, swap_ab, out_dtype, alpha, bias_on, bias_ptr, out_ptr, m, n)


@cute.jit
def last_to_arrive(count_ptr: cute.Pointer, tile_id: cutlass.Int32, split_k: cutlass.Constexpr,
                   sflag: cute.Tensor, tidx: cutlass.Int32):
    """Split-K arrival, called by every thread of the CTA after it stored its partials: True in the CTA that
    arrives last on the tile's counter (its reads of the other slices' partials are ordered after their
    stores). That CTA's thread 0 has already reset the counter for the next launch (CUDA-graph replays
    included): every other slice has arrived, so nothing else touches it in this launch."""
    cute.arch.fence_acq_rel_gpu()
    cute.arch.sync_threads()
    if tidx == 0:
        done = cute.arch.atomic_add(count_ptr + tile_id, cutlass.Int32(1), sem="acq_rel", scope="gpu")
        sflag[0] = done
        if done == split_k - 1:
            cute.make_tensor(count_ptr + tile_id, cute.make_layout(1))[0] = cutlass.Int32(0)
    cute.arch.sync_threads()
    last = sflag[0] == split_k - 1
    if last:
        cute.arch.fence_acq_rel_gpu()
    return last


@cute.jit
def _partials(acc, work_ptr: cute.Pointer, tile_id: cutlass.Int32, split_k: cutlass.Constexpr,
              acc_threads: cutlass.Constexpr) -> cute.Tensor:
    """This tile's partials in the workspace as (register, thread, slice); the tile's base offset fits in
    32 bits (``tactics.split_k_partials`` keeps the whole workspace below 2^31 floats)."""
    tile_elems = acc_threads * cute.size(acc)
    layout = cute.make_layout((cute.size(acc), acc_threads, split_k), stride=(acc_threads, 1, tile_elems))
    return cute.make_tensor(work_ptr + tile_id * (split_k * tile_elems), layout)


@cute.jit
def _store(acc, tCcC, swap_ab: cutlass.Constexpr, out_dtype: cutlass.Constexpr, alpha: cutlass.Float32,
           bias_on: cutlass.Int32, bias_ptr: cute.Pointer, out_ptr: cute.Pointer, m: cutlass.Int32,
           n: cutlass.Int32):
    """Predicated ``out = cast(alpha * acc + bias)`` of this thread's accumulators.

    The bias values of a group of accumulators are loaded before the group's stores: a load after a store
    may read what that store wrote (bias and out are both plain pointers), so with each load next to its
    store every accumulator's bias waited for its own L2 round trip (SASS of the 64-wide tile: 32 LDG, FADD,
    STG in turn; 2026-12-07). Groups of ``_BIAS_GROUP`` keep the registers this takes small (all 128
    accumulators of the 128 x 256 tile at once spilled)."""
    mOut = cute.make_tensor(out_ptr, cute.make_layout((m, n), stride=(n, 1)))
    mBias = cute.make_tensor(bias_ptr, cute.make_layout((n,)))
    size = cute.size(acc)
    for j0 in cutlass.range_constexpr(0, size, _BIAS_GROUP):
        group = range(j0, min(j0 + _BIAS_GROUP, size))
        bias = []
        for j in group:
            _, col = _out_coord(tCcC[j], swap_ab)
            b = cutlass.Float32(0.0)
            if bias_on != 0:
                if col < n:
                    b = mBias[col].to(cutlass.Float32)
            bias.append(b)
        for j in group:
            row, col = _out_coord(tCcC[j], swap_ab)
            if cute.elem_less((row, col), (m, n)):
                v = acc[j] * alpha
                if bias_on != 0:
                    v = v + bias[j - j0]
                mOut[(row, col)] = v.to(out_dtype)


def _out_coord(crd, swap_ab: bool):
    """(row of out, column of out) of an accumulator coordinate."""
    if swap_ab:
        return crd[1], crd[0]
    return crd[0], crd[1]
