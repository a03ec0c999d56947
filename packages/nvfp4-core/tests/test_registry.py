"""Plugin discovery: entry points, lazy and idempotent loading, broken and disabled plugins."""

import importlib.metadata as md
import sys
import types

import pytest

import nvfp4
from nvfp4 import registry


def _module(name, backends=None, raises=None):
    mod = types.ModuleType(name)
    if raises is not None:
        def hook():
            raise raises
    else:
        def hook():
            return backends
    mod.nvfp4_register_backends = nvfp4.hookimpl(hook)
    sys.modules[name] = mod
    return mod


class Named(nvfp4.Backend):
    def __init__(self, name):
        self.name = name

    def run(self, problem, tactic, a, b, *, bias, out):
        out.copy_(nvfp4.gemm_ref(a, b, bias, out.dtype))


@pytest.fixture
def fake_entry_points(monkeypatch, fresh_registry):
    eps = []
    real = md.entry_points

    def entry_points(group=None):
        found = list(real(group=group))
        return found + [e for e in eps if e.group == group]

    monkeypatch.setattr(registry.md, "entry_points", entry_points)

    def add(name, value):
        eps.append(md.EntryPoint(name, value, registry.ENTRY_POINT_GROUP))
    yield add
    for name in [n for n in sys.modules if n.startswith("fakeplug_")]:
        del sys.modules[name]


def test_reference_registers_through_its_entry_point(fresh_registry):
    info = {b.name: b for b in nvfp4.backends()}["reference"]
    assert info.available and info.plugin == "reference" and info.distribution == "nvfp4-core"
    assert info.version == nvfp4.__version__


def test_broken_plugin_is_reported_and_others_keep_working(fake_entry_points):
    _module("fakeplug_good", [Named("good")])
    fake_entry_points("good", "fakeplug_good")
    fake_entry_points("missing", "fakeplug_does_not_exist")
    _module("fakeplug_raises", raises=RuntimeError("boom"))
    fake_entry_points("raises", "fakeplug_raises")
    with pytest.warns(RuntimeWarning, match="plugin 'missing' failed to load: ModuleNotFoundError"):
        names = [b.name for b in nvfp4.backends()]
    assert "good" in names and "reference" in names
    errors = {e.plugin: e.error for e in nvfp4.plugin_errors()}
    assert "ModuleNotFoundError" in errors["missing"]
    assert "RuntimeError: boom" in errors["raises"]
    x = nvfp4.quantize(__import__("torch").randn(2, 16))
    assert nvfp4.gemm(x, x, backend="good").shape == (2, 2)


def test_loading_is_lazy_and_idempotent(fake_entry_points):
    calls = []
    mod = _module("fakeplug_counted", [Named("counted")])
    mod.nvfp4_register_backends = nvfp4.hookimpl(lambda: calls.append(1) or [Named("counted")])
    fake_entry_points("counted", "fakeplug_counted")
    assert calls == []  # nothing loads until asked
    nvfp4.backends()
    nvfp4.backends()
    registry.REGISTRY.ensure_loaded()
    assert calls == [1]


def test_disabled_plugins_env(fake_entry_points, monkeypatch):
    _module("fakeplug_a", [Named("a")])
    _module("fakeplug_b", [Named("b")])
    fake_entry_points("a", "fakeplug_a")
    fake_entry_points("b", "fakeplug_b")
    monkeypatch.setenv("NVFP4_DISABLED_PLUGINS", "a, reference")
    names = [b.name for b in nvfp4.backends()]
    assert "b" in names and "a" not in names and "reference" not in names
    assert sorted(registry.REGISTRY.disabled()) == ["a", "reference"]


def test_duplicate_names_and_bad_objects_are_reported(fake_entry_points):
    _module("fakeplug_dup", [Named("reference"), object()])  # "zdup" sorts after "reference": first wins
    fake_entry_points("zdup", "fakeplug_dup")
    with pytest.warns(RuntimeWarning):
        infos = {b.name: b for b in nvfp4.backends()}
    assert infos["reference"].plugin == "reference"
    text = " ".join(e.error for e in nvfp4.plugin_errors())
    assert "already registered by plugin 'reference'" in text and "not a named nvfp4.Backend" in text


def test_availability_errors_become_reasons(fresh_registry):
    class Crashy(Named):
        def availability(self):
            raise OSError("libcuda.so.1 not found")

    nvfp4.register_backend(Crashy("crashy"))
    info = {b.name: b for b in nvfp4.backends()}["crashy"]
    assert not info.available and "OSError: libcuda.so.1 not found" in info.reason
    with pytest.raises(ValueError, match="already registered"):
        nvfp4.register_backend(Named("crashy"))
    with pytest.raises(TypeError, match="named nvfp4.Backend"):
        nvfp4.register_backend(object())
