"""``nvfp4.nn.Linear``: a linear layer whose weight is NVFP4.

The weight lives in registered buffers named as in a ModelOpt checkpoint, so
``state_dict()`` *is* the checkpoint layout of the layer:

    weight          uint8 [N, K/2]            two E2M1 codes a byte
    weight_scale    float8_e4m3fn [N, K/16]   linear (row-major) block scales
    weight_scale_2  float32 0-d               global dequantization scale
    input_scale     float32 0-d or None       static activation scale (W4A4); None: per-call
    bias            [N] or None               dense, in the layer's dtype
"""

from __future__ import annotations

import torch

from .. import deprecations
from ..gemm import AUTO, gemm
from ..layouts import BLOCK, LINEAR
from ..problem import OUT_DTYPES
from ..quantize import GLOBAL_DIVISOR, quantize
from ..tensor import SCALE_DTYPE, NVFP4Tensor

#: activation= values: W4A4 ("nvfp4") or weight-only with bf16/fp16 activations.
ACTIVATIONS = {"nvfp4": None, "bf16": torch.bfloat16, "fp16": torch.float16}
W4A4 = "nvfp4"

#: Buffers whose dtype is the format: ``.to(dtype)`` / ``.half()`` must never convert them.
_QUANTIZED_BUFFERS = ("weight", "weight_scale", "weight_scale_2", "input_scale")
_BUFFER_DTYPES = {"weight": torch.uint8, "weight_scale": SCALE_DTYPE, "weight_scale_2": torch.float32,
                  "input_scale": torch.float32}


def check_activation(activation) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)} (\"nvfp4\": W4A4, activations "
                         f"quantized per call; \"bf16\"/\"fp16\": weight-only), got {activation!r}")
    return activation


def check_backend(backend) -> str:
    # Existence is checked at the first call, not here: a model is often built or
    # loaded before (or on a machine without) the plugin that will run it.
    if not isinstance(backend, str) or not backend:
        raise TypeError(f"backend must be 'auto' or a backend name (see nvfp4.backends()), got {backend!r}")
    return backend


