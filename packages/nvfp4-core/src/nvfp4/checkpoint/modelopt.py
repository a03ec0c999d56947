"""ModelOpt NVFP4 checkpoints (safetensors): ``save_modelopt`` and ``load_modelopt``.

Per quantized linear layer ``<p>`` (see the shared facts):

    <p>.weight          uint8 [N, K/2]
    <p>.weight_scale    float8_e4m3fn [N, K/16], linear layout
    <p>.weight_scale_2  float32 scalar, the weight's global dequantization scale
    <p>.input_scale     float32 scalar, the static activation scale (W4A4, when calibrated)

Every other tensor is stored as is. ``hf_quant_config.json`` beside the files:
``{"producer": {"name": "modelopt", ...}, "quantization": {"quant_algo": "NVFP4",
"group_size": 16, "exclude_modules": [...]}}``. The top-level key ``"nvfp4"``
is ours (consumers ignore unknown keys): it records which layers are
weight-only, so a round trip restores them as they were.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .._version import __version__
from ..gemm import AUTO
from ..layouts import BLOCK, LINEAR
from ..nn.linear import W4A4, Linear, check_activation, check_backend
from ..tensor import SCALE_DTYPE, NVFP4Tensor
from . import safetensors_io as io

QUANT_CONFIG_NAME = "hf_quant_config.json"
QUANT_ALGO = "NVFP4"
GROUP_SIZE = BLOCK
SUFFIXES = ("weight", "weight_scale", "weight_scale_2", "input_scale")
#: The key of ``hf_quant_config.json`` that holds what only nvfp4 reads.
OWN_KEY = "nvfp4"


def quant_config(exclude_modules: list[str], weight_only: dict[str, str] | None = None) -> dict:
    cfg = {
        # Consumers (vLLM, TensorRT-LLM, SGLang) recognise ModelOpt checkpoints by this producer name.
        "producer": {"name": "modelopt", "version": f"nvfp4-core {__version__}"},
        "quantization": {"quant_algo": QUANT_ALGO, "kv_cache_quant_algo": None, "group_size": GROUP_SIZE,
                         "exclude_modules": sorted(exclude_modules)},
    }
    if weight_only:
        cfg[OWN_KEY] = {"weight_only_modules": dict(sorted(weight_only.items()))}
    return cfg


def write_quant_config(directory: Path, cfg: dict) -> None:
    with open(directory / QUANT_CONFIG_NAME, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def read_quant_config(directory: Path) -> dict | None:
    """``hf_quant_config.json`` of a checkpoint directory, checked to be NVFP4; None when absent."""
    p = directory / QUANT_CONFIG_NAME
    if not p.is_file():
        return None
    with open(p) as f:
        cfg = json.load(f)
    q = cfg.get("quantization") if isinstance(cfg, dict) else None
    if not isinstance(q, dict):
        raise ValueError(f"{p} has no 'quantization' section")  # noqa: TRY004 (a bad file, not a bad argument)
    if q.get("quant_algo") != QUANT_ALGO:
        raise ValueError(f"{p}: quant_algo is {q.get('quant_algo')!r}; nvfp4 loads {QUANT_ALGO!r} checkpoints only")
    if q.get("group_size", GROUP_SIZE) != GROUP_SIZE:
        raise ValueError(f"{p}: group_size is {q.get('group_size')!r}; NVFP4 scales blocks of {GROUP_SIZE}")
    return cfg


def _split(name: str) -> tuple[str, str]:
    prefix, _, leaf = name.rpartition(".")
    return prefix, leaf


# -- save ---------------------------------------------------------------------------------------------

def save_modelopt(model: torch.nn.Module, path, *, max_shard_size: int | None = None) -> list[Path]:
    """Write ``model`` as a ModelOpt NVFP4 checkpoint into directory ``path``; returns the files written.

    ``nvfp4.nn.Linear`` layers are written in the ModelOpt layout, every other
    tensor of ``model.state_dict()`` as is; dense ``torch.nn.Linear`` layers
    are listed in ``exclude_modules``. ``max_shard_size`` (bytes) splits the
    tensors into ``model-0000i-of-0000n.safetensors`` files with an index.
    Tensors are written one at a time (no copy of the whole model is made).
    Needs no optional package.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if max_shard_size is not None and (not isinstance(max_shard_size, int) or max_shard_size < 1):
        raise ValueError(f"max_shard_size must be a positive number of bytes or None, got {max_shard_size!r}")
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"path must be a directory (the checkpoint is several files), got the file {directory}")
    directory.mkdir(parents=True, exist_ok=True)

    exclude, weight_only, dynamic = [], {}, []
    for name, m in model.named_modules():
        if isinstance(m, Linear):
            if m.activation != W4A4:
                weight_only[name] = m.activation
            elif m.input_scale is None:
                dynamic.append(name)
        elif isinstance(m, torch.nn.Linear):
            exclude.append(name)
    if dynamic:
        warnings.warn(f"{len(dynamic)} W4A4 layer(s) have dynamic activation scales (e.g. {dynamic[0]!r}), so "
                      "the checkpoint has no input_scale for them; ModelOpt consumers such as vLLM and "
                      "TensorRT-LLM expect one: calibrate first with nvfp4.nn.calibrate(model)", stacklevel=2)

    tensors = [(k, v) for k, v in model.state_dict().items()]
    shards = _plan_shards(tensors, max_shard_size)
    names = io.shard_names(len(shards))
    io.remove_stale_outputs(directory)
    written, weight_map, total = [], {}, 0
    for shard, fname in zip(shards, names):
        specs = [(k, v.dtype, tuple(v.shape)) for k, v in shard]
        with io.StreamingWriter(directory / fname, specs, {"format": "pt"}) as w:
            for k, v in shard:
                w.write(k, v)
                weight_map[k] = fname
        total += w.nbytes
        written.append(directory / fname)
    if len(names) > 1:
        io.write_index(directory, weight_map, total)
        written.append(directory / io.INDEX_NAME)
    write_quant_config(directory, quant_config(exclude, weight_only))
    written.append(directory / QUANT_CONFIG_NAME)
    return written


