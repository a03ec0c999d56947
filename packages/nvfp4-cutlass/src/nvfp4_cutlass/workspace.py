"""Split-K scratch memory, kept per (device, stream) so a decode step allocates nothing.

The partial sums are fully rewritten by every launch; the arrival counters are zero between launches
(the reducing CTA resets its counter), so both buffers are reused as they are, CUDA-graph replays included.
Launches on one stream are ordered, so sharing a buffer among them is safe.
"""

from __future__ import annotations

import threading

import torch

_lock = threading.Lock()
_buffers: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}


def get(device: torch.device, stream: int, partial_floats: int, counters: int) -> tuple[torch.Tensor, torch.Tensor]:
    key = (device.index if device.index is not None else torch.cuda.current_device(), stream)
    with _lock:
        part, cnt = _buffers.get(key, (None, None))
        if part is None or part.numel() < partial_floats:
            part = torch.empty(max(partial_floats, 1 << 20), dtype=torch.float32, device=device)
        if cnt is None or cnt.numel() < counters:
            cnt = torch.zeros(max(counters, 4096), dtype=torch.int32, device=device)
        _buffers[key] = (part, cnt)
        return part, cnt
