"""How the sm_90a GEMM kernels can run a problem: the tactic dataclass and the one validity function.

The kernels compute ``D^T = W x X^T``: each warp owns ``warp_rows`` weight rows (16, or 32 for the cp.async
kernel at tile_m <= 16, where the two 16-row groups share the warp's activation reads), each CTA
``tile_n = warp_rows * warps`` of them and ``tile_m`` activation rows; ``split_k`` CTAs share a tile's K range
(the last reduces the FP32 partials); ``unroll`` 128-wide K chunks have their loads in flight before the first
is decoded; with
``stages = 2`` the next ``unroll`` chunks load while the current ones are decoded and multiplied, and with
``stages >= 3`` the weights stream through a per-warp cp.async ring of that many shared-memory stages
(K must then be a multiple of 128).

``wgmma = False`` runs ``mma.sync`` (m16n8k16) kernels, built for decode-sized M. ``wgmma = True`` runs the
warpgroup kernel (csrc/gemm_sm90_wgmma.cuh): each 4 warps issue ``wgmma.m64n{tile_m}k16`` with the decoded
weight as the register operand and the activation tile read by the tensor cores from shared memory; it needs
the cp.async ring (stages >= 3), warps in whole warpgroups, and split_k = 1 for tile_m = 256. Its 8- and
16-wide tiles serve decode sizes too: at M = 16 the activations then cost no per-warp register traffic.

``tma_m1 = True`` runs the M = 1 kernel (csrc/gemm_sm90_tma.cuh): each warp's weights and scales arrive by TMA
(two 2D boxes a stage of ``unroll`` chunks, ``stages`` deep) and the CTA stages its K slice of the activation row
in shared memory once (W4A4: decoded to FP16 on the way, or already FP16 with ``act_fp16``). It needs M = 1,
linear scales, K % 256 == 0 and split-K slices of an even number of chunks, at most TMA_M1_MAX_SLICE_CHUNKS.

``gemv = True`` runs the M = 1 kernel that reads whole weight rows (csrc/gemm_sm90_gemv.cuh): each warp owns
``warp_rows`` (2-8, in pairs) rows, each lane 16 consecutive bytes of them a 1024-wide K step, and mma.sync multiplies
them with the matching activations on the diagonal of the MMA (D[i][i] sums one row's products). The weights
load into a register ring of ``unroll`` steps (``stages`` is 1). It needs M = 1, K % 32 == 0 and split-K slices of
at most GEMV_MAX_SLICE_CHUNKS chunks (the CTA stages the slice's activations).

``act_fp16 = True`` (W4A4 only) first dequantizes the NVFP4 activation to FP16 in one pass (E2M1 x E4M3 is exact
in FP16; the global scale goes into alpha) and then runs the FP16 weight-only kernel of the same configuration:
the same products, but the activations are decoded once instead of once for every weight tile that reads them,
which is what bounds W4A4 from M = 64 on. It costs an extra launch and M x K x 2 bytes of scratch, so it is
offered first from M = 33 on and after the in-kernel decode below that; the tuner decides.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from nvfp4.problem import GemmProblem

#: K columns a warp covers per loop step (each of its 32 threads holds 32 consecutive values of two rows).
K_CHUNK = 128
#: Streaming multiprocessors the split heuristic assumes when the caller does not give the device's count
#: (the H100 and H200 SXM this was tuned on both have 132; an H100 PCIe has 114).
SM_COUNT = 132
#: Resident warps per SM the split-K heuristic aims for: 16 for the lean tile_m=8 kernels, 8 for wider tiles
#: (their registers allow fewer); measured best on the H100 (scripts/bench.py sweeps the neighbours).
TARGET_WARPS_PER_SM = {8: 16, 16: 8, 32: 8, 64: 8, 128: 8, 256: 8}
#: The same for the wgmma kernel's 8- and 16-wide tiles: with four A register sets in flight their best split-K
#: doubled (H200, microbench, M = 16: 4 or 8 where it was 1 or 2; 8192x8192 two sets best at split 2, 34.5 us,
#: four sets at split 4, 29.8 us).
WGMMA_NARROW_TARGET_WARPS_PER_SM = 16
#: Kernel families in a configuration's fifth field (csrc/kernels.h GemmKernel).
KERNEL_MMA_SYNC, KERNEL_WGMMA, KERNEL_TMA_M1, KERNEL_GEMV = 0, 1, 2, 3
#: Configurations every build compiles (tile_m, warps, unroll, stages, kernel, warp_rows); CI builds only these.
BASE_CONFIGS = frozenset({(8, 4, 2, 1, 0, 16), (16, 4, 2, 1, 0, 16), (32, 4, 1, 1, 0, 16), (64, 4, 1, 1, 0, 16),
                          (8, 8, 1, 4, 0, 16), (8, 4, 1, 8, 0, 16), (16, 4, 1, 4, 0, 16), (32, 4, 1, 4, 0, 16),
                          (64, 8, 1, 4, 0, 16), (64, 4, 1, 4, 1, 16), (128, 8, 1, 4, 1, 16), (256, 8, 1, 3, 1, 16),
                          (8, 4, 1, 4, 0, 32), (16, 4, 1, 4, 0, 32), (16, 4, 1, 4, 1, 16), (8, 4, 4, 3, 2, 16),
                          (8, 8, 1, 1, 3, 4), (8, 8, 2, 1, 3, 4), (8, 4, 1, 1, 3, 4), (8, 8, 2, 1, 3, 2)})
#: From this many stages on, the weights stream through a cp.async shared-memory ring (whole 128-wide chunks).
CP_ASYNC_STAGES = 3
TILE_MS = (8, 16, 32, 64, 128, 256)
MAX_SPLIT_K = 64
#: Heuristic order per M bucket (first compiled and valid one wins), from the H100 sweeps of 2026-11-25
#: (scripts/microbench.cu). 32 weight rows a warp (H200, 2026-11-30) win on the large layers at M = 8-16
#: (57344x8192, M = 16: 186.7 -> 142.9 us) and lose on the small ones (6144x4096: 21.5 -> 24.5 us), so they come
#: second and the tuner decides. Up to M = 32 the mma.sync kernels win (tile_m >= 32 stage the activation tile in
#: shared memory); from M = 64 on the wgmma kernel does (8192x8192: M=64 64 -> 56 us, M=256 143 -> 93 us,
#: M=1024 560 -> 266 us).
#: The 16-wide wgmma tile (H200, 2026-12-01) wins M = 16 on the small layers (8192x8192 37.8 -> 30.0 us,
#: 6144x4096 21.3 -> 17.5 us) and loses narrowly to the 32-row mma.sync warps on the large ones (57344x8192
#: 140.2 against 141.0 us, 8192x28672 79.7 against 84.7). With four A register sets in flight (2026-12-01) it won
#: those too (57344x8192 136.8 against 140.7 us, 8192x28672 75.1 against 88.8): it comes first at every size.
#: The TMA M = 1 kernel (H200, 2026-12-01, microbench, best split) against (8, 8, 1, 4, 0, 16): 8192x8192 24.3 ->
#: 22.3 us, 57344x8192 106.8 -> 93.7, 8192x28672 56.4 -> 52.7, 6144x4096 14.9 -> 14.9.
#: The row GEMV (H200, 2026-12-01, microbench, best split) against the TMA kernel: 8192x8192 21.9 -> 19.0 us,
#: 6144x4096 14.1 -> 11.3, 57344x8192 and 8192x28672 within the run-to-run spread (results/h200-2026-12-01-gemv.txt);
#: it comes first at M = 1 and the TMA kernel stays a candidate.
PREFERRED = {
    8: ((8, 8, 1, 1, 3, 4), (8, 8, 2, 1, 3, 4), (8, 4, 1, 1, 3, 4), (8, 8, 2, 1, 3, 2), (8, 4, 4, 3, 2, 16),
        (8, 8, 1, 4, 0, 16), (8, 4, 1, 4, 0, 32), (8, 4, 1, 4, 0, 16), (8, 4, 1, 8, 0, 16),
        (8, 4, 2, 1, 0, 16), (8, 4, 1, 4, 1, 16)),
    16: ((16, 4, 1, 4, 1, 16), (16, 4, 1, 4, 0, 16), (16, 4, 1, 4, 0, 32), (16, 4, 1, 6, 0, 16),
         (16, 4, 2, 1, 0, 16)),
    32: ((32, 8, 1, 4, 0, 16), (32, 4, 1, 4, 0, 16), (32, 4, 1, 1, 0, 16)),
    64: ((64, 4, 1, 4, 1, 16), (64, 8, 1, 4, 1, 16), (64, 4, 1, 4, 0, 16), (64, 8, 1, 3, 0, 16)),
    256: ((128, 8, 1, 4, 1, 16), (128, 4, 1, 4, 1, 16), (256, 8, 1, 3, 1, 16), (64, 8, 1, 4, 1, 16),
          (64, 8, 1, 3, 0, 16)),
    None: ((256, 8, 1, 3, 1, 16), (128, 8, 1, 4, 1, 16), (128, 8, 1, 3, 0, 16), (64, 8, 1, 4, 0, 16)),
}
#: tile_m values of the wgmma kernel (its instruction's N).
WGMMA_TILE_MS = (8, 16, 64, 128, 256)
#: Longest split-K slice of the TMA M = 1 kernel, in chunks: the CTA stages the slice's activations (48 KiB).
TMA_M1_MAX_SLICE_CHUNKS = 192
#: Resident warps per SM the split heuristic aims for with the TMA M = 1 kernel (its rings and activation slice
#: allow about 12; split 2 measured best on the large layers).
TMA_M1_TARGET_WARPS_PER_SM = 8
#: Longest split-K slice of the row GEMV, in chunks: the CTA stages the slice's activations (48 KiB).
GEMV_MAX_SLICE_CHUNKS = 192
#: Resident warps per SM the split heuristic aims for with the row GEMV.
GEMV_TARGET_WARPS_PER_SM = 16
#: Weight rows a warp may own in the row GEMV (pairs: the two halves of an MMA's rows; 6 and 8 in ALL_TACTICS builds).
GEMV_WARP_ROWS = (2, 4, 6, 8)
#: From this M on, W4A4 problems list the act_fp16 tactics (dequantize the activation once, then FP16) first.
ACT_FP16_FIRST_M = 33


@dataclass(frozen=True)
class CutlassTactic:
    tile_m: int  # activation rows per CTA: 8 per MMA tile, 1..8 tiles a warp
    tile_n: int  # weight rows per CTA: warp_rows per warp
    split_k: int  # CTAs along K per output tile
    unroll: int  # 128-wide K chunks loaded before decoding
    stages: int = 1  # 2: register double buffering; >= 3: depth of the cp.async shared-memory ring
    wgmma: bool = False  # the warpgroup-MMA kernel (tile_n = 64 per warpgroup) instead of mma.sync
    warp_rows: int = 16  # weight rows a warp owns: 16, or 32 (two row groups sharing the activation reads)
    act_fp16: bool = False  # W4A4: dequantize the activation to FP16 first, then run the FP16 kernel
    tma_m1: bool = False  # the M = 1 kernel with TMA-fed weights (unroll: chunks a stage)
    gemv: bool = False  # the M = 1 kernel reading whole weight rows (unroll: 1024-wide K steps in flight)

    @property
    def warps(self) -> int:
        return self.tile_n // self.warp_rows

    @property
    def kernel(self) -> int:
        if self.gemv:
            return KERNEL_GEMV
        return KERNEL_TMA_M1 if self.tma_m1 else KERNEL_WGMMA if self.wgmma else KERNEL_MMA_SYNC

    @property
    def config(self) -> tuple[int, int, int, int, int, int]:
        return (self.tile_m, self.warps, self.unroll, self.stages, self.kernel, self.warp_rows)


def k_chunks(k: int) -> int:
    return -(-k // K_CHUNK)


def chunks_per_split(k: int, split_k: int) -> int:
    return -(-k_chunks(k) // split_k)


def _normalized_split(k: int, split: int) -> int:
    """The split actually run: every slice gets at least one chunk, none is empty."""
    split = max(1, min(split, k_chunks(k), MAX_SPLIT_K))
    return -(-k_chunks(k) // chunks_per_split(k, split))


def _even_slices(k: int, split: int) -> int:
    """The nearest split at or below ``split`` whose slices have an even number of chunks (the TMA kernel's rule)."""
    for s in range(_normalized_split(k, split), 1, -1):
        if chunks_per_split(k, s) % 2 == 0 and _normalized_split(k, s) == s:
            return s
    return 1


def _fitting_slices(k: int, split: int, most_chunks: int) -> int:
    """``split``, raised until every slice has at most ``most_chunks`` chunks (kernels that stage a slice)."""
    split = _normalized_split(k, split)
    while chunks_per_split(k, split) > most_chunks and split < MAX_SPLIT_K:
        split = _normalized_split(k, split + 1)
    return split


def heuristic_split(problem: GemmProblem, tile_m: int, tile_n: int, warps: int, sm_count: int = SM_COUNT,
                    kernel: int = KERNEL_MMA_SYNC) -> int:
    tiles = math.ceil(problem.n / tile_n) * math.ceil(problem.m / tile_m)
    if kernel == KERNEL_GEMV:
        target = GEMV_TARGET_WARPS_PER_SM
    elif kernel == KERNEL_TMA_M1:
        target = TMA_M1_TARGET_WARPS_PER_SM
    elif kernel == KERNEL_WGMMA and tile_m <= 16:
        target = WGMMA_NARROW_TARGET_WARPS_PER_SM
    else:
        target = TARGET_WARPS_PER_SM[tile_m]
    want = max(1, round(sm_count * target / (tiles * warps)))
    # at least 4 chunks (512 K) per slice: shorter slices spend more on the reduction than they win
    return _normalized_split(problem.k, min(want, max(1, k_chunks(problem.k) // 4)))


def allowed_tile_ms(m: int) -> tuple[int, ...]:
    """Activation tiles worth running for M: narrower ones re-read the weights, wider ones waste MMAs."""
    if m <= 8:
        return (8,)
    if m <= 16:
        return (16,)
    if m <= 32:
        return (32,)
    if m <= 64:
        return (32, 64)
    return (64, 128, 256)


def valid_tactics(problem: GemmProblem, compiled: frozenset | None = None,
                  sm_count: int = SM_COUNT) -> list[CutlassTactic]:
    """Every tactic the built kernels can run ``problem`` with; the first is the heuristic pick.

    ``compiled``: the ``(tile_m, warps, unroll, stages, kernel, warp_rows)`` configurations of the build (default:
    the native module's, or the base set every build has when the module is not importable).
    ``sm_count``: the device's streaming multiprocessors, which the split-K heuristic fills.
    """
    if compiled is None:
        from .native import compiled_configs

        compiled = compiled_configs() or BASE_CONFIGS
    m = problem.m
    out: list[CutlassTactic] = []

    def add(cfg: tuple[int, int, int, int, int, int], split: int) -> None:
        tm, warps, unroll, stages, kernel, rows = cfg
        if kernel == KERNEL_TMA_M1:
            split = _even_slices(problem.k, split)
        elif kernel == KERNEL_GEMV:
            split = _fitting_slices(problem.k, split, GEMV_MAX_SLICE_CHUNKS)
        t = CutlassTactic(tm, rows * warps, _normalized_split(problem.k, split), unroll, stages,
                          kernel == KERNEL_WGMMA, rows, tma_m1=kernel == KERNEL_TMA_M1, gemv=kernel == KERNEL_GEMV)
        if t not in out and is_valid(problem, t, compiled) is None:
            out.append(t)

    bucket = next((b for b in (8, 16, 32, 64, 256) if m <= b), None)
    tiles = allowed_tile_ms(m)
    preferred = [c for c in PREFERRED[bucket] if c[0] in tiles]
    others = sorted((c for c in compiled if c[0] in tiles and c not in preferred),
                    key=lambda c: (c[0], c[4], c[1], -c[3]))
    for cfg in preferred + others:
        h = heuristic_split(problem, cfg[0], cfg[5] * cfg[1], cfg[1], sm_count, cfg[4])
        add(cfg, h)
        # and the powers of two on either side of it: the heuristic's round() missed the best split of the 16-wide
        # wgmma tile (H200, microbench, M = 16, 6144x4096: heuristic 6, tried 6/1/3/11, best 4 at 17.5 us)
        p2 = 1 << max(0, h.bit_length() - 1)
        for split in (1, h // 2, h * 2, p2, 2 * p2):
            add(cfg, split)
    if not out:  # nothing compiled fits the tile rules: run any compiled tile
        for cfg in sorted(compiled):
            add(cfg, heuristic_split(problem, cfg[0], cfg[5] * cfg[1], cfg[1], sm_count, cfg[4]))
    if problem.a_format == "nvfp4":
        fp16 = [dataclasses.replace(t, act_fp16=True) for t in out if not t.act_fp16]
        out = fp16 + out if m >= ACT_FP16_FIRST_M else out + fp16
    return out


def is_valid(problem: GemmProblem, tactic: object, compiled: frozenset | None = None) -> str | None:
    """None when ``tactic`` can run ``problem``, else why not (for forced tactics from a tuning cache)."""
    if not isinstance(tactic, CutlassTactic):
        return f"tactic must be a CutlassTactic, got {type(tactic).__name__}"
    if compiled is None:
        from .native import compiled_configs

        compiled = compiled_configs() or BASE_CONFIGS
    rows = GEMV_WARP_ROWS if tactic.gemv else (16, 32)
    if tactic.warp_rows not in rows or tactic.tile_n % tactic.warp_rows or tactic.config not in compiled:
        return f"{tactic} is not compiled into this build (compiled: {sorted(compiled)})"
    if tactic.act_fp16 and problem.a_format != "nvfp4":
        return f"act_fp16 dequantizes an NVFP4 activation; this problem's is {problem.a_format}"
    if tactic.tma_m1:
        reason = _tma_m1_invalid(problem, tactic)
        if reason is not None:
            return reason
    if tactic.gemv:
        reason = _gemv_invalid(problem, tactic)
        if reason is not None:
            return reason
    elif tactic.stages >= CP_ASYNC_STAGES and problem.k % K_CHUNK:
        return f"stages={tactic.stages} (cp.async ring) needs K % {K_CHUNK} == 0, got K={problem.k}"
    if tactic.wgmma and tactic.tile_m == 256 and tactic.split_k > 1:
        return "the wgmma kernel with tile_m=256 runs split_k=1 only (its split-K epilogue would spill)"
    if tactic.split_k < 1 or tactic.split_k != _normalized_split(problem.k, tactic.split_k):
        return f"split_k={tactic.split_k} does not divide K={problem.k} into non-empty 128-wide slices"
    if math.ceil(problem.m / tactic.tile_m) > 65535:
        return f"M={problem.m} needs more than 65535 tiles of {tactic.tile_m} rows"
    return None


def _staged_m1_invalid(problem: GemmProblem, tactic: CutlassTactic, kernel: str, most_chunks: int) -> str | None:
    """The rules the two M = 1 kernels share: one activation row, 16-bit or NVFP4, whose K slice the CTA stages."""
    if problem.m != 1:
        return f"{kernel} runs M = 1 only, got M={problem.m}"
    if problem.a_format not in ("bf16", "fp16", "nvfp4"):
        return f"{kernel} multiplies a bf16, fp16 or NVFP4 activation, got {problem.a_format}"
    if chunks_per_split(problem.k, tactic.split_k) > most_chunks:
        return (f"{kernel} stages at most {most_chunks * K_CHUNK} K values a slice, "
                f"split_k={tactic.split_k} leaves {chunks_per_split(problem.k, tactic.split_k) * K_CHUNK}")
    return None


def _tma_m1_invalid(problem: GemmProblem, tactic: CutlassTactic) -> str | None:
    if tactic.wgmma:
        return "tma_m1 and wgmma are two different kernels"
    reason = _staged_m1_invalid(problem, tactic, "the TMA kernel (tma_m1)", TMA_M1_MAX_SLICE_CHUNKS)
    if reason is not None:
        return reason
    if problem.layout != "linear":
        return f"the TMA kernel (tma_m1) reads linear scales, got layout={problem.layout!r}"
    if problem.k % 256:
        return f"the TMA kernel (tma_m1) needs K % 256 == 0 (the scale rows' stride), got K={problem.k}"
    if chunks_per_split(problem.k, tactic.split_k) % 2:
        return (f"the TMA kernel (tma_m1) needs an even number of 128-wide chunks a slice (its scale boxes start "
                f"16-byte aligned), split_k={tactic.split_k} leaves {chunks_per_split(problem.k, tactic.split_k)}")
    return None


def _gemv_invalid(problem: GemmProblem, tactic: CutlassTactic) -> str | None:
    if tactic.wgmma or tactic.tma_m1:
        return "gemv, tma_m1 and wgmma are different kernels"
    if problem.k % 32:
        return f"the row GEMV (gemv) needs K % 32 == 0 (whole 32-value segments), got K={problem.k}"
    return _staged_m1_invalid(problem, tactic, "the row GEMV (gemv)", GEMV_MAX_SLICE_CHUNKS)