def _plan_shards(tensors, max_shard_size):
    if max_shard_size is None:
        return [tensors]
    shards, cur, size = [], [], 0
    for k, v in tensors:
        n = v.numel() * v.element_size()
        if cur and size + n > max_shard_size:
            shards.append(cur)
            cur, size = [], 0
        cur.append((k, v))
        size += n
    return shards + [cur] if cur or not shards else shards


# -- load ---------------------------------------------------------------------------------------------

@dataclass
class LoadReport:
    """What ``load_modelopt`` did."""

    quantized: list[str] = field(default_factory=list)   # layers loaded as nvfp4.nn.Linear
    replaced: list[str] = field(default_factory=list)    # of those, the ones that were torch.nn.Linear
    dense: list[str] = field(default_factory=list)       # other tensors loaded as is
    missing: list[str] = field(default_factory=list)     # model tensors the checkpoint lacks (strict=False)
    unexpected: list[str] = field(default_factory=list)  # checkpoint tensors the model lacks (strict=False)

    def __str__(self) -> str:
        return (f"nvfp4.load_modelopt: {len(self.quantized)} NVFP4 layers ({len(self.replaced)} replaced), "
                f"{len(self.dense)} dense tensors, {len(self.missing)} missing, {len(self.unexpected)} unexpected")


@dataclass
class ModelOptCheckpoint:
    """A checkpoint read into memory (``load_modelopt(path)`` without a model): for inspection and tests."""

    tensors: dict[str, torch.Tensor]
    quant_config: dict | None

    def layers(self) -> dict[str, NVFP4Tensor]:
        """Each NVFP4 layer's weight, by layer name."""
        out = {}
        for prefix in nvfp4_prefixes(self.tensors):
            t = self.tensors
            w = t[prefix + ".weight"]
            out[prefix] = NVFP4Tensor.from_raw(w, t[prefix + ".weight_scale"], t[prefix + ".weight_scale_2"],
                                               layout=LINEAR, shape=(w.shape[0], w.shape[1] * 2))
        return out


def nvfp4_prefixes(names) -> list[str]:
    """Layers that have NVFP4 weights: those with ``.weight``, ``.weight_scale`` and ``.weight_scale_2``."""
    names = set(names)
    return sorted(p for p, leaf in map(_split, names)
                  if leaf == "weight_scale_2" and {p + ".weight", p + ".weight_scale"} <= names)


