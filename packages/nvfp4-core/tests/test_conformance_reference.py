"""The shared conformance suite, run against the reference backend (the suite's own sanity check)."""

from nvfp4.testing.conformance import ConformanceSuite


class TestReferenceConformance(ConformanceSuite):
    backend = "reference"
    must_support = (("bf16", __import__("torch").bfloat16, "linear"), ("nvfp4", __import__("torch").float32,
                                                                        "swizzled"))
