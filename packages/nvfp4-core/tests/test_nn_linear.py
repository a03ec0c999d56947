"""nvfp4.nn.Linear: forward against the reference, state_dict, device/dtype moves, validation."""

from __future__ import annotations

import pytest
import torch

import nvfp4
from nvfp4.nn import Linear, calibrate
from nvfp4.quantize import GLOBAL_DIVISOR


def _dense(k=64, n=48, bias=True, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    lin = torch.nn.Linear(k, n, bias=bias, dtype=dtype)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(n, k, generator=g) * 0.1)
        if bias:
            lin.bias.copy_(torch.randn(n, generator=g))
    return lin


def _x(*shape, seed=1, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def test_w4a4_forward_matches_reference_and_flattens_batch_dims():
    dense = _dense()
    layer = Linear.from_float(dense, backend="reference")
    x = _x(2, 3, 64)
    y = layer(x)
    assert y.shape == (2, 3, 48) and y.dtype == torch.float32
    a = nvfp4.quantize(x.reshape(6, 64))
    want = nvfp4.gemm_ref(a, nvfp4.quantize(dense.weight.detach()), dense.bias.detach(), torch.float32)
    assert torch.equal(y.reshape(6, 48), want)


def test_weight_only_casts_activation_and_keeps_input_dtype_for_output():
    dense = _dense()
    layer = Linear.from_float(dense, backend="reference", activation="bf16")
    x = _x(5, 64)
    want = nvfp4.gemm_ref(x.to(torch.bfloat16), nvfp4.quantize(dense.weight.detach()), dense.bias.detach(),
                          torch.float32)
    assert torch.equal(layer(x), want)
    assert layer(x.to(torch.bfloat16)).dtype == torch.bfloat16


def test_static_input_scale_is_used():
    dense = _dense()
    layer = Linear.from_float(dense, backend="reference", input_scale=0.01)
    x = _x(4, 64)
    a = nvfp4.quantize(x, global_scale=0.01)
    want = nvfp4.gemm_ref(a, nvfp4.quantize(dense.weight.detach()), dense.bias.detach(), torch.float32)
    assert torch.equal(layer(x), want)
    dynamic = Linear.from_float(dense, backend="reference")
    assert not torch.equal(dynamic(x), want)  # the static scale changed the result


def test_quantized_output_is_close_to_dense():
    dense = _dense(k=256, n=128)
    x = _x(16, 256)
    for activation in ("nvfp4", "bf16", "fp16"):
        y = Linear.from_float(dense, backend="reference", activation=activation)(x)
        cos = torch.nn.functional.cosine_similarity(y.flatten(), dense(x).detach().flatten(), dim=0)
        assert cos > 0.98, (activation, float(cos))


def test_auto_backend_runs_on_cpu():
    layer = Linear.from_float(_dense())
    x = _x(3, 64)
    ref = Linear.from_float(_dense(), backend="reference")
    torch.testing.assert_close(layer(x), ref(x), rtol=1e-5, atol=1e-5)


def test_state_dict_round_trip_is_bit_identical():
    src = Linear.from_float(_dense(), backend="reference", input_scale=0.02)
    sd = src.state_dict()
    assert set(sd) == {"weight", "weight_scale", "weight_scale_2", "input_scale", "bias"}
    assert sd["weight"].dtype == torch.uint8 and sd["weight"].shape == (48, 32)
    assert sd["weight_scale"].dtype == torch.float8_e4m3fn and sd["weight_scale"].shape == (48, 4)
    assert sd["weight_scale_2"].shape == () and sd["input_scale"].shape == ()
    dst = Linear(64, 48, backend="reference")
    assert dst.input_scale is None
    dst.load_state_dict(sd)
    for k, v in dst.state_dict().items():
        assert torch.equal(v.view(torch.uint8) if v.dtype == torch.float8_e4m3fn else v,
                           sd[k].view(torch.uint8) if sd[k].dtype == torch.float8_e4m3fn else sd[k]), k
    x = _x(7, 64)
    assert torch.equal(src(x), dst(x))


def test_load_state_dict_names_dtype_mismatch():
    layer = Linear(64, 48)
    sd = layer.state_dict()
    sd["weight_scale"] = sd["weight_scale"].float()
    with pytest.raises(RuntimeError, match=r"dtype mismatch for weight_scale.*float32"):
        layer.load_state_dict(sd)


def test_to_dtype_keeps_the_quantized_format():
    layer = Linear.from_float(_dense(), backend="reference", input_scale=0.0123456789)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    layer.to(torch.bfloat16)
    layer.half()
    assert layer.weight.dtype == torch.uint8
    assert layer.weight_scale.dtype == torch.float8_e4m3fn
    assert layer.weight_scale_2.dtype == torch.float32 and torch.equal(layer.weight_scale_2,
                                                                       before["weight_scale_2"])
    assert layer.input_scale.dtype == torch.float32 and torch.equal(layer.input_scale, before["input_scale"])
    assert layer.bias.dtype == torch.float16  # the dense part follows the model
    assert layer(_x(2, 64, dtype=torch.float16)).dtype == torch.float16


def test_meta_construction_then_to_empty():
    layer = Linear(64, 32, device="meta")
    assert layer.weight.is_meta
    layer.to_empty(device="cpu")
    assert layer.weight.device.type == "cpu" and layer.weight.dtype == torch.uint8


def test_backend_settable_and_unknown_backend_fails_at_call():
    layer = Linear.from_float(_dense(), backend="reference")
    layer.backend = "no-such-backend"
    assert layer.backend == "no-such-backend"
    with pytest.raises(ValueError, match="no-such-backend"):
        layer(_x(2, 64))
    layer.backend = "reference"
    layer(_x(2, 64))
    with pytest.raises(TypeError, match="backend"):
        layer.backend = 3


def test_argument_validation():
    with pytest.raises(ValueError, match="in_features.*multiple of 16"):
        Linear(24, 8)
    with pytest.raises(ValueError, match="out_features"):
        Linear(32, 0)
    with pytest.raises(ValueError, match="activation"):
        Linear(32, 8, activation="int4")
    with pytest.raises(TypeError, match="backend"):
        Linear(32, 8, backend=None)
    with pytest.raises(TypeError, match="dtype"):
        Linear(32, 8, dtype=torch.int32)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        Linear(32, 8, bogus=1)
    with pytest.raises(TypeError, match="torch.nn.Linear"):
        Linear.from_float(torch.nn.Conv1d(1, 1, 1))
    layer = Linear(32, 8, backend="reference")
    with pytest.raises(ValueError, match="in_features = 32"):
        layer(torch.zeros(2, 16))
    with pytest.raises(TypeError, match="float32, bfloat16 or float16"):
        layer(torch.zeros(2, 32, dtype=torch.float64))
    with pytest.raises(ValueError, match="input_scale"):
        layer.set_input_scale(0.0)


def test_empty_batch():
    layer = Linear.from_float(_dense(), backend="reference")
    assert layer(torch.zeros(0, 3, 64)).shape == (0, 3, 48)


def test_calibrate_sets_static_scale_from_amax():
    model = torch.nn.Sequential(Linear.from_float(_dense(), backend="reference"),
                                Linear.from_float(_dense(k=48, n=16), backend="reference", activation="bf16"))
    x1, x2 = _x(4, 64, seed=3), _x(4, 64, seed=4) * 3
    with calibrate(model):
        model(x1)
        model(x2)
    amax = torch.maximum(x1.abs().amax(), x2.abs().amax())
    assert torch.equal(model[0].input_scale, amax / GLOBAL_DIVISOR)
    assert model[1].input_scale is None  # weight-only layers have no activation scale
    with pytest.raises(RuntimeError), calibrate(model):
        model(x1 * 100)
        raise RuntimeError("interrupted")
    assert torch.equal(model[0].input_scale, amax / GLOBAL_DIVISOR)  # unchanged on error
