"""The shared conformance suite on the ``cutlass`` backend and quantizer (skips without a Hopper GPU)."""

import itertools

import torch

from nvfp4.testing.conformance import ConformanceSuite


class TestCutlassConformance(ConformanceSuite):
    backend = "cutlass"
    quantizer = "cutlass"
    must_support = tuple(itertools.product(("bf16", "fp16", "nvfp4"), (torch.bfloat16, torch.float16, torch.float32),
                                           ("linear", "swizzled")))
