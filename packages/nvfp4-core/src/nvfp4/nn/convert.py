"""``quantize_model``: replace a model's ``torch.nn.Linear`` layers by ``nvfp4.nn.Linear``, in place."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import torch

from ..gemm import AUTO
from ..layouts import BLOCK
from .linear import W4A4, Linear, check_activation, check_backend


@dataclass(frozen=True)
class SkippedLayer:
    name: str
    reason: str


@dataclass
class QuantizeReport:
    """What ``quantize_model`` did: the layers it converted, those it skipped and why."""

    converted: list[str] = field(default_factory=list)
    skipped: list[SkippedLayer] = field(default_factory=list)
    #: ``exclude`` patterns that matched no linear layer (often a typo).
    unused_patterns: list[str] = field(default_factory=list)

    def skipped_names(self) -> list[str]:
        return [s.name for s in self.skipped]

    def __str__(self) -> str:
        head = f"nvfp4.nn.quantize_model: {len(self.converted)} linear layers converted, {len(self.skipped)} skipped"
        lines = [head]
        lines += [f"  skipped {s.name}: {s.reason}" for s in self.skipped]
        if self.unused_patterns:
            lines.append(f"  exclude patterns that matched nothing: {', '.join(self.unused_patterns)}")
        return "\n".join(lines)


def matches(name: str, patterns) -> str | None:
    """The first glob pattern (``fnmatch``, as ModelOpt's ``exclude_modules``) that ``name`` matches."""
    for p in patterns:
        if fnmatch.fnmatchcase(name, p):
            return p
    return None


def check_patterns(exclude) -> list[str]:
    if isinstance(exclude, str):
        exclude = [exclude]  # a lone pattern is a common slip; accept it
    exclude = list(exclude or ())
    for p in exclude:
        if not isinstance(p, str) or not p:
            raise TypeError(f"exclude must be a list of glob patterns (strings), got element {p!r}")
    return exclude


def skip_reason(name: str, module: torch.nn.Linear, parent: torch.nn.Module | None, exclude) -> str | None:
    """Why the linear layer ``name`` stays dense, or None to convert it."""
    pattern = matches(name, exclude)
    if pattern is not None:
        return f"excluded by pattern {pattern!r}"
    if isinstance(parent, torch.nn.MultiheadAttention):
        # MultiheadAttention reads out_proj.weight directly instead of calling the module.
        return "part of torch.nn.MultiheadAttention, which reads its weight directly"
    if module.in_features % BLOCK:
        return f"in_features (K = {module.in_features}) is not a multiple of {BLOCK}"
    if module.weight.is_meta:
        return "weight is on the meta device (not materialised)"
    if module.weight.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        return f"weight dtype {module.weight.dtype} is not float32, bfloat16 or float16"
    return None


def quantize_model(model: torch.nn.Module, *, backend: str = AUTO, activation: str = W4A4,
                   exclude=()) -> QuantizeReport:
    """Replace every eligible ``torch.nn.Linear`` in ``model`` by an ``nvfp4.nn.Linear``, in place.

    Args:
        model: any module (not itself a Linear: use ``nvfp4.nn.Linear.from_float``).
        backend: the new layers' backend (``"auto"`` or a name); settable later per layer.
        activation: ``"nvfp4"`` (W4A4, dynamic activation scale; see ``nvfp4.nn.calibrate``
            for static ones) or ``"bf16"`` / ``"fp16"`` (weight-only).
        exclude: glob patterns over qualified module names (``"lm_head"``, ``"*.mlp.gate"``)
            whose layers stay dense.

    Returns a ``QuantizeReport``: converted names, skipped names with reasons. A
    layer shared by several paths is converted once and stays shared.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, torch.nn.Linear):
        raise TypeError("model is itself a torch.nn.Linear and cannot be replaced in place; "
                        "use nvfp4.nn.Linear.from_float(model)")
    check_backend(backend)
    check_activation(activation)
    exclude = check_patterns(exclude)
    report = QuantizeReport()
    used: set[str] = set()
    done: dict[int, torch.nn.Module] = {}  # id(dense) -> its replacement, for shared layers
    for parent_name, parent in list(model.named_modules(remove_duplicate=False)):
        # _modules, not named_children(): that one hides a module's second name.
        for child_name, child in list(parent._modules.items()):
            if not isinstance(child, torch.nn.Linear) or isinstance(child, Linear):
                continue
            name = f"{parent_name}.{child_name}" if parent_name else child_name
            if id(child) in done:
                setattr(parent, child_name, done[id(child)])
                report.converted.append(name)
                continue
            reason = skip_reason(name, child, parent, exclude)
            pattern = matches(name, exclude)
            if pattern is not None:
                used.add(pattern)
            if reason is not None:
                if name not in report.skipped_names():
                    report.skipped.append(SkippedLayer(name, reason))
                continue
            new = Linear.from_float(child, backend=backend, activation=activation)
            new.train(child.training)
            done[id(child)] = new
            setattr(parent, child_name, new)
            report.converted.append(name)
    report.unused_patterns = [p for p in exclude if p not in used]
    return report
