"""Every deprecated spelling nvfp4 still accepts, in one place, each with the version that removes it.

Users arrive from the seed's APIs: one boolean flag per backend on the Linear
layer and one GEMM function per backend. Each old spelling keeps working,
forwards to the unified API, and warns once per process (``FutureWarning``:
shown by default, since end users, not only developers, call these) naming
its replacement and the release that removes it.

To remove a deprecation: delete its ``Deprecation`` entry and its shim here,
and the import in ``nvfp4/__init__.py``; nothing else refers to them.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import torch

from .gemm import AUTO, gemm_fp4


@dataclass(frozen=True)
class Deprecation:
    """One deprecated spelling: what it was, what replaces it, since when, and until when."""

    old: str
    new: str
    since: str
    removed_in: str

    def message(self) -> str:
        return (f"{self.old} is deprecated since nvfp4 {self.since} and will be removed in nvfp4 "
                f"{self.removed_in}; use {self.new} instead")


#: The deprecation table, keyed by a short id.
DEPRECATIONS: dict[str, Deprecation] = {
    "linear.use_cute_dsl_nvfp4_blockscaling_mm": Deprecation(
        "nvfp4.nn.Linear(use_cute_dsl_nvfp4_blockscaling_mm=True)", 'nvfp4.nn.Linear(backend="cutedsl")',
        "0.1.0", "0.3.0"),
    "linear.use_cublaslt_nvfp4_blockscaling_mm": Deprecation(
        "nvfp4.nn.Linear(use_cublaslt_nvfp4_blockscaling_mm=True)", 'nvfp4.nn.Linear(backend="cublaslt")',
        "0.1.0", "0.3.0"),
    "nvfp4_gemm": Deprecation(
        "nvfp4.nvfp4_gemm(...)", 'nvfp4.gemm_fp4(..., backend="cutlass")', "0.1.0", "0.3.0"),
    "nvfp4_gemm_cublaslt": Deprecation(
        "nvfp4.nvfp4_gemm_cublaslt(...)", 'nvfp4.gemm_fp4(..., backend="cublaslt")', "0.1.0", "0.3.0"),
    "cute_dsl_nvfp4_gemm_blackwell": Deprecation(
        "nvfp4.cute_dsl_nvfp4_gemm_blackwell(...)", 'nvfp4.gemm_fp4(..., backend="cutedsl")', "0.1.0", "0.3.0"),
}

_warned: set[str] = set()
_lock = threading.Lock()


def warn_once(key: str, *, stacklevel: int = 3) -> None:
    """Emit the ``FutureWarning`` of deprecation ``key``, the first time only in this process."""
    dep = DEPRECATIONS[key]
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(dep.message(), FutureWarning, stacklevel=stacklevel)


def reset_warnings() -> None:
    """Forget which deprecations have warned (tests use this)."""
    with _lock:
        _warned.clear()


# -- nvfp4.nn.Linear's per-backend boolean flags ----------------------------------------------------

#: Old Linear keyword -> the backend it selected.
LINEAR_BACKEND_FLAGS = {
    "use_cute_dsl_nvfp4_blockscaling_mm": "cutedsl",
    "use_cublaslt_nvfp4_blockscaling_mm": "cublaslt",
}


def linear_backend(backend: str, legacy_kwargs: dict, *, owner: str = "Linear") -> str:
    """The backend a Linear constructor call asks for, given its extra keyword arguments.

    ``legacy_kwargs`` holds the keywords the constructor did not recognise. Known
    deprecated flags warn once and, when true, select their backend; both true
    at once is a ValueError, as is a flag that contradicts an explicit
    ``backend``; any other keyword is a TypeError, as Python would raise.
    """
    unknown = sorted(set(legacy_kwargs) - set(LINEAR_BACKEND_FLAGS))
    if unknown:
        raise TypeError(f"{owner}() got an unexpected keyword argument {unknown[0]!r}")
    chosen = []
    for flag, name in LINEAR_BACKEND_FLAGS.items():
        if flag not in legacy_kwargs:
            continue
        warn_once(f"linear.{flag}", stacklevel=4)
        value = legacy_kwargs[flag]
        if not isinstance(value, bool):
            raise TypeError(f"{flag} must be a bool, got {type(value).__name__}")
        if value:
            chosen.append((flag, name))
    if len(chosen) > 1:
        raise ValueError(f"{chosen[0][0]}=True and {chosen[1][0]}=True select different backends; "
                         f"pass one backend instead, e.g. backend={chosen[0][1]!r}")
    if not chosen:
        return backend
    flag, name = chosen[0]
    if backend not in (AUTO, name):
        raise ValueError(f"{flag}=True selects backend {name!r} but backend={backend!r} was also given; "
                         f"pass only backend={name!r}")
    return name


# -- the seed's per-backend GEMM functions ----------------------------------------------------------

def _gemm_fp4_alias(key: str, backend: str):
    """The old per-backend GEMM function ``key``: ``nvfp4.gemm_fp4(..., backend=backend)`` after a warning."""

    def alias(act_fp4: torch.Tensor, weight: torch.Tensor, act_sf: torch.Tensor, weight_scale: torch.Tensor,
              alpha: torch.Tensor, output_dtype: torch.dtype, *, bias: torch.Tensor | None = None) -> torch.Tensor:
        warn_once(key)
        return gemm_fp4(act_fp4, weight, act_sf, weight_scale, alpha, output_dtype, bias=bias, backend=backend)

    alias.__name__ = alias.__qualname__ = key
    alias.__doc__ = f'Deprecated: ``nvfp4.gemm_fp4(..., backend="{backend}")``.'
    return alias


nvfp4_gemm = _gemm_fp4_alias("nvfp4_gemm", "cutlass")  # the seed's CUTLASS-only name
nvfp4_gemm_cublaslt = _gemm_fp4_alias("nvfp4_gemm_cublaslt", "cublaslt")
cute_dsl_nvfp4_gemm_blackwell = _gemm_fp4_alias("cute_dsl_nvfp4_gemm_blackwell", "cutedsl")