class Linear(torch.nn.Module):
    """``y = x @ W.T + b`` with ``W`` an NVFP4 ``[out_features, in_features]`` matrix.

    Args:
        in_features: K, a positive multiple of 16.
        out_features: N.
        bias: whether the layer has a (dense) bias.
        backend: ``"auto"`` (the fastest measured backend) or a backend name;
            settable later through ``layer.backend``.
        activation: ``"nvfp4"`` quantizes the activation on every call (W4A4):
            with a dynamic global scale (``amax / 2688``) unless ``input_scale``
            holds a calibrated one. ``"bf16"`` / ``"fp16"``: weight-only, the
            activation is cast to that dtype and multiplied as is.
        device: where the buffers live.
        dtype: dtype of the bias (the output has the input's dtype).

    A freshly constructed layer holds zeros; fill it with ``from_float``,
    ``from_nvfp4``, ``load_state_dict`` or ``nvfp4.load_modelopt``.
    The deprecated keywords ``use_cute_dsl_nvfp4_blockscaling_mm`` and
    ``use_cublaslt_nvfp4_blockscaling_mm`` still work (see ``nvfp4.deprecations``).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, backend: str = AUTO,
                 activation: str = W4A4, device=None, dtype=None, **deprecated_kwargs):
        backend = deprecations.linear_backend(check_backend(backend), deprecated_kwargs)
        super().__init__()
        for arg, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{arg} must be a positive int, got {v!r}")
        if in_features % BLOCK:
            raise ValueError(f"in_features (K = {in_features}) must be a multiple of {BLOCK}: NVFP4 scales "
                             f"blocks of {BLOCK} along K (keep such a layer dense, or pad K with zeros)")
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
        dtype = torch.get_default_dtype() if dtype is None else dtype
        if dtype not in OUT_DTYPES:
            raise TypeError(f"dtype must be torch.float32, torch.bfloat16 or torch.float16, got {dtype!r}")
        self.in_features = in_features
        self.out_features = out_features
        self._backend = backend
        self._activation = check_activation(activation)
        n, k = out_features, in_features
        self.register_buffer("weight", torch.zeros((n, k // 2), dtype=torch.uint8, device=device))
        self.register_buffer("weight_scale", torch.zeros((n, k // BLOCK), dtype=SCALE_DTYPE, device=device))
        self.register_buffer("weight_scale_2", torch.ones((), dtype=torch.float32, device=device))
        self.register_buffer("input_scale", None)
        if bias:
            self.bias = torch.nn.Parameter(torch.zeros(n, dtype=dtype, device=device), requires_grad=False)
        else:
            self.register_parameter("bias", None)

    # -- construction from other forms ------------------------------------------------------------
    @classmethod
    def from_float(cls, linear: torch.nn.Linear, *, backend: str = AUTO, activation: str = W4A4,
                   input_scale=None) -> Linear:
        """Quantize a dense ``torch.nn.Linear`` (its weight's amax sets the global scale).

        ``input_scale``: an optional static activation scale (the dequantization
        factor, ``act_amax / 2688``) for W4A4; see ``nvfp4.nn.calibrate``.
        """
        if not isinstance(linear, torch.nn.Linear):
            raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
        w = linear.weight.detach()
        if w.dtype not in OUT_DTYPES:
            raise TypeError(f"linear.weight must be float32, bfloat16 or float16, got {w.dtype}")
        if w.is_meta:
            raise ValueError("linear.weight is on the meta device: materialise the weights before quantizing")
        bias = None if linear.bias is None else linear.bias.detach()
        return cls.from_nvfp4(quantize(w), bias, backend=backend, activation=activation, input_scale=input_scale)

    @classmethod
    def from_nvfp4(cls, weight: NVFP4Tensor, bias: torch.Tensor | None = None, *, backend: str = AUTO,
                   activation: str = W4A4, input_scale=None) -> Linear:
        """A layer around an existing NVFP4 weight ``[N, K]`` (any scale layout) and optional dense bias."""
        if not isinstance(weight, NVFP4Tensor):
            raise TypeError(f"weight must be an NVFP4Tensor, got {type(weight).__name__}")
        n, k = weight.shape
        if bias is not None and (not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (n,)):
            raise ValueError(f"bias must be a tensor of shape ({n},), got "
                             f"{tuple(bias.shape) if isinstance(bias, torch.Tensor) else type(bias).__name__}")
        dtype = bias.dtype if bias is not None and bias.dtype in OUT_DTYPES else None
        layer = cls(k, n, bias is not None, backend=backend, activation=activation, device=weight.device,
                    dtype=dtype)
        layer.weight.copy_(weight.data)
        layer.weight_scale.copy_(weight.linear_scale())
        layer.weight_scale_2.copy_(weight.global_scale)
        if bias is not None:
            layer.bias.data.copy_(bias)
        if input_scale is not None:
            layer.set_input_scale(input_scale)
        return layer

    # -- settings -----------------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._backend = check_backend(value)

    @property
    def activation(self) -> str:
        return self._activation

    @activation.setter
    def activation(self, value: str) -> None:
        self._activation = check_activation(value)

    def set_input_scale(self, scale) -> None:
        """Use a static activation global scale (dequantization factor, > 0); None: dynamic again."""
        if scale is None:
            self.input_scale = None
            return
        t = torch.as_tensor(scale, dtype=torch.float32).detach()
        if t.numel() != 1:
            raise ValueError(f"input_scale must hold one element, got shape {tuple(t.shape)}")
        value = float(t)  # set once, off the hot path: a host read is fine here
        if not (value > 0 and value != float("inf")):
            raise ValueError(f"input_scale must be finite and > 0, got {value}")
        self.input_scale = t.reshape(()).to(self.weight.device).clone()

    def set_input_amax(self, amax) -> None:
        """Static activation scale from a calibrated activation amax (``amax / 2688``, ModelOpt's rule)."""
        amax = float(torch.as_tensor(amax, dtype=torch.float32))
        self.set_input_scale(amax / GLOBAL_DIVISOR if amax > 0 else 1.0)

    # -- the weight -----------------------------------------------------------------------------
    def weight_nvfp4(self) -> NVFP4Tensor:
        """The weight as an NVFP4Tensor (views of the buffers, linear scales)."""
        return NVFP4Tensor(self.weight, self.weight_scale, self.weight_scale_2, LINEAR,
                           (self.out_features, self.in_features))

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        from ..quantize import dequantize

        return dequantize(self.weight_nvfp4(), dtype)

    # -- forward ----------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"input's last dimension must be in_features = {self.in_features}, "
                             f"got shape {tuple(x.shape)}")
        if x.dtype not in OUT_DTYPES:
            raise TypeError(f"input must be float32, bfloat16 or float16, got {x.dtype}")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)  # leading batch dims flattened into M
        if x2.shape[0] == 0:
            return x.new_empty((*lead, self.out_features))
        if self._activation == W4A4:
            # check_finite=False: the check costs a device sync per call; NaN/Inf inputs give
            # unspecified (never crashing) values, as in any low-precision kernel.
            a = quantize(x2, global_scale=self.input_scale, check_finite=False)
        else:
            a = x2.to(ACTIVATIONS[self._activation])
        y = gemm(a, self.weight_nvfp4(), bias=self.bias, out_dtype=x.dtype, backend=self._backend)
        return y.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        static = "static" if self.input_scale is not None else "dynamic"
        act = f"nvfp4 ({static} input scale)" if self._activation == W4A4 else self._activation
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"activation={act}, backend={self._backend!r}")

    # -- keeping the format intact ----------------------------------------------------------------
    def _apply(self, fn, recurse=True):
        # ``model.to(torch.bfloat16)`` / ``.half()`` convert every floating tensor, and
        # float8 counts as floating: that would corrupt the scales and round the global
        # scale. The quantized buffers follow device moves only.
        held = {name: self._buffers.pop(name) for name in _QUANTIZED_BUFFERS}
        try:
            super()._apply(fn, recurse)
        finally:
            for name, t in held.items():
                if t is not None:
                    device = fn(torch.empty(0, dtype=torch.float32, device=t.device)).device
                    # to_empty() moves meta tensors, which have no data to copy.
                    t = torch.empty_like(t, device=device) if t.is_meta else t.to(device)
                self._buffers[name] = t
        return self

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        key = prefix + "input_scale"
        if key in state_dict and self.input_scale is None:
            # A static scale in the checkpoint makes this layer static (torch skips None buffers).
            self.input_scale = torch.empty((), dtype=torch.float32, device=self.weight.device)
        for name, want in _BUFFER_DTYPES.items():
            t = state_dict.get(prefix + name)
            if isinstance(t, torch.Tensor) and t.dtype != want:
                # copy_ would convert silently: a float weight would become garbage codes.
                error_msgs.append(f"dtype mismatch for {prefix + name}: the checkpoint has {t.dtype}, "
                                  f"nvfp4.nn.Linear needs {want}")
                state_dict = {k: v for k, v in state_dict.items() if k != prefix + name}
        for name in ("weight_scale_2", "input_scale"):
            t = state_dict.get(prefix + name)
            if isinstance(t, torch.Tensor) and t.numel() == 1 and t.dim() != 0:
                # Some producers store the scalars as shape [1].
                state_dict = dict(state_dict)
                state_dict[prefix + name] = t.reshape(())
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
