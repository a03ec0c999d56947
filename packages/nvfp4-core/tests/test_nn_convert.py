"""nvfp4.nn.quantize_model: what it converts, what it skips and why."""

from __future__ import annotations

import pytest
import torch

import nvfp4
from nvfp4.nn import Linear, quantize_model


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q = torch.nn.Linear(64, 64)
        self.up = torch.nn.Linear(64, 128)
        self.down = torch.nn.Linear(128, 64, bias=False)
        self.odd = torch.nn.Linear(20, 8)  # K not a multiple of 16
        self.attn = torch.nn.MultiheadAttention(64, 4, batch_first=True)

    def forward(self, x):
        h = self.down(torch.relu(self.up(self.q(x))))
        return h + self.attn(h, h, h, need_weights=False)[0]


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.ModuleList([Block(), Block()])
        self.head = torch.nn.Linear(64, 10)
        self.shared = torch.nn.Linear(64, 64)
        self.alias = self.shared  # the same module at two paths

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.head(self.alias(self.shared(x)))


def _model():
    torch.manual_seed(0)
    return Tiny().eval()


def test_converts_and_reports_skips():
    model = _model()
    x = torch.randn(2, 5, 64, generator=torch.Generator().manual_seed(1))
    dense_out = model(x).detach()
    report = quantize_model(model, backend="reference", exclude=["head", "nothing.*"])
    assert set(report.converted) == {"blocks.0.q", "blocks.0.up", "blocks.0.down", "blocks.1.q", "blocks.1.up",
                                     "blocks.1.down", "shared", "alias"}
    reasons = {s.name: s.reason for s in report.skipped}
    assert reasons["head"] == "excluded by pattern 'head'"
    assert "not a multiple of 16" in reasons["blocks.0.odd"]
    assert "MultiheadAttention" in reasons["blocks.0.attn.out_proj"]
    assert report.unused_patterns == ["nothing.*"]
    assert "skipped head: excluded by pattern 'head'" in str(report)
    assert isinstance(model.blocks[1].up, Linear) and model.blocks[1].up.backend == "reference"
    assert type(model.head) is torch.nn.Linear and type(model.blocks[0].odd) is torch.nn.Linear
    assert model.shared is model.alias  # still shared
    out = model(x)
    cos = torch.nn.functional.cosine_similarity(out.flatten(), dense_out.flatten(), dim=0)
    assert cos > 0.97, float(cos)


def test_weight_only_and_backend_change_after_conversion():
    model = _model()
    quantize_model(model, backend="reference", activation="fp16")
    layers = [m for m in model.modules() if isinstance(m, Linear)]
    assert layers and all(m.activation == "fp16" for m in layers)
    for m in layers:
        m.backend = "auto"
    model(torch.randn(1, 3, 64))


def test_converted_weights_are_nvfp4_quantize_of_the_dense_ones():
    model = _model()
    w = model.blocks[0].up.weight.detach().clone()
    quantize_model(model, backend="reference")
    want = nvfp4.quantize(w)
    assert torch.equal(model.blocks[0].up.weight, want.data)
    assert torch.equal(model.blocks[0].up.weight_scale.view(torch.uint8), want.scale.view(torch.uint8))
    assert torch.equal(model.blocks[0].up.weight_scale_2, want.global_scale)


def test_argument_errors():
    with pytest.raises(TypeError, match="from_float"):
        quantize_model(torch.nn.Linear(16, 16))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        quantize_model("model")
    with pytest.raises(ValueError, match="activation"):
        quantize_model(_model(), activation="fp8")
    with pytest.raises(TypeError, match="exclude"):
        quantize_model(_model(), exclude=[3])
    report = quantize_model(_model(), exclude="head")  # one pattern as a plain string
    assert "head" in {s.name for s in report.skipped}
