"""Backend and quantizer registry: plugins found through the ``nvfp4.backends`` entry points."""

from __future__ import annotations

import importlib.metadata as md
import logging
import os
import threading
import warnings
from dataclasses import dataclass

import pluggy

from . import hookspecs
from .backend import Availability, Backend, Quantizer

log = logging.getLogger("nvfp4")

ENTRY_POINT_GROUP = "nvfp4.backends"
DISABLED_ENV = "NVFP4_DISABLED_PLUGINS"


@dataclass(frozen=True)
class BackendInfo:
    """One row of ``nvfp4.backends()``."""

    name: str
    available: bool
    reason: str
    plugin: str
    distribution: str
    version: str


@dataclass(frozen=True)
class PluginError:
    plugin: str
    error: str


@dataclass
class _Entry:
    backend: Backend
    plugin: str
    distribution: str
    version: str
    availability: Availability | None = None


class _Registry:
    def __init__(self):
        self._lock = threading.RLock()
        self._loaded = False
        self._pm: pluggy.PluginManager | None = None
        self._backends: dict[str, _Entry] = {}
        self._quantizers: list[tuple[Quantizer, str]] = []
        self._errors: list[PluginError] = []
        self._disabled: list[str] = []
        #: Changes whenever the set of backends changes; the tuner keys on it.
        self.fingerprint: tuple = ()

    # -- loading -----------------------------------------------------------------------------
    def ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def _error(self, plugin: str, message: str) -> None:
        self._errors.append(PluginError(plugin, message))
        warnings.warn(f"nvfp4: plugin {plugin!r} failed to load: {message}", RuntimeWarning, stacklevel=4)

    def _load(self) -> None:
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        self._pm = pm
        disabled = {p.strip() for p in os.environ.get(DISABLED_ENV, "").split(",") if p.strip()}
        for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in disabled:
                self._disabled.append(ep.name)
                log.info("nvfp4: plugin %r disabled by %s", ep.name, DISABLED_ENV)
                continue
            dist = ep.dist.name if ep.dist is not None else "?"
            version = ep.dist.version if ep.dist is not None else "?"
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not take the others down
                self._error(ep.name, f"{type(exc).__name__}: {exc}")
                continue
            self._add_plugin(module, ep.name, dist, version)
        self._refresh_fingerprint()

    def _add_plugin(self, module, plugin: str, dist: str, version: str) -> None:
        try:
            self._pm.register(module, name=plugin)
        except Exception as exc:
            self._error(plugin, f"{type(exc).__name__}: {exc}")
            return
        for hook, add in ((self._pm.hook.nvfp4_register_backends, self._add_backends),
                          (self._pm.hook.nvfp4_register_quantizers, self._add_quantizers)):
            impls = [i for i in hook.get_hookimpls() if i.plugin_name == plugin]
            for impl in impls:
                try:
                    items = impl.function() or []
                except Exception as exc:
                    self._error(plugin, f"{hook.name} raised {type(exc).__name__}: {exc}")
                    continue
                add(list(items), plugin, dist, version)

    def _add_backends(self, items, plugin, dist, version) -> None:
        for backend in items:
            if not isinstance(backend, Backend) or not backend.name:
                self._error(plugin, f"nvfp4_register_backends returned {backend!r}, not a named nvfp4.Backend")
                continue
            if backend.name in self._backends:
                other = self._backends[backend.name].plugin
                self._error(plugin, f"backend name {backend.name!r} is already registered by plugin {other!r}")
                continue
            self._backends[backend.name] = _Entry(backend, plugin, dist, version)

    def _add_quantizers(self, items, plugin, dist, version) -> None:
        for q in items:
            if not isinstance(q, Quantizer):
                self._error(plugin, f"nvfp4_register_quantizers returned {q!r}, not an nvfp4.Quantizer")
                continue
            self._quantizers.append((q, plugin))
        self._quantizers.sort(key=lambda item: -item[0].priority)

    def _refresh_fingerprint(self) -> None:
        self.fingerprint = tuple(sorted((n, e.distribution, e.version) for n, e in self._backends.items()))

    # -- programmatic registration (tests, notebooks) ------------------------------------------
    def register(self, backend: Backend, *, distribution: str = "<runtime>", version: str = "0") -> None:
        self.ensure_loaded()
        with self._lock:
            if not isinstance(backend, Backend) or not backend.name:
                raise TypeError(f"backend must be a named nvfp4.Backend, got {backend!r}")
            if backend.name in self._backends:
                raise ValueError(f"a backend named {backend.name!r} is already registered")
            self._backends[backend.name] = _Entry(backend, "<runtime>", distribution, version)
            self._refresh_fingerprint()

    def unregister(self, name: str) -> None:
        self.ensure_loaded()
        with self._lock:
            self._backends.pop(name, None)
            self._refresh_fingerprint()

    # -- queries ---------------------------------------------------------------------------------
    def names(self) -> list[str]:
        self.ensure_loaded()
        return sorted(self._backends)

    def entry(self, name: str) -> _Entry:
        self.ensure_loaded()
        try:
            return self._backends[name]
        except KeyError:
            installed = ", ".join(sorted(self._backends)) or "none"
            raise ValueError(f"backend must be 'auto' or an installed backend ({installed}); got {name!r}") from None

    def availability(self, name: str) -> Availability:
        e = self.entry(name)
        if e.availability is None:
            try:
                e.availability = e.backend.availability()
            except Exception as exc:
                e.availability = Availability(False, f"availability check raised {type(exc).__name__}: {exc}")
        return e.availability

    def infos(self) -> list[BackendInfo]:
        out = []
        for name in self.names():
            e = self._backends[name]
            av = self.availability(name)
            out.append(BackendInfo(name, av.ok, av.reason, e.plugin, e.distribution, e.version))
        return out

    def find_quantizer(self, x, layout: str) -> Quantizer | None:
        self.ensure_loaded()
        for q, _plugin in self._quantizers:
            try:
                if q.availability().ok and q.supports(x, layout) is None:
                    return q
            except Exception as exc:  # a broken quantizer falls back to the next, loudly
                log.warning("nvfp4: quantizer %r failed its checks: %s", q.name, exc)
        return None

    def errors(self) -> list[PluginError]:
        self.ensure_loaded()
        return list(self._errors)

    def disabled(self) -> list[str]:
        self.ensure_loaded()
        return list(self._disabled)

    def reset(self) -> None:
        """Forget everything; the next query loads the plugins again (tests use this)."""
        with self._lock:
            self.__init__()


REGISTRY = _Registry()


def backends() -> list[BackendInfo]:
    """Every installed backend: name, available, reason, plugin, distribution, version."""
    return REGISTRY.infos()


def plugin_errors() -> list[PluginError]:
    """Plugins that failed to load, with their errors."""
    return REGISTRY.errors()


def register_backend(backend: Backend, *, distribution: str = "<runtime>", version: str = "0") -> None:
    """Register a backend object in this process, without an entry point."""
    REGISTRY.register(backend, distribution=distribution, version=version)


def unregister_backend(name: str) -> None:
    REGISTRY.unregister(name)


def find_quantizer(x, layout: str) -> Quantizer | None:
    return REGISTRY.find_quantizer(x, layout)


def quantizers() -> list[str]:
    REGISTRY.ensure_loaded()
    return [q.name for q, _ in REGISTRY._quantizers]
