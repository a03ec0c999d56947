"""Auto-selection: measure every backend and tactic, cache the winner, explain the choice."""

from __future__ import annotations

from .autotune import CACHE_ENV, autotune, ensure_env_cache
from .keys import M_CAP, m_bucket
from .selector import TUNER, Decision, Tuner


def select(problem, backend: str):
    """The (backend object, tactic) that runs ``problem``; profiles on a key's first use."""
    ensure_env_cache()
    return TUNER.select(problem, backend)


def stats() -> dict:
    """Counters: tactics profiled, fast-path hits, decisions made, cache entries loaded."""
    return dict(TUNER.stats)


__all__ = ["CACHE_ENV", "M_CAP", "TUNER", "Decision", "Tuner", "autotune", "m_bucket", "select", "stats"]
