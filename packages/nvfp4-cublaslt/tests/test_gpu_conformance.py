"""The core's conformance suite against the reference: every a-format, out dtype, layout, bias, odd shape
and tactic. Skips with the backend's reason where it is unavailable (no GPU, compute capability < 9.0)."""

import torch

from nvfp4.testing.conformance import ConformanceSuite


class TestConformance(ConformanceSuite):
    backend = "cublaslt"
    must_support = (("bf16", torch.bfloat16, "linear"), ("nvfp4", torch.bfloat16, "swizzled"),
                    ("nvfp4", torch.float16, "linear"), ("fp16", torch.float32, "swizzled"),
                    ("fp32", torch.float32, "linear"))
