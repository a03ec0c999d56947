"""Deprecated spellings: they keep working, forward to the unified API and warn once each."""

from __future__ import annotations

import warnings

import pytest
import torch

import nvfp4
from nvfp4 import deprecations
from nvfp4.nn import Linear
from nvfp4.reference import ReferenceBackend


@pytest.fixture(autouse=True)
def _fresh_warnings():
    deprecations.reset_warnings()
    yield
    deprecations.reset_warnings()


def _record(fn, times=2):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        results = [fn() for _ in range(times)]
    return results, [w for w in rec if issubclass(w.category, FutureWarning)]


def _version_tuple(v: str):
    return tuple(int(p) for p in v.split(".")[:3])


def test_every_deprecation_names_replacement_and_a_future_removal():
    for key, dep in deprecations.DEPRECATIONS.items():
        msg = dep.message()
        assert dep.new in msg and dep.removed_in in msg, key
        assert _version_tuple(dep.removed_in) > _version_tuple(nvfp4.__version__), key


@pytest.mark.parametrize(("flag", "backend"), [("use_cute_dsl_nvfp4_blockscaling_mm", "cutedsl"),
                                               ("use_cublaslt_nvfp4_blockscaling_mm", "cublaslt")])
def test_linear_flags_select_backend_and_warn_once(flag, backend):
    layers, warned = _record(lambda: Linear(32, 16, **{flag: True}))
    assert [m.backend for m in layers] == [backend, backend]
    assert len(warned) == 1
    msg = str(warned[0].message)
    assert flag in msg and f'backend="{backend}"' in msg and "removed in nvfp4 0.3.0" in msg
    assert warned[0].filename == __file__  # points at the caller, not at nvfp4


def test_linear_flag_false_warns_and_keeps_backend():
    layers, warned = _record(lambda: Linear(32, 16, backend="reference", use_cublaslt_nvfp4_blockscaling_mm=False),
                             times=1)
    assert layers[0].backend == "reference" and len(warned) == 1


def test_linear_both_flags_is_an_error():
    with pytest.raises(ValueError, match="select different backends"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Linear(32, 16, use_cute_dsl_nvfp4_blockscaling_mm=True, use_cublaslt_nvfp4_blockscaling_mm=True)


def test_linear_flag_contradicting_backend_is_an_error():
    with pytest.raises(ValueError, match="backend='cutlass' was also given"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Linear(32, 16, backend="cutlass", use_cute_dsl_nvfp4_blockscaling_mm=True)


def _fp4_args(m=3, n=8, k=64):
    g = torch.Generator().manual_seed(0)
    a = nvfp4.quantize(torch.randn(m, k, generator=g), layout="swizzled")
    b = nvfp4.quantize(torch.randn(n, k, generator=g), layout="swizzled")
    alpha = (a.global_scale * b.global_scale).reshape(1)
    # gemm_fp4's one alpha is the product of both global dequantization scales.
    return (a.data, b.data, a.scale, b.scale, alpha, torch.float32)


SHIMS = [("nvfp4_gemm", "cutlass"), ("nvfp4_gemm_cublaslt", "cublaslt"),
         ("cute_dsl_nvfp4_gemm_blackwell", "cutedsl")]


@pytest.mark.parametrize(("name", "backend"), SHIMS)
def test_gemm_shims_forward_with_backend_forced(monkeypatch, name, backend):
    calls = []

    def fake_gemm_fp4(*args, bias=None, backend):
        calls.append((args, bias, backend))
        return torch.zeros(1)

    monkeypatch.setattr(deprecations, "gemm_fp4", fake_gemm_fp4)
    args = _fp4_args()
    bias = torch.ones(8)
    shim = getattr(nvfp4, name)
    _, warned = _record(lambda: shim(*args, bias=bias))
    assert len(calls) == 2 and calls[0][2] == backend and calls[0][1] is bias
    assert all(x is y for x, y in zip(calls[0][0], args))
    assert len(warned) == 1 and f'backend="{backend}"' in str(warned[0].message)
    assert warned[0].filename == __file__


@pytest.mark.parametrize(("name", "backend"), SHIMS)
def test_gemm_shims_run_the_forced_backend(name, backend):
    """End to end through the registry, whichever way the forced backend stands on this machine."""
    args = _fp4_args()
    want = nvfp4.gemm_fp4(*args, backend="reference")
    shim = getattr(nvfp4, name)
    registry = nvfp4.registry.REGISTRY
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if backend not in registry.names():
            # Not installed: a reference-backed stand-in under its name shows the call reaches it.
            stand_in = type("StandIn", (ReferenceBackend,), {"name": backend})()
            nvfp4.register_backend(stand_in)
            try:
                assert torch.equal(shim(*args), want)
            finally:
                nvfp4.unregister_backend(backend)
        elif registry.availability(backend).ok:
            torch.testing.assert_close(shim(*args), want, rtol=1e-3, atol=1e-3)
        else:
            # Installed but unable to run here (no GPU): the error names the forced backend.
            with pytest.raises((nvfp4.BackendUnavailableError, nvfp4.UnsupportedProblemError), match=backend):
                shim(*args)


def test_all_deprecations_live_in_one_module():
    import pathlib

    src = pathlib.Path(nvfp4.__file__).parent
    offenders = [p.relative_to(src).as_posix() for p in src.rglob("*.py")
                 if p.name != "deprecations.py" and "FutureWarning" in p.read_text()]
    assert offenders == []
