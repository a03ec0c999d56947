"""``nvfp4.autotune``: a scope whose profiling is saved to a JSON file, with an optional time budget.

``NVFP4_TUNING_CACHE=path`` does the same for the whole process: the file is
read on the first GEMM and written after every decision that profiled.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings

from .selector import TUNER

CACHE_ENV = "NVFP4_TUNING_CACHE"
_env_loaded = False


def ensure_env_cache() -> None:
    """Load ``$NVFP4_TUNING_CACHE`` once and save to it after each profiling decision."""
    global _env_loaded
    if _env_loaded:
        return
    _env_loaded = True
    path = os.environ.get(CACHE_ENV)
    if path:
        TUNER.load(path)
        TUNER.autosave_path = path


@contextlib.contextmanager
def autotune(cache: str | os.PathLike | None = None, budget_s: float | None = None):
    """Tune inside this scope; on exit save what was profiled to ``cache`` (JSON).

    ``cache`` is read first, so what it holds is not profiled again. ``budget_s``
    bounds the time spent profiling inside the scope: when it runs out, no new
    tactic is profiled, the best measured so far is used, and a warning says so.
    """
    ensure_env_cache()
    if cache is not None:
        TUNER.load(cache)
    if budget_s is not None and budget_s < 0:
        raise ValueError(f"budget_s must be >= 0 or None, got {budget_s}")
    previous = TUNER.deadline
    TUNER.deadline = None if budget_s is None else time.monotonic() + budget_s
    TUNER.budget_note = None
    try:
        yield TUNER
    finally:
        TUNER.deadline = previous
        if TUNER.budget_note:
            warnings.warn(f"nvfp4.autotune: {TUNER.budget_note}", RuntimeWarning, stacklevel=3)
            TUNER.forget_incomplete()
        if cache is not None:
            TUNER.save(cache)
