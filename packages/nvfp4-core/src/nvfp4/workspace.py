"""Scratch memory a backend reuses across calls, kept per (device, stream, name).

Launches on one stream run in order, so they may share a buffer; launches on two streams may overlap, so
they never do (a split-K kernel's tile counters shared across streams would mix two GEMMs' partial sums).

Buffers only grow, and geometrically. An outgrown buffer is kept alive rather than freed: a CUDA graph
captured while it was current still holds its address, and a replay must not write into memory the caching
allocator has since handed to another tensor. Because each buffer is at least twice the one it replaced, the
retired ones together stay smaller than the live one.
"""

from __future__ import annotations

import threading

import torch

_lock = threading.Lock()
_live: dict[tuple, torch.Tensor] = {}
_retired: dict[tuple, list[torch.Tensor]] = {}


def _key(device: torch.device, stream: int, name) -> tuple:
    index = device.index
    if index is None:
        index = torch.cuda.current_device() if device.type == "cuda" else 0
    return (device.type, index, int(stream), name)


def scratch(device: torch.device, stream: int, name, numel: int, dtype: torch.dtype, *,
            zeroed: bool = False, minimum: int = 1 << 16) -> torch.Tensor:
    """A 1-D buffer of at least ``numel`` elements of ``dtype`` for launches on (``device``, ``stream``).

    ``stream`` is the raw CUDA stream handle (``torch.cuda.Stream.cuda_stream``); ``name`` is any hashable
    value that tells this buffer from the caller's others (start it with the backend's name). ``zeroed``
    buffers start at zero; the kernels that use them must leave them zero (split-K counters reset
    themselves). Steady-state calls take one dict read and allocate nothing.
    """
    key = _key(device, stream, name)
    buf = _live.get(key)  # the steady state, on every GEMM call: one dict read, no lock
    if buf is not None and buf.numel() >= numel and buf.dtype == dtype:
        return buf
    with _lock:
        buf = _live.get(key)
        if buf is not None and buf.dtype != dtype:
            raise ValueError(f"scratch buffer {name!r} holds {buf.dtype}, asked for {dtype}")
        if buf is None or buf.numel() < numel:
            size = max(numel, minimum, 2 * buf.numel() if buf is not None else 0)
            new = (torch.zeros if zeroed else torch.empty)(size, dtype=dtype, device=device)
            if buf is not None:
                _retired.setdefault(key, []).append(buf)
            _live[key] = buf = new
        return buf


def current(device: torch.device, stream: int, name) -> torch.Tensor | None:
    """The live buffer ``name`` of (``device``, ``stream``), or None if no call made one (for tests)."""
    with _lock:
        return _live.get(_key(device, stream, name))


def split_k(device: torch.device, stream: int, owner: str, partial_floats: int,
            counters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(FP32 partials, int32 tile counters) for a split-K launch of backend ``owner``.

    The contract the kernels keep: every launch rewrites the partials it reads, and the CTA that reduces a
    tile resets that tile's counter to zero, so both buffers are reused as they are, CUDA-graph replays
    included.
    """
    part = scratch(device, stream, (owner, "split_k.partials"), partial_floats, torch.float32, minimum=1 << 20)
    cnt = scratch(device, stream, (owner, "split_k.counters"), counters, torch.int32, zeroed=True, minimum=4096)
    return part, cnt
