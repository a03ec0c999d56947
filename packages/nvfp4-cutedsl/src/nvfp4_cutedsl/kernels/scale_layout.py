"""Where the E4M3 scale of (row, k-block) sits, as a CuTe (shape, stride) pair.

Pure arithmetic on its inputs, so the kernel builds it from run-time Int32
values and the CPU tests evaluate it against ``nvfp4.layouts`` without the DSL.
"""

BLOCK = 16


def scale_layout_spec(rows, k, layout: str):
    """(shape, stride) mapping (row, k-block) to the scale's offset.

    linear: row-major ``[rows, K/16]``. swizzled: 128x4 atoms of 512 bytes,
    offset = (r//128)*nkt*512 + (kb//4)*512 + (r%32)*16 + ((r%128)//32)*4 + kb%4,
    written as the hierarchical modes rows = (32, 4, rows/128), k-blocks = (4, nkt).
    """
    kb = k // BLOCK
    if layout == "linear":
        return (rows, kb), (kb, 1)
    if layout != "swizzled":
        raise ValueError(f"layout must be 'linear' or 'swizzled', got {layout!r}")
    nkt = (kb + 3) // 4
    r128 = (rows + 127) // 128
    return ((32, 4, r128), (4, nkt)), ((16, 4, 512 * nkt), (1, 512))
