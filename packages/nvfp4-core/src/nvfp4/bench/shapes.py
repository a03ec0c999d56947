"""What the benchmark sweeps, and the byte and FLOP counts of one GEMM (the floor's two terms)."""

from __future__ import annotations

from dataclasses import dataclass

#: Llama-3 linear layers as (N, K): 70B qkv, o, gate+up, down; 8B qkv, down.
LLAMA3_SHAPES: tuple[tuple[int, int], ...] = (
    (10240, 8192), (8192, 8192), (57344, 8192), (8192, 28672), (6144, 4096), (4096, 14336))
#: Decode (1, 16), small and large prefill batches.
LLAMA3_MS: tuple[int, ...] = (1, 16, 64, 256, 1024, 4096, 8192)
#: The CPU smoke sizes: seconds on two cores, the reference backend included.
TINY_SHAPES: tuple[tuple[int, int], ...] = ((256, 128),)
TINY_MS: tuple[int, ...] = (1, 16)

WEIGHT_ONLY, W4A4 = "weight-only", "w4a4"
MODES: tuple[str, ...] = (WEIGHT_ONLY, W4A4)
#: The ``a_format`` of ``GemmProblem`` each mode runs.
MODE_A_FORMAT = {WEIGHT_ONLY: "bf16", W4A4: "nvfp4"}

#: Summary buckets of M: decode, small prefill, large prefill (label, lowest M, highest M).
M_BUCKETS: tuple[tuple[str, int, int], ...] = (("M<=16", 1, 16), ("M 64-256", 64, 256),
                                               ("M>=1024", 1024, 1 << 62))


def parse_shapes(text: str) -> tuple[tuple[int, int], ...]:
    """``"8192x8192,6144x4096"`` -> ((8192, 8192), (6144, 4096)); N x K, K a multiple of 16."""
    shapes = []
    for item in _items(text, "--shapes"):
        parts = item.lower().split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"--shapes: each shape must be NxK (e.g. 8192x8192), got {item!r}")
        n, k = int(parts[0]), int(parts[1])
        if n < 1 or k < 16 or k % 16:
            raise ValueError(f"--shapes: {item!r} needs N >= 1 and K a positive multiple of 16")
        shapes.append((n, k))
    return tuple(dict.fromkeys(shapes))


def parse_ms(text: str) -> tuple[int, ...]:
    """``"1,16,64"`` -> (1, 16, 64), sorted, each >= 1."""
    ms = []
    for item in _items(text, "--m"):
        if not item.isdigit() or int(item) < 1:
            raise ValueError(f"--m: each M must be a positive integer, got {item!r}")
        ms.append(int(item))
    return tuple(sorted(set(ms)))


def parse_modes(text: str) -> tuple[str, ...]:
    modes = []
    for item in _items(text, "--modes"):
        if item.lower() not in MODES:
            raise ValueError(f"--modes: each mode must be one of {', '.join(MODES)}, got {item!r}")
        modes.append(item.lower())
    return tuple(m for m in MODES if m in modes)


def parse_names(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_items(text, "--backends")))


def _items(text: str, option: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ValueError(f"{option}: give at least one value (comma-separated), got {text!r}")
    return items


@dataclass(frozen=True)
class Traffic:
    """The fewest bytes a GEMM moves (each operand read once, the output written once) and its FLOPs."""

    weight_bytes: int
    act_bytes: int
    out_bytes: int
    flops: int

    @property
    def bytes(self) -> int:
        return self.weight_bytes + self.act_bytes + self.out_bytes


def traffic(m: int, n: int, k: int, mode: str, out_elem_bytes: int = 2) -> Traffic:
    """NVFP4 weight: K/2 data bytes and K/16 scale bytes a row; the activation bf16 or NVFP4."""
    weight = n * (k // 2 + k // 16) + 4
    act = m * k * 2 if mode == WEIGHT_ONLY else m * (k // 2 + k // 16) + 4
    return Traffic(weight, act, m * n * out_elem_bytes, 2 * m * n * k)
