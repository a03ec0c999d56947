"""Finding and opening libcublasLt at run time, so a missing library is an availability reason.

Order: ``NVFP4_CUBLASLT_LIBRARY`` (a path), the copy already loaded in this process (torch's, by soname),
the PyPI ``nvidia-cublas`` wheel on ``sys.path`` (``nvidia/cu13/lib``), the CUDA toolkit
(``$CUDA_HOME/lib64``, ``/usr/local/cuda/lib64``), then the bare soname (``LD_LIBRARY_PATH``, ldconfig).
The major version must match the headers the module was built against.
"""

from __future__ import annotations

import os
import sys
import threading

try:
    from . import _native
    NATIVE_ERROR = ""
except ImportError as exc:  # not built, or built for another Python: an availability reason
    _native = None
    NATIVE_ERROR = f"{type(exc).__name__}: {exc}"

ENV_LIBRARY = "NVFP4_CUBLASLT_LIBRARY"

_lock = threading.Lock()
_result: str | None = None


def soname() -> str:
    return f"libcublasLt.so.{_native.header_major()}"


def candidates() -> list[str]:
    name = soname()
    major = _native.header_major()
    out = []
    if os.environ.get(ENV_LIBRARY):
        out.append(os.environ[ENV_LIBRARY])
    for p in sys.path:
        for sub in (f"nvidia/cu{major}/lib", "nvidia/cublas/lib"):
            f = os.path.join(p or ".", sub, name)
            if os.path.isfile(f) and f not in out:
                out.append(f)
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root:
            for lib in ("lib64", "lib", "targets/x86_64-linux/lib"):
                f = os.path.join(root, lib, name)
                if os.path.isfile(f) and f not in out:
                    out.append(f)
    out.append(name)
    return out


def load() -> str:
    """Open cuBLASLt once; '' on success, else why it could not be opened (every path tried)."""
    global _result
    if _native is None:
        return f"native module nvfp4_cublaslt._native is missing ({NATIVE_ERROR})"
    with _lock:
        if _result is not None:
            return _result
        errors = []
        if _native.library_loaded():
            _result = ""
            return _result
        # Already in the process (torch links it): reuse that copy rather than mapping a second one.
        _preload_torch_copy()
        for path in candidates():
            err = _native.load_library(path)
            if not err:
                _result = ""
                return _result
            errors.append(f"{path}: {err}")
        _result = f"cuBLASLt library ({soname()}) could not be loaded; tried " + "; ".join(errors)
        return _result


def _preload_torch_copy() -> None:
    """Make the libcublasLt torch ships (if any) the one the bare soname resolves to."""
    try:
        import torch  # noqa: F401  (loading torch maps its CUDA libraries, libcublasLt among them)
    except Exception:
        pass