def load_modelopt(model_or_dir, path=None, *, backend: str | None = None, activation: str | None = None,
                  strict: bool = True):
    """Load a ModelOpt NVFP4 safetensors checkpoint (one file or sharded with an index).

    ``load_modelopt(model, path)``: loads into ``model`` in place, replacing each
    ``torch.nn.Linear`` for which the checkpoint has NVFP4 weights by an
    ``nvfp4.nn.Linear`` (same name, device and bias dtype); returns a ``LoadReport``.
    Every shape and dtype is checked against the headers before the model is
    touched; a mismatch raises ValueError naming the tensor. Tensors are read
    one at a time. With ``strict``, model tensors absent from the checkpoint and
    checkpoint tensors absent from the model raise too.

    ``load_modelopt(path)``: reads the checkpoint into a ``ModelOptCheckpoint``.

    ``backend``: None keeps the backend of layers that were already ``nvfp4.nn.Linear``
    and gives new ones ``"auto"``; a name sets every loaded layer.
    ``activation``: None keeps what the checkpoint records (W4A4 unless saved
    weight-only by nvfp4); ``"nvfp4"``, ``"bf16"`` or ``"fp16"`` sets every loaded layer.
    Needs the ``safetensors`` package (``pip install 'nvfp4-core[checkpoints]'``).
    """
    if not isinstance(model_or_dir, torch.nn.Module):
        if path is not None:
            raise TypeError(f"the first argument must be a torch.nn.Module when path is given, "
                            f"got {type(model_or_dir).__name__}")
        files = io.checkpoint_files(model_or_dir)
        tensors = dict(io.iter_tensors(files))
        return ModelOptCheckpoint(tensors, read_quant_config(files[0].parent))
    if path is None:
        raise TypeError("load_modelopt(model, path): path (the checkpoint directory or file) is missing")
    model = model_or_dir
    if backend is not None:
        check_backend(backend)
    if activation is not None:
        check_activation(activation)
    files = io.checkpoint_files(path)
    cfg = read_quant_config(files[0].parent)
    saved_weight_only = ((cfg or {}).get(OWN_KEY) or {}).get("weight_only_modules", {})
    infos = io.read_infos(files)
    prefixes = nvfp4_prefixes(infos)

    report = LoadReport()
    plans = [_plan_layer(model, p, infos, strict, report) for p in prefixes]
    plans = [pl for pl in plans if pl is not None]

    # Names the model will have once the layers are replaced, with the dtype/shape they will have.
    targets = _future_targets(model, plans)
    covered = {k for pl in plans for k in pl.keys}
    for name, info in infos.items():
        if name in covered:
            continue
        want = targets.get(name)
        if want is None:
            if strict:
                raise ValueError(f"checkpoint tensor {name!r} has no counterpart in the model "
                                 "(pass strict=False to skip it)")
            report.unexpected.append(name)
            continue
        _check(name, info, want[0], want[1])
    live = model.state_dict(keep_vars=True)
    loaded_ids = {id(v) for k, v in live.items() if k in infos}
    # A tensor tied to one the checkpoint has (tied embeddings are stored once) is not missing.
    missing = sorted(k for k in targets if k not in infos and id(live[k]) not in loaded_ids)
    if missing and strict:
        raise ValueError(f"the checkpoint lacks {len(missing)} tensor(s) of the model, e.g. "
                         f"{', '.join(repr(k) for k in missing[:5])} (pass strict=False to keep their values)")
    report.missing = missing

    # Everything checked: now change the model.
    for pl in plans:
        layer = _install_layer(model, pl, backend, activation, saved_weight_only)
        report.quantized.append(pl.prefix)
        if pl.replace:
            report.replaced.append(pl.prefix)
        if pl.prefix + ".input_scale" in infos and layer.input_scale is None:
            layer.input_scale = torch.empty((), dtype=torch.float32, device=layer.weight.device)
        elif pl.prefix + ".input_scale" not in infos and layer.input_scale is not None:
            layer.input_scale = None  # the checkpoint's layer is dynamic
    live = model.state_dict(keep_vars=True)
    load = [k for k in infos if k in live]
    with torch.no_grad():
        for name, tensor in io.iter_tensors(files, set(load)):
            dst = live[name]
            dst.copy_(tensor.reshape(dst.shape))
            if name not in covered:
                report.dense.append(name)
    return report


@dataclass
class _LayerPlan:
    prefix: str
    n: int
    k: int
    has_bias: bool
    replace: bool          # a torch.nn.Linear to replace (else an nvfp4.nn.Linear already)
    bias_dtype: torch.dtype | None
    device: torch.device
    keys: list[str]


