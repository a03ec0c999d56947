"""Scale-factor layouts: row-major ``linear`` and the 128x4 ``swizzled`` atoms.

The swizzled layout is what Blackwell tensor cores, cuBLASLt, CUTLASS and
TensorRT-LLM consume. Rows are padded to 128 and scale columns to 4; each
512-byte atom holds 128 rows x 4 scale columns, and scale (r, kb) sits at

    ((r // 128) * nkt + kb // 4) * 512 + (r % 32) * 16 + ((r % 128) // 32) * 4 + kb % 4

with ``nkt = ceil((K / 16) / 4)``. Padding holds zeros.
"""

from __future__ import annotations

import torch

LINEAR = "linear"
SWIZZLED = "swizzled"
LAYOUTS = (LINEAR, SWIZZLED)
BLOCK = 16  # elements per scale along K


def _ceil_to(x: int, m: int) -> int:
    return (x + m - 1) // m * m


def swizzled_numel(rows: int, k: int) -> int:
    """Elements of a swizzled scale buffer for an ``rows x k`` operand."""
    return _ceil_to(rows, 128) * _ceil_to(k // BLOCK, 4)


def swizzled_offset(r: int, kb: int, k: int) -> int:
    """Offset of scale ``(r, kb)`` in the swizzled buffer of an operand with ``k`` columns."""
    nkt = (k // BLOCK + 3) // 4
    return ((r // 128) * nkt + kb // 4) * 512 + (r % 32) * 16 + ((r % 128) // 32) * 4 + kb % 4


def swizzle(scale: torch.Tensor) -> torch.Tensor:
    """Linear ``[R, K/16]`` scales to the 1-D swizzled buffer (zeros in the padding)."""
    rows, cols = scale.shape
    r128, c4 = _ceil_to(rows, 128), _ceil_to(cols, 4)
    padded = torch.zeros((r128, c4), dtype=scale.dtype, device=scale.device)
    padded[:rows, :cols] = scale
    # (row tile, 4 row groups of 32, 32 rows, col tile, 4 cols) -> tile-major atoms
    atoms = padded.view(r128 // 128, 4, 32, c4 // 4, 4).permute(0, 3, 2, 1, 4)
    return atoms.reshape(-1)


def unswizzle(buf: torch.Tensor, rows: int, k: int) -> torch.Tensor:
    """The 1-D swizzled buffer back to linear ``[rows, k/16]`` scales."""
    cols = k // BLOCK
    r128, c4 = _ceil_to(rows, 128), _ceil_to(cols, 4)
    atoms = buf.view(r128 // 128, c4 // 4, 32, 4, 4).permute(0, 3, 2, 1, 4)
    return atoms.reshape(r128, c4)[:rows, :cols].contiguous()
