"""``calibrate``: record activation amax over sample data, then give W4A4 layers static input scales.

    with nvfp4.nn.calibrate(model):
        for batch in samples:
            model(batch)
    # every W4A4 nvfp4.nn.Linear now has input_scale = amax / 2688 (ModelOpt's rule)

A static scale saves the per-call amax reduction and is what ModelOpt
checkpoints store as ``<layer>.input_scale``.
"""

from __future__ import annotations

import contextlib

import torch

from .linear import W4A4, Linear


@contextlib.contextmanager
def calibrate(model: torch.nn.Module):
    """Observe the inputs of every W4A4 ``nvfp4.nn.Linear`` in ``model``; set their input scales on exit.

    The layers run as usual (with dynamic scales) while observed. A layer that
    saw no input keeps its previous setting. Leaving the block by an exception
    changes nothing.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    layers = [m for m in model.modules() if isinstance(m, Linear) and m.activation == W4A4]
    amax: dict[int, torch.Tensor] = {}
    saved = {id(m): m.input_scale for m in layers}

    def observe(module, args, kwargs):
        x = args[0] if args else kwargs["x"]
        a = x.detach().abs().amax().float() if x.numel() else None
        if a is not None:
            prev = amax.get(id(module))
            amax[id(module)] = a if prev is None else torch.maximum(prev, a)

    handles = [m.register_forward_pre_hook(observe, with_kwargs=True) for m in layers]
    for m in layers:
        m.input_scale = None  # observe with dynamic scales, as the model runs uncalibrated
    ok = False
    try:
        yield layers
        ok = True
    finally:
        for h in handles:
            h.remove()
        for m in layers:
            if ok and id(m) in amax:
                m.set_input_amax(amax[id(m)])
            else:
                m.input_scale = saved[id(m)]
