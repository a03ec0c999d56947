"""Tactics to and from JSON, matched by value against a backend's current tactics (never by index)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any


def tactic_to_json(tactic: Any) -> Any:
    if dataclasses.is_dataclass(tactic) and not isinstance(tactic, type):
        return {"__tactic__": type(tactic).__qualname__, **{f.name: _plain(getattr(tactic, f.name))
                                                             for f in dataclasses.fields(tactic)}}
    return _plain(tactic)


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if hasattr(v, "value") and hasattr(v, "name") and not isinstance(v, (int, str)):  # enums
        return v.value
    return v


def tactic_id(tactic: Any) -> str:
    """A stable string identity of a tactic."""
    return json.dumps(tactic_to_json(tactic), sort_keys=True)


def find_tactic(tactics: Sequence[Any], ident: str) -> Any | None:
    """The tactic among ``tactics`` whose identity is ``ident``, or None when it no longer exists."""
    for t in tactics:
        if tactic_id(t) == ident:
            return t
    return None
