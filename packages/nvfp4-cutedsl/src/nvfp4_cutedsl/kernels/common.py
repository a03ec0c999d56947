"""Pieces both sm_90a kernels share: the CTA's split-K slice and TMA partitions."""

from __future__ import annotations

import cutlass
import cutlass.cute as cute

from ..tactics import TILE_K
from .scale_layout import scale_layout_spec

PACKED_K = TILE_K // 2  # bytes of packed codes per row per K tile


def k_slice(k, split_k: int, bid_k, tile_k: int = TILE_K):
    """(K tiles in all, first K tile of this CTA, K tiles of this CTA) for slice ``bid_k`` of ``split_k``."""
    k_tiles = (k + tile_k - 1) // tile_k
    per_split = (k_tiles + split_k - 1) // split_k
    kt_begin = bid_k * per_split
    return k_tiles, kt_begin, cutlass.min(k_tiles - kt_begin, per_split)


def tma_tiles(tma: cute.CopyAtom, smem: cute.Tensor, gmem: cute.Tensor, tile, block):
    """(shared, global) TMA partitions: ``smem`` stages, ``gmem`` cut in ``tile`` blocks, row block ``block``,
    indexed by K tile."""
    g = cute.local_tile(gmem, tile, (block, None))
    return cute.nvgpu.cpasync.tma_partition(
        tma, 0, cute.make_layout(1), cute.group_modes(smem, 0, 2), cute.group_modes(g, 0, 2))


def packed_weight_tma(w_ptr: cute.Pointer, n, k, tile_w: int, stages: int, tile_k: int = TILE_K):
    """The packed weight ``[N, K/2]`` bytes, its shared ring (``tile_w`` rows x ``tile_k / 2`` bytes a K tile,
    row-major, unswizzled) and the TMA atom that fills it: (ring layout, atom, TMA tensor)."""
    packed_k = tile_k // 2
    mW = cute.make_tensor(w_ptr, cute.make_layout((n, k // 2), stride=(k // 2, 1)))
    wp_layout = cute.make_layout((tile_w, packed_k, stages), stride=(packed_k, 1, tile_w * packed_k))
    tma_w, tma_mW = cute.nvgpu.cpasync.make_tiled_tma_atom(
        cute.nvgpu.cpasync.CopyBulkTensorTileG2SOp(), mW, cute.slice_(wp_layout, (None, None, 0)),
        (tile_w, packed_k))
    return wp_layout, tma_w, tma_mW


def load_stage(pipe, prod, kt_begin, copies) -> None:
    """Producer step: wait for the next free stage, TMA K tile ``kt_begin + prod.count`` of each
    ``(atom, global, shared)`` of ``copies`` into it and arm its barrier. The caller advances ``prod``
    (in its own loop body: the DSL tracks a state advanced there, not inside a helper)."""
    pipe.producer_acquire(prod)
    kt = kt_begin + prod.count
    for tma, src, dst in copies:
        cute.copy(tma, src[(None, kt)], dst[(None, prod.index)], tma_bar_ptr=pipe.producer_get_barrier(prod))
    pipe.producer_commit(prod)


def scale_layout(rows, k, layout: str) -> cute.Layout:
    """(row, k-block) -> offset of the E4M3 scale, for the linear or swizzled 128x4 layout."""
    shape, stride = scale_layout_spec(rows, k, layout)
    return cute.make_layout(shape, stride=stride)
