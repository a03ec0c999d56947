"""Convert a dense (bf16/fp16/fp32) safetensors checkpoint to ModelOpt NVFP4, one tensor at a time.

Without the model's code there is no telling a linear layer's weight from an
embedding table: both are 2-D ``<module>.weight``. So every 2-D floating
``.weight`` is treated as a linear layer's, except those whose module name
matches an exclude pattern; the default patterns keep embeddings and
``lm_head`` dense (ModelOpt's own default keeps ``lm_head`` dense too).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..layouts import BLOCK
from ..nn.convert import check_patterns, matches
from ..nn.linear import W4A4, check_activation
from ..quantize import quantize
from ..tensor import SCALE_DTYPE
from . import safetensors_io as io
from .modelopt import QUANT_CONFIG_NAME, quant_config, write_quant_config

DEFAULT_EXCLUDE = ("*embed*", "lm_head", "*.lm_head")
_DENSE = (torch.bfloat16, torch.float16, torch.float32)


@dataclass
class ConversionReport:
    quantized: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # module name -> reason
    files: list[Path] = field(default_factory=list)
    bytes_in: int = 0
    bytes_out: int = 0

    def __str__(self) -> str:
        head = (f"nvfp4 quantize: {len(self.quantized)} linear layers quantized, {len(self.skipped)} weights "
                f"kept dense; {self.bytes_in / 2**20:.1f} MiB -> {self.bytes_out / 2**20:.1f} MiB")
        lines = [head]
        lines += [f"  kept dense {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)


def _decide(info: io.TensorInfo, infos, exclude) -> str | None:
    """None to quantize this tensor, else why it stays as is ("" for tensors that are not weights)."""
    prefix, _, leaf = info.name.rpartition(".")
    if leaf == "weight" and prefix + ".weight_scale" in infos:
        raise ValueError(f"{info.name!r} already has a weight_scale: the input checkpoint is quantized already")
    if leaf != "weight" or len(info.shape) != 2 or info.dtype not in _DENSE:
        return ""
    pattern = matches(prefix, exclude)
    if pattern is not None:
        return f"excluded by pattern {pattern!r}"
    if info.shape[1] % BLOCK:
        return f"in_features (K = {info.shape[1]}) is not a multiple of {BLOCK}"
    return None


def _out_specs(info: io.TensorInfo, quantized: bool):
    if not quantized:
        return [(info.name, info.dtype, info.shape)]
    p = info.name[: -len(".weight")]
    n, k = info.shape
    return [(p + ".weight", torch.uint8, (n, k // 2)), (p + ".weight_scale", SCALE_DTYPE, (n, k // BLOCK)),
            (p + ".weight_scale_2", torch.float32, ())]


class _Progress:
    """tqdm when it is installed, otherwise a line at every tenth of the way."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self._next_pct = total, 0, 10
        self._bar = None
        self.enabled = enabled
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                print(f"quantizing {total} tensors (install tqdm for a progress bar)", file=sys.stderr)
            else:
                self._bar = tqdm(total=total, unit="tensor", desc="nvfp4 quantize", file=sys.stderr)

    def step(self, name: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(1)
            return
        pct = 100 * self.done // max(self.total, 1)
        if pct >= self._next_pct or self.done == self.total:
            print(f"  {self.done}/{self.total} tensors ({pct}%), last {name}", file=sys.stderr)
            self._next_pct = pct // 10 * 10 + 10

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def quantize_checkpoint(in_dir, out_dir, *, exclude=(), default_exclude: bool = True, activation: str = W4A4,
                        device="cpu", progress: bool = True) -> ConversionReport:
    """Write an NVFP4 ModelOpt checkpoint of the dense checkpoint ``in_dir`` into ``out_dir``.

    Each input shard becomes one output shard (same count, an index when
    sharded); tensors are read, quantized and written one at a time. Other
    files of ``in_dir`` (config, tokenizer) are copied. ``exclude`` adds glob
    patterns over module names to ``DEFAULT_EXCLUDE`` (or replaces them
    with ``default_exclude=False``). ``activation`` other than ``"nvfp4"``
    records the layers as weight-only for ``nvfp4.load_modelopt``.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise ValueError(f"IN_DIR {in_dir} is not a directory")
    if out_dir.resolve() == in_dir.resolve():
        raise ValueError("OUT_DIR must differ from IN_DIR (the input would be overwritten while read)")
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"OUT_DIR {out_dir} exists and is not a directory")
    check_activation(activation)
    exclude = check_patterns(exclude) + (list(DEFAULT_EXCLUDE) if default_exclude else [])
    device = torch.device(device)
    files = io.checkpoint_files(in_dir)
    infos = io.read_infos(files)
    report = ConversionReport()
    plan: dict[Path, list[tuple[io.TensorInfo, bool]]] = {f: [] for f in files}
    for info in infos.values():
        why = _decide(info, infos, exclude)
        plan[info.file].append((info, why is None))
        if why is None:
            report.quantized.append(info.name[: -len(".weight")])
        elif why:
            report.skipped[info.name.rpartition(".")[0]] = why
        report.bytes_in += info.nbytes

    out_dir.mkdir(parents=True, exist_ok=True)
    io.remove_stale_outputs(out_dir)
    names = io.shard_names(len(files))
    safetensors = io.require_safetensors()
    bar = _Progress(len(infos), progress)
    weight_map = {}
    try:
        for file, out_name in zip(files, names):
            specs = [s for info, q in plan[file] for s in _out_specs(info, q)]
            with io.StreamingWriter(out_dir / out_name, specs, {"format": "pt"}) as w, \
                    safetensors.safe_open(str(file), framework="pt", device="cpu") as src:
                for info, q in plan[file]:
                    tensor = src.get_tensor(info.name)  # one tensor in memory at a time
                    if q:
                        t = quantize(tensor.to(device))
                        p = info.name[: -len(".weight")]
                        w.write(p + ".weight", t.data)
                        w.write(p + ".weight_scale", t.scale)
                        w.write(p + ".weight_scale_2", t.global_scale)
                    else:
                        w.write(info.name, tensor)
                    del tensor
                    bar.step(info.name)
            weight_map.update({name: out_name for name, _, _ in specs})
            report.bytes_out += w.nbytes
            report.files.append(out_dir / out_name)
    finally:
        bar.close()
    if len(files) > 1:
        io.write_index(out_dir, weight_map, report.bytes_out)
    weight_only = {p: activation for p in report.quantized} if activation != W4A4 else None
    write_quant_config(out_dir, quant_config(sorted(report.skipped), weight_only))
    _copy_other_files(in_dir, out_dir, {f.name for f in files})
    return report


def _copy_other_files(in_dir: Path, out_dir: Path, weight_files: set[str]) -> None:
    """Config, tokenizer and the like travel with the weights."""
    skip = weight_files | {io.INDEX_NAME, QUANT_CONFIG_NAME}
    for p in in_dir.iterdir():
        if p.name in skip or p.suffix == ".safetensors" or p.name.startswith("."):
            continue
        if p.is_dir():
            shutil.copytree(p, out_dir / p.name, dirs_exist_ok=True)
        else:
            shutil.copy2(p, out_dir / p.name)
