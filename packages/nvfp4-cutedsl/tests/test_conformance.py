"""The shared conformance suite against the reference: skips cleanly without a Hopper GPU or the DSL."""

import torch

from nvfp4.testing.conformance import ConformanceSuite


class TestConformance(ConformanceSuite):
    backend = "cutedsl"
    must_support = (("bf16", torch.bfloat16, "linear"), ("fp16", torch.float16, "swizzled"),
                    ("nvfp4", torch.bfloat16, "linear"), ("nvfp4", torch.float32, "swizzled"))
