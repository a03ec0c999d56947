"""ModelOpt NVFP4 checkpoints: save, load, round trip, sharding, and errors that name the tensor."""

from __future__ import annotations

import json
import sys
import warnings

import pytest
import torch

import nvfp4
from nvfp4.nn import Linear, calibrate, quantize_model

safetensors_torch = pytest.importorskip("safetensors.torch")


class Net(torch.nn.Module):
    def __init__(self, hidden=64, vocab=50):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, hidden)
        self.layers = torch.nn.ModuleList(torch.nn.ModuleDict({
            "q": torch.nn.Linear(hidden, hidden),
            "up": torch.nn.Linear(hidden, 2 * hidden, bias=False),
            "down": torch.nn.Linear(2 * hidden, hidden),
        }) for _ in range(2))
        self.norm = torch.nn.LayerNorm(hidden)
        self.lm_head = torch.nn.Linear(hidden, vocab, bias=False)
        self.register_buffer("position_ids", torch.arange(8))

    def forward(self, ids):
        x = self.embed(ids)
        for layer in self.layers:
            x = x + layer["down"](torch.relu(layer["up"](layer["q"](x))))
        return self.lm_head(self.norm(x))


def _net(seed=0):
    torch.manual_seed(seed)
    return Net().eval()


def _ids():
    return torch.randint(0, 50, (2, 8), generator=torch.Generator().manual_seed(5))


def _quantized(static=True, seed=0):
    model = _net(seed)
    quantize_model(model, backend="reference", exclude=["lm_head"])
    model.layers[1]["up"].activation = "bf16"  # one weight-only layer
    if static:
        with calibrate(model):
            model(_ids())
    return model


def _bits(t):
    return t.view(torch.uint8) if t.dtype == torch.float8_e4m3fn else t


