"""What a tuning decision is keyed on.

M is bucketed: a problem with M rows is tuned at the smallest power of two
>= M, capped at ``M_CAP`` (beyond it every GEMM is compute-bound and one
decision serves). Everything else in the key is exact: N, K, the format of
``a``, the output dtype, bias, scale layout, the device's name and compute
capability, and the installed backends with their distributions' versions.
"""

from __future__ import annotations

import functools
import hashlib
import json

import torch

from ..problem import GemmProblem

M_CAP = 8192


def m_bucket(m: int) -> int:
    """Smallest power of two >= m, at most ``M_CAP``."""
    return min(1 << max(0, (int(m) - 1).bit_length()), M_CAP)


@functools.cache
def device_identity(device: torch.device) -> str:
    """``"NVIDIA H100 80GB HBM3 (sm_90)"`` or ``"cpu"``."""
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(idx)
        return f"{torch.cuda.get_device_name(idx)} (sm_{major}{minor})"
    return device.type


def backends_digest(fingerprint: tuple) -> str:
    """A short stable digest of the installed backends and their versions."""
    return hashlib.sha256(json.dumps(fingerprint).encode()).hexdigest()[:16]


def key_string(problem: GemmProblem, fingerprint: tuple) -> str:
    """The persistent, human-readable key of a problem's decision."""
    out = str(problem.out_dtype).replace("torch.", "")
    return (f"m{m_bucket(problem.m)}_n{problem.n}_k{problem.k}_a-{problem.a_format}_out-{out}"
            f"_bias{int(problem.has_bias)}_{problem.layout}|{device_identity(problem.device)}"
            f"|backends-{backends_digest(fingerprint)}")


def bucket_problem(problem: GemmProblem) -> GemmProblem:
    """The problem the tuner profiles: the same, at the bucket's M."""
    from dataclasses import replace

    return replace(problem, m=m_bucket(problem.m))
