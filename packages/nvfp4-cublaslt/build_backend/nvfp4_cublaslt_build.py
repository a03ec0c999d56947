"""scikit-build-core, plus the ``nvidia-cublas`` wheel as a build requirement when the CUDA toolkit has no
cuBLASLt headers.

The native module opens libcublasLt at run time, so building needs only ``cublasLt.h``. A full CUDA
toolkit has it; the CI image (nvcc only) does not, and there the PyPI wheel ``nvidia-cublas`` (NVIDIA's
own redistributable, headers under ``nvidia/cu13/include``) is the clean source. It is large (~440 MB),
so it is requested only when the toolkit lacks the header. ``NVFP4_CUBLASLT_WHEEL=1`` forces it,
``=0`` never asks for it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from scikit_build_core import build as _skb
from scikit_build_core.build import (  # noqa: F401  (re-exported PEP 517 hooks)
    build_editable,
    build_sdist,
    build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

CUBLAS_WHEEL = "nvidia-cublas>=13,<14"


def _toolkit_has_cublaslt() -> bool:
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        roots.append(str(Path(nvcc).resolve().parent.parent))
    for root in filter(None, roots):
        for inc in ("include", "targets/x86_64-linux/include", "targets/sbsa-linux/include"):
            if (Path(root) / inc / "cublasLt.h").is_file():
                return True
    return False


def _extra() -> list[str]:
    force = os.environ.get("NVFP4_CUBLASLT_WHEEL", "")
    if force == "1" or (force != "0" and not _toolkit_has_cublaslt()):
        return [CUBLAS_WHEEL]
    return []


def get_requires_for_build_wheel(config_settings=None):
    return list(_skb.get_requires_for_build_wheel(config_settings)) + _extra()


def get_requires_for_build_editable(config_settings=None):
    return list(_skb.get_requires_for_build_editable(config_settings)) + _extra()


def get_requires_for_build_sdist(config_settings=None):
    return list(_skb.get_requires_for_build_sdist(config_settings))
