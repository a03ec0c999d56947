"""The tuning cache file: JSON (never pickle), written atomically under a file lock.

    {"format": "nvfp4-tuning-cache", "version": 1,
     "header": {"device": ..., "torch": ..., "nvfp4": ..., "backends": [[name, dist, version], ...]},
     "entries": {key: {backend: {"complete": bool,
                                 "results": [{"tactic": ..., "id": ..., "time_ms": ..., "error": ...}]}}}}

A file whose header differs from this process (another device, torch or set
of backend versions) or that cannot be parsed is ignored with a warning.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from pathlib import Path

FORMAT = "nvfp4-tuning-cache"
VERSION = 1


def make_header(device: str, fingerprint: tuple) -> dict:
    import torch

    from .. import __version__

    return {"device": device, "torch": torch.__version__, "nvfp4": __version__,
            "backends": [list(row) for row in fingerprint]}


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path + '.lock'`` for the duration (POSIX; a no-op elsewhere)."""
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _read(path: Path, header: dict, *, quiet: bool = False) -> dict | None:
    """The entries of ``path`` if it matches ``header``; None (with a warning) otherwise."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        warnings.warn(f"nvfp4: tuning cache {path} unreadable ({exc}); ignoring it", RuntimeWarning, stacklevel=3)
        return None
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise ValueError("not an nvfp4 tuning cache of this version")
        entries = doc["entries"]
        if not isinstance(entries, dict):
            raise ValueError("'entries' is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        if not quiet:
            warnings.warn(f"nvfp4: tuning cache {path} is corrupt ({exc}); ignoring it", RuntimeWarning,
                          stacklevel=3)
        return None
    if doc.get("header") != header:
        if not quiet:
            warnings.warn(f"nvfp4: tuning cache {path} was made for {doc.get('header')}, not {header}; ignoring it",
                          RuntimeWarning, stacklevel=3)
        return None
    return entries


def load(path: str | os.PathLike, header: dict) -> dict:
    path = Path(path)
    with _locked(path):
        return _read(path, header) or {}


def save(path: str | os.PathLike, header: dict, entries: dict) -> None:
    """Merge ``entries`` into the file (ours win per key and backend), atomically."""
    path = Path(path)
    with _locked(path):
        merged = _read(path, header, quiet=True) or {}
        for key, per_backend in entries.items():
            merged.setdefault(key, {}).update(per_backend)
        doc = {"format": FORMAT, "version": VERSION, "header": header, "entries": merged}
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(doc, fh, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
