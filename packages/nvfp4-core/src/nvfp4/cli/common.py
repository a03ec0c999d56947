"""Argument parsing and progress shared by the subcommands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

MODES = {"weight-only": "bf16", "w4a4": "nvfp4"}
OUT_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def parse_shapes(text: str) -> list[tuple[int, int]]:
    """``"8192x8192,4096x14336"`` -> [(8192, 8192), (4096, 14336)] (N x K)."""
    shapes = []
    for part in text.split(","):
        try:
            n, k = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise ValueError(f"--shapes takes NxK pairs separated by commas, got {part!r}") from None
        if n < 1 or k < 16 or k % 16:
            raise ValueError(f"--shapes: N must be >= 1 and K a multiple of 16, got {part!r}")
        shapes.append((n, k))
    return shapes


def parse_ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"{flag} takes integers separated by commas, got {text!r}") from None
    if any(v < 1 for v in values):
        raise ValueError(f"{flag} values must be >= 1, got {text!r}")
    return values


def best_device(requested: str | None = None) -> torch.device:
    if requested:
        return torch.device(requested)
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def default_cache_path() -> Path:
    env = os.environ.get("NVFP4_TUNING_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nvfp4" / "tuning.json"


def progress(items, desc: str):
    """Iterate with a progress bar: tqdm when installed, else a line per item on stderr."""
    items = list(items)
    try:
        from tqdm import tqdm
    except ImportError:
        def plain():
            for i, item in enumerate(items, 1):
                print(f"{desc}: {i}/{len(items)} {item}", file=sys.stderr, flush=True)
                yield item
        return plain()
    return tqdm(items, desc=desc, unit="problem", file=sys.stderr)


def add_problem_args(p, *, shapes_default: str, m_default: str) -> None:
    p.add_argument("--shapes", default=shapes_default, help="N x K weight shapes, comma separated")
    p.add_argument("--m", default=m_default, help="M values (rows of the activation), comma separated")
    p.add_argument("--modes", default="weight-only,w4a4", help="weight-only (bf16 activations) and/or w4a4")
    p.add_argument("--out-dtype", default="bf16", choices=sorted(OUT_DTYPES))
    p.add_argument("--layout", default="linear", choices=("linear", "swizzled"))
    p.add_argument("--bias", action="store_true", help="add a bias")
    p.add_argument("--device", default=None, help="torch device (default: cuda if present, else cpu)")


def parse_modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ValueError(f"--modes takes {', '.join(MODES)}; got {text!r}")
    return modes
