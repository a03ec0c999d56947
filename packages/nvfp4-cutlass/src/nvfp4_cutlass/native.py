"""Loading the compiled module ``_native`` once, remembering why it failed if it did."""

from __future__ import annotations

import functools
from types import ModuleType


@functools.lru_cache(maxsize=1)
def load() -> tuple[ModuleType | None, str]:
    """``(module, "")`` or ``(None, reason)``; the import error is kept, never raised."""
    try:
        from . import _native  # type: ignore[attr-defined]
    except ImportError as exc:  # not built, or the CUDA runtime it links cannot load
        return None, f"the compiled module nvfp4_cutlass._native cannot be imported ({exc})"
    return _native, ""


def module() -> ModuleType:
    """The compiled module; RuntimeError with the reason when it is missing."""
    mod, reason = load()
    if mod is None:
        raise RuntimeError(reason)
    return mod


@functools.lru_cache(maxsize=1)
def compiled_configs() -> frozenset[tuple[int, int, int, int, int, int]] | None:
    """``(tile_m, warps, unroll, stages, kernel, warp_rows)`` configurations in the built module (kernel: one of
    ``tactics.KERNEL_*``); None when it is not importable."""
    mod, _ = load()
    if mod is None:
        return None
    return frozenset(tuple(c) for c in mod.configs())
