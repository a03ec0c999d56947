"""The NVFP4 format: rounding, packing, block and global scales, layouts, validation."""

import math
import struct

import pytest
import torch

import nvfp4
from nvfp4 import e2m1, layouts

GRID = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]


# -- an independent scalar implementation of the recipe ---------------------------------------------
def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def _e4m3(x: float) -> float:
    """Round a positive float32 to E4M3 (RNE), by enumerating every E4M3 value."""
    values = sorted({(1 + m / 8) * 2.0 ** (e - 7) for e in range(1, 16) for m in range(8)
                     if not (e == 15 and m == 7)} | {m / 8 * 2.0 ** -6 for m in range(8)})
    best = min(values, key=lambda v: (abs(v - x), _mantissa_odd(v, values)))
    return best


def _mantissa_odd(v: float, values) -> int:
    return values.index(v) % 2  # consecutive E4M3 values alternate their mantissa's low bit


def _e2m1_code(y: float) -> int:
    mag = abs(y)
    best = min(range(8), key=lambda c: (abs(GRID[c] - mag), c % 2))  # ties to the even code
    if mag > 6:
        best = 7
    return best | (8 if y < 0 and best != 0 else 0)


def _quantize_scalar(row: list[float], g: float):
    codes, scales = [], []
    for b0 in range(0, len(row), 16):
        block = [_f32(v) for v in row[b0:b0 + 16]]
        amax = max(abs(v) for v in block)
        s = _e4m3(min(max(_f32(_f32(amax / 6.0) / g), 2.0 ** -9), 448.0))
        total = _f32(s * g)
        codes += [_e2m1_code(_f32(v / total)) for v in block]
        scales.append(s)
    return codes, scales


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_quantize_matches_independent_scalar_implementation(dtype):
    gen = torch.Generator().manual_seed(7)
    x = (torch.randn(6, 64, generator=gen) * torch.exp(2 * torch.randn(6, 1, generator=gen))).to(dtype)
    x[0, :16] = 0.0
    x[1, :16] = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0, -0.25, -0.75, -1.25, -1.75,
                              -2.5, -3.5, -5.0, -6.0])
    t = nvfp4.quantize(x)
    g = float(t.global_scale)
    assert g == _f32(float(x.float().abs().max()) / 2688.0)
    codes = e2m1.unpack(t.data)
    for r in range(x.shape[0]):
        want_codes, want_scales = _quantize_scalar([float(v) for v in x[r].float()], g)
        assert codes[r].tolist() == want_codes, f"row {r}"
        assert [float(s) for s in t.scale[r].float()] == want_scales, f"row {r}"


def test_e2m1_ties_go_to_even_and_saturate():
    y = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 7.0, 100.0, -0.1, -0.0, -0.3])
    assert e2m1.encode(y).tolist() == [0, 2, 2, 4, 4, 6, 6, 7, 7, 0, 0, 9]


def test_exact_grid_values_round_trip_exactly():
    vals = torch.tensor(GRID + [-v for v in GRID[1:]] + [0.0], dtype=torch.float32)
    scales = torch.tensor([2.0 ** e for e in range(-6, 8)])
    rows = []
    for s in scales:  # each row is one block of grid values times a power-of-two scale, amax = 6 * s
        rows.append(vals[:16] * s)
    x = torch.stack(rows)
    x[:, 7] = 6 * scales  # make every block's amax 6 * s so its E4M3 scale is exactly s
    for layout in ("linear", "swizzled"):
        t = nvfp4.quantize(x, global_scale=1.0, layout=layout)
        assert torch.equal(nvfp4.dequantize(t), x)


def test_global_scale_convention_and_defaults():
    x = torch.randn(4, 32) * 10
    t = nvfp4.quantize(x)
    assert t.global_scale.dtype == torch.float32 and t.global_scale.dim() == 0
    assert math.isclose(float(t.global_scale), float(x.abs().max()) / (6 * 448), rel_tol=1e-6)
    z = nvfp4.quantize(torch.zeros(2, 16))
    assert float(z.global_scale) == 1.0 and torch.equal(nvfp4.dequantize(z), torch.zeros(2, 16))
    # Each value is within half the widest grid step (1.0 between 4 and 6) of its block's scale.
    step = (t.scale.float() * t.global_scale).repeat_interleave(16, dim=1)
    assert bool(((nvfp4.dequantize(t) - x).abs() <= step * 1.0 + 1e-7).all())


