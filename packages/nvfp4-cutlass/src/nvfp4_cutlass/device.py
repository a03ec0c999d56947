"""Where the sm_90a kernels can run: the compiled module, a CUDA device, compute capability 9.x."""

from __future__ import annotations

import functools

import torch

from nvfp4.backend import Availability

from . import native
from .tactics import SM_COUNT


@functools.cache
def capability_reason(index: int) -> str | None:
    """None when device ``index`` is a Hopper (9.x) GPU, else why the kernels cannot run on it."""
    major, minor = torch.cuda.get_device_capability(index)
    if major != 9:
        name = torch.cuda.get_device_name(index)
        return (f"the kernels are built for sm_90a (Hopper, compute capability 9.x); cuda:{index} is {name} "
                f"with compute capability {major}.{minor}")
    return None


@functools.cache
def sm_count(index: int) -> int:
    """Streaming multiprocessors of CUDA device ``index`` (what the split-K heuristic fills)."""
    return torch.cuda.get_device_properties(index).multi_processor_count


def device_sms(dev: torch.device) -> int:
    """``sm_count`` of a problem's device; the tuned-on H100's 132 when it is not a CUDA device that answers
    (listing tactics must not need a GPU)."""
    if dev.type != "cuda" or not torch.cuda.is_available():
        return SM_COUNT
    try:
        return sm_count(dev.index if dev.index is not None else torch.cuda.current_device())
    except Exception:  # a device that cannot be queried cannot run the kernels either; its tactics still list
        return SM_COUNT


def availability() -> Availability:
    mod, reason = native.load()
    if mod is None:
        return Availability(False, reason)
    try:
        if not torch.cuda.is_available():
            return Availability(False, "no CUDA device is visible (torch.cuda.is_available() is False)")
        reason = capability_reason(torch.cuda.current_device())
    except Exception as exc:  # a broken driver must give a reason, never an exception
        return Availability(False, f"querying the CUDA device failed: {type(exc).__name__}: {exc}")
    if reason is not None:
        return Availability(False, reason)
    return Availability(True)


def device_reason(device: torch.device) -> str | None:
    """None when ``device`` can run the kernels, else why not."""
    if device.type != "cuda":
        return f"the kernels run on CUDA devices, the problem is on {device}"
    return capability_reason(device.index if device.index is not None else torch.cuda.current_device())
