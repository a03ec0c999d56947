"""The example package is found through its entry point and passes the shared conformance suite."""

import torch

import nvfp4
from nvfp4.testing.conformance import ConformanceSuite


def test_discovered_through_the_entry_point():
    info = {b.name: b for b in nvfp4.backends()}
    assert info["example"].distribution == "nvfp4-example-backend"
    assert info["example"].plugin == "example" and info["example"].available


def test_gemm_runs_it_by_name():
    x = torch.randn(3, 64).bfloat16()
    w = nvfp4.quantize(torch.randn(40, 64))
    y = nvfp4.gemm(x, w, backend="example", out_dtype=torch.float32)
    torch.testing.assert_close(y, nvfp4.gemm_ref(x, w, out_dtype=torch.float32), rtol=1e-5, atol=1e-5)
    assert nvfp4.explain(x, w, backend="example").backend == "example"


class TestExampleConformance(ConformanceSuite):
    backend = "example"
    must_support = (("bf16", torch.bfloat16, "linear"), ("fp32", torch.float32, "swizzled"),
                    ("nvfp4", torch.float16, "linear"))
