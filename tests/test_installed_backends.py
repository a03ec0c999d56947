"""Whatever backends this environment has installed: each is listed with its package and version,
says why when it cannot run, and auto only ever runs an available one that matches the reference."""

import pytest
import torch

import nvfp4
from nvfp4.testing import assert_close_to_reference

INFOS = nvfp4.backends()


@pytest.mark.parametrize("info", INFOS, ids=[b.name for b in INFOS])
def test_listed_with_package_and_reason(info):
    assert info.distribution and info.version and info.plugin
    assert info.available or info.reason


def test_no_plugin_failed_to_load():
    assert nvfp4.plugin_errors() == []


@pytest.mark.parametrize("a_format", ["bf16", "nvfp4"])
def test_auto_runs_only_available_backends_and_matches_reference(a_format):
    dev = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    w = nvfp4.quantize(torch.randn(256, 512, device=dev))
    x = torch.randn(8, 512, device=dev)
    a = nvfp4.quantize(x) if a_format == "nvfp4" else x.bfloat16()
    d = nvfp4.explain(a, w)
    available = {b.name for b in INFOS if b.available}
    assert d.backend in available
    for c in d.candidates:
        if c.backend not in available:
            assert c.status == "unavailable" and c.reason
    y = nvfp4.gemm(a, w, out_dtype=torch.float32)
    assert_close_to_reference(y.cpu(), a.to("cpu") if a_format == "nvfp4" else a.cpu(), w.to("cpu"),
                              what=f"auto -> {d.backend}")
