"""``nvfp4 backends``: every installed backend, whether it can run here and why not."""

from __future__ import annotations

from .. import registry
from .table import show


def add_parser(sub):
    return sub.add_parser("backends", help="list installed backends, their availability and versions")


def run(args) -> int:
    rows = [(b.name, "yes" if b.available else "no", b.reason or "-", b.distribution, b.version)
            for b in registry.backends()]
    show(("backend", "available", "reason", "package", "version"), rows, title="nvfp4 backends")
    for err in registry.plugin_errors():
        print(f"plugin {err.plugin!r} failed to load: {err.error}")
    for name in registry.REGISTRY.disabled():
        print(f"plugin {name!r} disabled by {registry.DISABLED_ENV}")
    return 0
