"""``GemmProblem``: what a backend is asked to compute, without the data."""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Formats of operand ``a``: NVFP4 (W4A4) or a dense activation (weight-only).
A_FORMATS = ("nvfp4", "bf16", "fp16", "fp32")
DENSE_FORMATS = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}
FORMAT_DTYPES = {v: k for k, v in DENSE_FORMATS.items()}
OUT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


@dataclass(frozen=True)
class GemmProblem:
    """``out[M, N] = alpha * (a[M, K] @ b[N, K]^T) (+ bias[N])``, accumulated in FP32.

    ``b`` is always an NVFP4 weight; ``a`` is NVFP4 (``a_format == "nvfp4"``) or a
    dense bf16/fp16/fp32 activation. ``alpha`` is the product of the NVFP4
    operands' global scales, read on the device. ``layout`` is the scale layout
    of the NVFP4 operands (both share it).
    """

    m: int
    n: int
    k: int
    a_format: str
    out_dtype: torch.dtype
    has_bias: bool
    layout: str
    device: torch.device

    @property
    def weight_only(self) -> bool:
        return self.a_format != "nvfp4"

    def describe(self) -> str:
        out = str(self.out_dtype).replace("torch.", "")
        return (f"M={self.m} N={self.n} K={self.k} a={self.a_format} out={out} "
                f"bias={'yes' if self.has_bias else 'no'} layout={self.layout} device={self.device}")
