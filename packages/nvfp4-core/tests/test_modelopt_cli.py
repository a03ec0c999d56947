"""``nvfp4 quantize IN_DIR OUT_DIR``: dense safetensors checkpoints (single and sharded) to ModelOpt NVFP4."""

from __future__ import annotations

import json
import sys

import pytest
import torch

import nvfp4
from nvfp4.cli import main
from nvfp4.nn import Linear

safetensors_torch = pytest.importorskip("safetensors.torch")


def _dense_tensors(dtype=torch.bfloat16):
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return (torch.randn(*shape, generator=g) * 0.1).to(dtype)

    return {
        "model.embed_tokens.weight": r(100, 64),
        "model.layers.0.self_attn.q_proj.weight": r(64, 64),
        "model.layers.0.self_attn.q_proj.bias": r(64),
        "model.layers.0.mlp.up_proj.weight": r(128, 64),
        "model.layers.0.mlp.down_proj.weight": r(64, 128),
        "model.layers.0.mlp.gate.weight": r(8, 20),  # K = 20: stays dense
        "model.norm.weight": r(64),
        "lm_head.weight": r(100, 64),
    }


def _write_dense(directory, tensors, shards=1):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text('{"model_type": "toy"}')
    (directory / "tokenizer").mkdir()
    (directory / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    names = sorted(tensors)
    if shards == 1:
        safetensors_torch.save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})
        return
    weight_map = {}
    for i in range(shards):
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: tensors[k] for k in names[i::shards]}
        safetensors_torch.save_file(part, directory / fname, metadata={"format": "pt"})
        weight_map.update({k: fname for k in part})
    (directory / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def _read_all(directory):
    ckpt = nvfp4.load_modelopt(directory)
    return ckpt.tensors, ckpt.quant_config


@pytest.mark.parametrize("shards", [1, 3])
def test_quantize_cli_converts_linear_weights(tmp_path, shards, capsys):
    dense = _dense_tensors()
    _write_dense(tmp_path / "in", dense, shards)
    rc = main(["quantize", str(tmp_path / "in"), str(tmp_path / "out"), "--exclude", "*.down_proj", "--no-progress"])
    assert rc == 0
    assert "2 linear layers quantized" in capsys.readouterr().out
    out, cfg = _read_all(tmp_path / "out")
    for p in ("model.layers.0.self_attn.q_proj", "model.layers.0.mlp.up_proj"):
        want = nvfp4.quantize(dense[p + ".weight"])
        assert torch.equal(out[p + ".weight"], want.data)
        assert torch.equal(out[p + ".weight_scale"].view(torch.uint8), want.scale.view(torch.uint8))
        assert torch.equal(out[p + ".weight_scale_2"], want.global_scale)
    for k in ("model.embed_tokens.weight", "model.layers.0.mlp.down_proj.weight", "model.layers.0.mlp.gate.weight",
              "model.norm.weight", "lm_head.weight", "model.layers.0.self_attn.q_proj.bias"):
        assert torch.equal(out[k], dense[k]), k  # as is, bit for bit
    assert cfg["quantization"]["quant_algo"] == "NVFP4"
    assert cfg["quantization"]["exclude_modules"] == ["lm_head", "model.embed_tokens", "model.layers.0.mlp.down_proj",
                                                      "model.layers.0.mlp.gate"]
    assert (tmp_path / "out" / "config.json").read_text() == '{"model_type": "toy"}'
    assert (tmp_path / "out" / "tokenizer" / "vocab.txt").is_file()
    shard_files = sorted(p.name for p in (tmp_path / "out").glob("*.safetensors"))
    if shards == 1:
        assert shard_files == ["model.safetensors"]
    else:
        assert len(shard_files) == shards
        index = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
        assert set(index["weight_map"]) == set(out) and set(index["weight_map"].values()) == set(shard_files)


class Toy(torch.nn.Module):
    """A module tree whose names match ``_dense_tensors``."""

    def __init__(self):
        super().__init__()
        m = torch.nn.Module()
        m.embed_tokens = torch.nn.Embedding(100, 64)
        layer = torch.nn.Module()
        layer.self_attn = torch.nn.Module()
        layer.self_attn.q_proj = torch.nn.Linear(64, 64)
        layer.mlp = torch.nn.Module()
        layer.mlp.up_proj = torch.nn.Linear(64, 128, bias=False)
        layer.mlp.down_proj = torch.nn.Linear(128, 64, bias=False)
        layer.mlp.gate = torch.nn.Linear(20, 8, bias=False)
        m.layers = torch.nn.ModuleList([layer])
        m.norm = torch.nn.RMSNorm(64)
        self.model = m
        self.lm_head = torch.nn.Linear(64, 100, bias=False)


def test_cli_output_loads_into_the_model(tmp_path):
    _write_dense(tmp_path / "in", _dense_tensors(), shards=2)
    assert main(["quantize", str(tmp_path / "in"), str(tmp_path / "out"), "--activation", "bf16",
                 "--no-progress"]) == 0
    model = Toy().to(torch.bfloat16)
    report = nvfp4.load_modelopt(model, tmp_path / "out", backend="reference")
    assert sorted(report.replaced) == ["model.layers.0.mlp.down_proj", "model.layers.0.mlp.up_proj",
                                       "model.layers.0.self_attn.q_proj"]
    up = model.model.layers[0].mlp.up_proj
    assert isinstance(up, Linear) and up.activation == "bf16"
    x = torch.randn(3, 64, generator=torch.Generator().manual_seed(2)).to(torch.bfloat16)
    dense_w = _dense_tensors()["model.layers.0.mlp.up_proj.weight"]
    cos = torch.nn.functional.cosine_similarity(up(x).float().flatten(), (x @ dense_w.T).float().flatten(), dim=0)
    assert cos > 0.98


def test_progress_bar_and_plain_fallback(tmp_path, capsys, monkeypatch):
    _write_dense(tmp_path / "in", _dense_tensors())
    assert main(["quantize", str(tmp_path / "in"), str(tmp_path / "out")]) == 0
    assert "nvfp4 quantize" in capsys.readouterr().err  # tqdm's bar
    monkeypatch.setitem(sys.modules, "tqdm", None)
    assert main(["quantize", str(tmp_path / "in"), str(tmp_path / "out2")]) == 0
    err = capsys.readouterr().err
    assert "install tqdm" in err and "8/8 tensors (100%)" in err


def test_cli_errors(tmp_path, capsys):
    assert main(["quantize", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["quantize", str(tmp_path / "empty"), str(tmp_path / "out")]) == 2
    assert "model.safetensors" in capsys.readouterr().err
    _write_dense(tmp_path / "in", _dense_tensors())
    assert main(["quantize", str(tmp_path / "in"), str(tmp_path / "in")]) == 2
    assert "must differ" in capsys.readouterr().err
    assert main(["quantize", str(tmp_path / "in"), str(tmp_path / "q"), "--no-progress"]) == 0
    assert main(["quantize", str(tmp_path / "q"), str(tmp_path / "qq"), "--no-progress"]) == 2
    assert "quantized already" in capsys.readouterr().err
