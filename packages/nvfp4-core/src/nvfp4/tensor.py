"""``NVFP4Tensor``: packed E2M1 data, E4M3 block scales, one FP32 global scale.

The scale layout travels with the tensor, so a swizzled buffer can never be
read as linear (or the reverse) by accident: every consumer checks ``layout``.
"""

from __future__ import annotations

import torch

from . import layouts
from .layouts import BLOCK, LAYOUTS, LINEAR, SWIZZLED

SCALE_DTYPE = torch.float8_e4m3fn


class NVFP4Tensor:
    """An ``R x K`` NVFP4 matrix.

    Attributes:
        data: uint8 ``[R, K/2]``, two E2M1 codes a byte, even K index in the low nibble.
        scale: float8_e4m3fn; ``[R, K/16]`` when ``layout == "linear"``, the padded
            1-D 128x4 buffer of ``pad128(R) * pad4(K/16)`` elements when ``"swizzled"``.
        global_scale: float32 0-d tensor, the *dequantization* factor (ModelOpt's
            ``weight_scale_2``): real value = e2m1 * e4m3 scale * global_scale.
        layout: ``"linear"`` or ``"swizzled"``.
    """

    __slots__ = ("data", "scale", "global_scale", "layout", "_shape")

    def __init__(self, data: torch.Tensor, scale: torch.Tensor, global_scale: torch.Tensor,
                 layout: str, shape: tuple[int, int]):
        # Unchecked on purpose: the hot path builds these from validated parts.
        # Users build tensors with ``quantize`` or ``from_raw``, which validate.
        self.data = data
        self.scale = scale
        self.global_scale = global_scale
        self.layout = layout
        self._shape = (int(shape[0]), int(shape[1]))

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape

    @property
    def device(self) -> torch.device:
        return self.data.device

    def __repr__(self) -> str:
        return (f"NVFP4Tensor(shape={self.shape}, layout={self.layout!r}, "
                f"device={self.device}, global_scale={float(self.global_scale):.6g})")

    @classmethod
    def from_raw(cls, data: torch.Tensor, scale: torch.Tensor, global_scale, *, layout: str,
                 shape: tuple[int, int]) -> NVFP4Tensor:
        """Wrap tensors made elsewhere (TensorRT-LLM, FlashInfer, ModelOpt), checking each one.

        ``scale`` may be uint8 holding E4M3 bits (TensorRT-LLM's convention); it is
        viewed as float8_e4m3fn without a copy. ``global_scale`` is the
        dequantization factor (a float or a one-element tensor).
        """
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if not (isinstance(shape, (tuple, list)) and len(shape) == 2):
            raise ValueError(f"shape must be (rows, k), got {shape!r}")
        rows, k = int(shape[0]), int(shape[1])
        if rows < 1 or k < 1 or k % BLOCK:
            raise ValueError(f"shape must have rows >= 1 and k a positive multiple of {BLOCK}, got {shape!r}")
        if not isinstance(data, torch.Tensor) or data.dtype != torch.uint8:
            raise TypeError(f"data must be a uint8 tensor, got {getattr(data, 'dtype', type(data))}")
        if tuple(data.shape) != (rows, k // 2):
            raise ValueError(f"data must have shape {(rows, k // 2)} for shape {(rows, k)}, got {tuple(data.shape)}")
        if not isinstance(scale, torch.Tensor):
            raise TypeError(f"scale must be a tensor, got {type(scale).__name__}")
        if scale.dtype == torch.uint8:
            scale = scale.view(SCALE_DTYPE)
        if scale.dtype != SCALE_DTYPE:
            raise TypeError(f"scale must be float8_e4m3fn (or uint8 holding E4M3 bits), got {scale.dtype}")
        if layout == LINEAR:
            want = (rows, k // BLOCK)
            if tuple(scale.shape) != want:
                raise ValueError(f"scale must have shape {want} for a linear layout, got {tuple(scale.shape)}")
        else:
            n = layouts.swizzled_numel(rows, k)
            if scale.numel() != n:
                raise ValueError(f"scale must hold {n} elements (pad128(rows) * pad4(k/16)) for a swizzled "
                                 f"layout, got {scale.numel()} in shape {tuple(scale.shape)}")
            scale = scale.reshape(-1)
        if scale.device != data.device:
            raise ValueError(f"scale is on {scale.device} but data is on {data.device}")
        if not isinstance(global_scale, torch.Tensor):
            global_scale = torch.tensor(float(global_scale), dtype=torch.float32, device=data.device)
        if global_scale.numel() != 1:
            raise ValueError(f"global_scale must hold one element, got shape {tuple(global_scale.shape)}")
        global_scale = global_scale.to(device=data.device, dtype=torch.float32).reshape(())
        return cls(data.contiguous(), scale.contiguous(), global_scale, layout, (rows, k))

    def to_layout(self, layout: str) -> NVFP4Tensor:
        """The same tensor with its scales in ``layout``; exact both ways."""
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if layout == self.layout:
            return self
        rows, k = self.shape
        scale = layouts.swizzle(self.scale) if layout == SWIZZLED else layouts.unswizzle(self.scale, rows, k)
        return NVFP4Tensor(self.data, scale, self.global_scale, layout, self.shape)

    def linear_scale(self) -> torch.Tensor:
        """Scales as ``[R, K/16]``, whatever the layout."""
        return self.scale if self.layout == LINEAR else layouts.unswizzle(self.scale, *self.shape)

    def to(self, device) -> NVFP4Tensor:
        return NVFP4Tensor(self.data.to(device), self.scale.to(device), self.global_scale.to(device),
                           self.layout, self.shape)
