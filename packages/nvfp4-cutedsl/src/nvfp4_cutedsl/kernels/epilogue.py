"""The epilogue both sm_90a kernels share: alpha, bias, cast, predicated stores, split-K reduction."""

from __future__ import annotations

import cutlass
import cutlass.cute as cute


@cute.jit
def store_tile(acc, tCcC, sflag: cute.Tensor, *, swap_ab: cutlass.Constexpr,
               split_k: cutlass.Constexpr, out_dtype: cutlass.Constexpr, alpha: cutlass.Float32,
               bias_on: cutlass.Int32, bias_ptr: cute.Pointer, out_ptr: cute.Pointer,
               work_ptr: cute.Pointer, count_ptr: cute.Pointer, m: cutlass.Int32, n: cutlass.Int32,
               tile_id: cutlass.Int32, tidx: cutlass.Int32, has_acc: cutlass.Constexpr):
    """``out = cast(alpha * acc + bias)`` for this thread's accumulators. Every thread of the CTA calls
    this (the split-K path synchronises the CTA); those without accumulators (a producer warp) pass
    ``has_acc=False`` and ``None`` for ``acc`` and ``tCcC``.

    With ``split_k > 1`` the CTAs of one output tile add FP32 partials into the workspace; the last to
    arrive on the tile's counter applies the epilogue and zeroes the workspace and counter again.
    """
    mOut = cute.make_tensor(out_ptr, cute.make_layout((m, n), stride=(n, 1)))
    mBias = cute.make_tensor(bias_ptr, cute.make_layout((n,)))
    n_acc = cute.size(acc) if has_acc else 0
    if cutlass.const_expr(split_k == 1):
        if cutlass.const_expr(has_acc):
            for j in cutlass.range_constexpr(n_acc):
                row, col = _out_coord(tCcC[j], swap_ab)
                if cute.elem_less((row, col), (m, n)):
                    v = acc[j] * alpha
                    if bias_on != 0:
                        v = v + mBias[col].to(cutlass.Float32)
                    mOut[(row, col)] = v.to(out_dtype)
    else:
        mWork = cute.make_tensor(work_ptr, cute.make_layout((m, n), stride=(n, 1)))
        if cutlass.const_expr(has_acc):
            for j in cutlass.range_constexpr(n_acc):
                row, col = _out_coord(tCcC[j], swap_ab)
                if cute.elem_less((row, col), (m, n)):
                    cute.arch.atomic_add(mWork.iterator + (row * n + col), acc[j])
        cute.arch.fence_acq_rel_gpu()
        cute.arch.sync_threads()
        if tidx == 0:
            done = cute.arch.atomic_add(count_ptr + tile_id, cutlass.Int32(1), sem="acq_rel", scope="gpu")
            sflag[0] = done
        cute.arch.sync_threads()
        if sflag[0] == split_k - 1:
            cute.arch.fence_acq_rel_gpu()
            if cutlass.const_expr(has_acc):
                for j in cutlass.range_constexpr(n_acc):
                    row, col = _out_coord(tCcC[j], swap_ab)
                    if cute.elem_less((row, col), (m, n)):
                        p = mWork.iterator + (row * n + col)
                        v = cute.arch.atomic_add(p, cutlass.Float32(0.0)) * alpha
                        mWork[(row, col)] = cutlass.Float32(0.0)
                        if bias_on != 0:
                            v = v + mBias[col].to(cutlass.Float32)
                        mOut[(row, col)] = v.to(out_dtype)
            if tidx == 0:
                cute.make_tensor(count_ptr + tile_id, cute.make_layout(1))[0] = cutlass.Int32(0)


def _out_coord(crd, swap_ab: bool):
    """(row of out, column of out) of an accumulator coordinate."""
    if swap_ab:
        return crd[1], crd[0]
    return crd[0], crd[1]