def test_swizzle_offsets_match_vendor_examples():
    assert layouts.swizzled_offset(5, 2, 128) == 82
    assert layouts.swizzled_offset(5, 5, 128) == 593
    lin = torch.arange(8 * 8, dtype=torch.float32).reshape(8, 8)
    buf = layouts.swizzle(lin)
    for r in range(8):
        for kb in range(8):
            assert buf[layouts.swizzled_offset(r, kb, 128)] == lin[r, kb]


@pytest.mark.parametrize("rows,k", [(1, 16), (5, 48), (130, 96), (257, 1040)])
def test_to_layout_round_trip(rows, k):
    x = torch.randn(rows, k)
    t = nvfp4.quantize(x)
    s = t.to_layout("swizzled")
    assert s.layout == "swizzled" and s.scale.numel() == layouts.swizzled_numel(rows, k)
    back = s.to_layout("linear")
    assert torch.equal(back.scale.view(torch.uint8), t.scale.view(torch.uint8))
    assert torch.equal(nvfp4.dequantize(s), nvfp4.dequantize(t))
    direct = nvfp4.quantize(x, layout="swizzled")
    assert torch.equal(direct.scale.view(torch.uint8), s.scale.view(torch.uint8))
    for r, kb in [(0, 0), (rows - 1, k // 16 - 1)]:
        off = layouts.swizzled_offset(r, kb, k)
        assert s.scale.view(torch.uint8)[off] == t.scale.view(torch.uint8)[r, kb]


def test_from_raw_accepts_trtllm_style_buffers():
    t = nvfp4.quantize(torch.randn(130, 64), layout="swizzled")
    raw = nvfp4.NVFP4Tensor.from_raw(t.data, t.scale.view(torch.uint8).reshape(256, 4), 0.5,
                                     layout="swizzled", shape=(130, 64))
    assert raw.scale.dtype == torch.float8_e4m3fn and raw.scale.dim() == 1
    assert float(raw.global_scale) == 0.5


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(data=torch.zeros(4, 8)), TypeError, "data must be a uint8"),
    (dict(data=torch.zeros(4, 7, dtype=torch.uint8)), ValueError, "data must have shape"),
    (dict(scale=torch.zeros(4, 1)), TypeError, "scale must be float8_e4m3fn"),
    (dict(scale=torch.zeros(4, 2, dtype=torch.uint8)), ValueError, "scale must have shape"),
    (dict(layout="swizzled"), ValueError, "scale must hold 512 elements"),
    (dict(layout="tiled"), ValueError, "layout must be one of"),
    (dict(shape=(4, 24)), ValueError, "k a positive multiple of 16"),
    (dict(global_scale=torch.ones(2)), ValueError, "global_scale must hold one element"),
])
def test_from_raw_validates(kwargs, exc, match):
    args = dict(data=torch.zeros(4, 8, dtype=torch.uint8), scale=torch.zeros(4, 1, dtype=torch.uint8),
                global_scale=1.0, layout="linear", shape=(4, 16))
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        nvfp4.NVFP4Tensor.from_raw(args.pop("data"), args.pop("scale"), args.pop("global_scale"), **args)


@pytest.mark.parametrize("x,kwargs,exc,match", [
    (torch.randn(4, 24), {}, ValueError, "multiple of 16"),
    (torch.randn(2, 4, 16), {}, ValueError, "must be 2-D"),
    (torch.randint(0, 3, (4, 16)), {}, TypeError, "x must be float32"),
    ([[1.0] * 16], {}, TypeError, "x must be a torch.Tensor"),
    (torch.randn(4, 16), {"layout": "tiled"}, ValueError, "layout must be one of"),
    (torch.randn(4, 16), {"global_scale": 0.0}, ValueError, "global_scale must be finite and > 0"),
    (torch.randn(4, 16), {"global_scale": float("nan")}, ValueError, "global_scale must be finite"),
])
def test_quantize_rejects_bad_input(x, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        nvfp4.quantize(x, **kwargs)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_quantize_rejects_non_finite_by_default(bad):
    x = torch.randn(4, 16)
    x[1, 3] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        nvfp4.quantize(x)
    # Documented: unchecked non-finite input gives unspecified values but never crashes.
    t = nvfp4.quantize(x, check_finite=False)
    assert t.shape == (4, 16)


def test_dequantize_dtypes_and_errors():
    t = nvfp4.quantize(torch.randn(3, 32))
    for dt in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
        assert nvfp4.dequantize(t, dt).dtype == dt
    with pytest.raises(TypeError, match="t must be an NVFP4Tensor"):
        nvfp4.dequantize(torch.zeros(3, 32))
    with pytest.raises(TypeError, match="dtype must be a floating dtype"):
        nvfp4.dequantize(t, torch.int32)