def _assert_same_tensors(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert torch.equal(_bits(a[k]), _bits(b[k])), k


def test_saved_files_follow_modelopt_conventions(tmp_path):
    model = _quantized()
    files = nvfp4.save_modelopt(model, tmp_path)
    assert {f.name for f in files} == {"model.safetensors", "hf_quant_config.json"}
    sd = safetensors_torch.load_file(tmp_path / "model.safetensors")  # the plain safetensors reader accepts it
    p = "layers.0.up"
    assert sd[p + ".weight"].dtype == torch.uint8 and sd[p + ".weight"].shape == (128, 32)
    assert sd[p + ".weight_scale"].dtype == torch.float8_e4m3fn and sd[p + ".weight_scale"].shape == (128, 4)
    assert sd[p + ".weight_scale_2"].dtype == torch.float32 and sd[p + ".weight_scale_2"].shape == ()
    assert sd[p + ".input_scale"].dtype == torch.float32 and sd[p + ".input_scale"].shape == ()
    assert "layers.1.up.input_scale" not in sd  # weight-only: no activation scale
    assert sd["lm_head.weight"].dtype == torch.float32 and sd["lm_head.weight"].shape == (50, 64)
    assert torch.equal(sd["position_ids"], torch.arange(8))
    cfg = json.loads((tmp_path / "hf_quant_config.json").read_text())
    assert cfg["producer"]["name"] == "modelopt"
    q = cfg["quantization"]
    assert q["quant_algo"] == "NVFP4" and q["group_size"] == 16 and q["exclude_modules"] == ["lm_head"]
    assert cfg["nvfp4"]["weight_only_modules"] == {"layers.1.up": "bf16"}
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as f:
        assert f.metadata() == {"format": "pt"}


def test_round_trip_into_a_dense_model_is_bit_identical(tmp_path):
    model = _quantized()
    nvfp4.save_modelopt(model, tmp_path / "a")
    fresh = _net(seed=1)  # different dense weights: everything must come from the checkpoint
    report = nvfp4.load_modelopt(fresh, tmp_path / "a", backend="reference")
    assert sorted(report.quantized) == sorted(report.replaced) == sorted(
        f"layers.{i}.{n}" for i in range(2) for n in ("q", "up", "down"))
    assert report.missing == [] and report.unexpected == []
    for name, m in model.named_modules():  # names and kinds preserved
        got = fresh.get_submodule(name) if name else fresh
        assert type(got) is type(m), name
        if isinstance(m, Linear):
            assert got.activation == m.activation and (got.input_scale is None) == (m.input_scale is None)
    _assert_same_tensors(model.state_dict(), fresh.state_dict())
    assert torch.equal(model(_ids()), fresh(_ids()))
    nvfp4.save_modelopt(fresh, tmp_path / "b")  # and the files themselves round-trip
    _assert_same_tensors(safetensors_torch.load_file(tmp_path / "a" / "model.safetensors"),
                         safetensors_torch.load_file(tmp_path / "b" / "model.safetensors"))
    cfg_a, cfg_b = ((tmp_path / d / "hf_quant_config.json").read_text() for d in "ab")
    assert cfg_a == cfg_b


def test_sharded_save_and_load(tmp_path):
    model = _quantized()
    files = nvfp4.save_modelopt(model, tmp_path, max_shard_size=8000)
    shards = sorted(f.name for f in files if f.suffix == ".safetensors")
    assert len(shards) > 2 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(shards)
    assert set(index["weight_map"]) == set(model.state_dict())
    fresh = _net(seed=2)
    nvfp4.load_modelopt(fresh, tmp_path, backend="reference")
    _assert_same_tensors(model.state_dict(), fresh.state_dict())
    # Saving unsharded into the same directory removes the old shards and index.
    nvfp4.save_modelopt(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf_quant_config.json", "model.safetensors"]


def test_load_without_model_reads_the_checkpoint(tmp_path):
    model = _quantized()
    nvfp4.save_modelopt(model, tmp_path)
    ckpt = nvfp4.load_modelopt(tmp_path)
    assert ckpt.quant_config["quantization"]["quant_algo"] == "NVFP4"
    w = ckpt.layers()["layers.0.down"]
    assert w.shape == (64, 128)
    torch.testing.assert_close(nvfp4.dequantize(w), model.layers[0]["down"].dequantized_weight())


def test_loading_into_an_already_quantized_model_keeps_its_backend(tmp_path):
    model = _quantized()
    nvfp4.save_modelopt(model, tmp_path)
    target = _quantized(static=False, seed=3)
    for m in target.modules():
        if isinstance(m, Linear):
            m.backend = "reference"
    report = nvfp4.load_modelopt(target, tmp_path)
    assert report.replaced == []
    assert all(m.backend == "reference" for m in target.modules() if isinstance(m, Linear))
    _assert_same_tensors(model.state_dict(), target.state_dict())


def test_dynamic_w4a4_layers_warn_on_save(tmp_path):
    with pytest.warns(UserWarning, match="input_scale"):
        nvfp4.save_modelopt(_quantized(static=False), tmp_path)


def _saved(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nvfp4.save_modelopt(_quantized(), tmp_path)
    return safetensors_torch.load_file(tmp_path / "model.safetensors")


def _rewrite(tmp_path, sd):
    safetensors_torch.save_file(sd, tmp_path / "model.safetensors", metadata={"format": "pt"})


def test_shape_mismatch_names_the_tensor(tmp_path):
    _saved(tmp_path)
    wrong = Net()
    wrong.layers[0]["q"] = torch.nn.Linear(64, 32)
    with pytest.raises(ValueError, match=r"shape mismatch for tensor 'layers\.0\.q\.weight'.*\[64, 32\].*\[32, 32\]"):
        nvfp4.load_modelopt(wrong, tmp_path)
    assert type(wrong.layers[1]["q"]) is torch.nn.Linear  # nothing was changed before the error


def test_dtype_mismatch_names_the_tensor(tmp_path):
    sd = _saved(tmp_path)
    sd["layers.0.q.weight_scale"] = sd["layers.0.q.weight_scale"].float()
    _rewrite(tmp_path, sd)
    with pytest.raises(ValueError, match=r"dtype mismatch for tensor 'layers\.0\.q\.weight_scale'"):
        nvfp4.load_modelopt(_net(), tmp_path)
    sd = _saved(tmp_path)
    with pytest.raises(ValueError, match=r"dtype mismatch for tensor 'layers\.0\.down\.bias'.*bfloat16.*model\.to"):
        nvfp4.load_modelopt(_net().to(torch.bfloat16), tmp_path)


def test_strictness(tmp_path):
    sd = _saved(tmp_path)
    sd["extra.tensor"] = torch.zeros(3)
    del sd["norm.bias"]
    _rewrite(tmp_path, sd)
    with pytest.raises(ValueError, match="'extra.tensor' has no counterpart"):
        nvfp4.load_modelopt(_net(), tmp_path)
    report = nvfp4.load_modelopt(_net(), tmp_path, strict=False)
    assert report.unexpected == ["extra.tensor"] and report.missing == ["norm.bias"]


def test_scalars_stored_as_one_element_vectors_load(tmp_path):
    sd = _saved(tmp_path)
    sd["layers.0.q.weight_scale_2"] = sd["layers.0.q.weight_scale_2"].reshape(1)
    _rewrite(tmp_path, sd)
    model = _net()
    nvfp4.load_modelopt(model, tmp_path)
    assert model.layers[0]["q"].weight_scale_2.shape == ()


def test_non_nvfp4_quant_config_is_refused(tmp_path):
    _saved(tmp_path)
    cfg = json.loads((tmp_path / "hf_quant_config.json").read_text())
    cfg["quantization"]["quant_algo"] = "FP8"
    (tmp_path / "hf_quant_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="quant_algo is 'FP8'"):
        nvfp4.load_modelopt(_net(), tmp_path)


def test_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nvfp4.load_modelopt(_net(), tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        nvfp4.load_modelopt(_net(), tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="directory"):
        nvfp4.save_modelopt(_net(), tmp_path / "file")
    with pytest.raises(TypeError, match="path"):
        nvfp4.load_modelopt(_net())


def test_missing_safetensors_gives_install_hint(tmp_path, monkeypatch):
    _saved(tmp_path)
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(ImportError, match=r"nvfp4-core\[checkpoints\]"):
        nvfp4.load_modelopt(_net(), tmp_path)
    nvfp4.save_modelopt(_quantized(), tmp_path / "again")  # saving needs no safetensors


def test_saving_needs_no_numpy(tmp_path, monkeypatch):
    def no_numpy(self, *args, **kwargs):
        raise RuntimeError("Numpy is not available")

    monkeypatch.setattr(torch.Tensor, "numpy", no_numpy)  # numpy is not a dependency of nvfp4-core
    model = _quantized()
    nvfp4.save_modelopt(model, tmp_path)
    fresh = _net(seed=4)
    nvfp4.load_modelopt(fresh, tmp_path)
    _assert_same_tensors(model.state_dict(), fresh.state_dict())


def test_tied_weights_stored_once_load(tmp_path):
    model = _quantized()
    model.lm_head.weight = model.embed.weight  # tied, as in many language models
    sd = {k: v for k, v in _saved(tmp_path).items() if k != "lm_head.weight"}  # stored once
    _rewrite(tmp_path, sd)
    fresh = _net(seed=6)
    fresh.lm_head.weight = fresh.embed.weight
    report = nvfp4.load_modelopt(fresh, tmp_path)
    assert report.missing == []
    assert torch.equal(fresh.lm_head.weight, sd["embed.weight"])