def _plan_layer(model, prefix, infos, strict, report) -> _LayerPlan | None:
    w = infos[prefix + ".weight"]
    try:
        module = model.get_submodule(prefix)
    except AttributeError:
        if strict:
            raise ValueError(f"checkpoint has NVFP4 weights for {prefix!r} but the model has no module of "
                             "that name (pass strict=False to skip it)") from None
        report.unexpected += [prefix + "." + s for s in SUFFIXES + ("bias",) if prefix + "." + s in infos]
        return None
    if not isinstance(module, torch.nn.Linear | Linear):
        raise TypeError(f"checkpoint has NVFP4 weights for {prefix!r} but the model's module there is a "
                        f"{type(module).__name__}, not a Linear")
    n, k = module.out_features, module.in_features
    if k % BLOCK:
        raise ValueError(f"checkpoint has NVFP4 weights for {prefix!r} but the model's layer has "
                         f"in_features = {k}, not a multiple of {BLOCK}")
    _check(w.name, w, torch.uint8, (n, k // 2))
    _check(prefix + ".weight_scale", infos[prefix + ".weight_scale"], SCALE_DTYPE, (n, k // BLOCK))
    _check(prefix + ".weight_scale_2", infos[prefix + ".weight_scale_2"], torch.float32, ())
    keys = [prefix + "." + s for s in ("weight", "weight_scale", "weight_scale_2")]
    if prefix + ".input_scale" in infos:
        _check(prefix + ".input_scale", infos[prefix + ".input_scale"], torch.float32, ())
        keys.append(prefix + ".input_scale")
    has_bias = module.bias is not None
    bias = infos.get(prefix + ".bias")
    if (bias is not None) != has_bias:
        raise ValueError(f"{prefix + '.bias'}: the checkpoint {'has' if bias is not None else 'lacks'} it "
                         f"but the model's layer {'lacks' if bias is not None else 'has'} a bias")
    bias_dtype = module.bias.dtype if has_bias else None
    if bias is not None:
        _check(bias.name, bias, bias_dtype, (n,))
        keys.append(bias.name)
    device = module.weight.device
    if device.type == "meta":
        raise ValueError(f"the model's layer {prefix!r} is on the meta device: materialise the model first")
    return _LayerPlan(prefix, n, k, has_bias, not isinstance(module, Linear), bias_dtype, device, keys)


def _check(name: str, info: io.TensorInfo, dtype: torch.dtype, shape: tuple) -> None:
    if info.dtype != dtype:
        raise ValueError(f"dtype mismatch for tensor {name!r}: the checkpoint has {info.dtype}, the model needs "
                         f"{dtype}" + (" (convert the model with model.to(dtype) first)"
                                       if info.dtype.is_floating_point and dtype.is_floating_point else ""))
    scalar = shape == () and info.shape in ((), (1,))  # producers write scalars as [] or [1]
    if tuple(info.shape) != tuple(shape) and not scalar:
        raise ValueError(f"shape mismatch for tensor {name!r}: the checkpoint has {list(info.shape)}, "
                         f"the model needs {list(shape)}")


def _future_targets(model, plans) -> dict[str, tuple[torch.dtype, tuple]]:
    """The model's state_dict names with (dtype, shape), minus the planned layers' own tensors."""
    planned = {pl.prefix for pl in plans}
    out = {}
    for name, t in model.state_dict(keep_vars=True).items():
        prefix, _ = _split(name)
        if prefix in planned:
            continue
        out[name] = (t.dtype, tuple(t.shape))
    return out


def _install_layer(model, pl: _LayerPlan, backend, activation, saved_weight_only) -> Linear:
    act = activation or saved_weight_only.get(pl.prefix, W4A4)
    if pl.replace:
        layer = Linear(pl.k, pl.n, pl.has_bias, backend=backend or AUTO, activation=act, device=pl.device,
                       dtype=pl.bias_dtype)
        parent_name, _, child = pl.prefix.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, child)
        layer.train(old.training)
        setattr(parent, child, layer)
        return layer
    layer = model.get_submodule(pl.prefix)
    if backend is not None:
        layer.backend = backend
    if activation is not None or pl.prefix in saved_weight_only:
        layer.activation = act
    return layer
