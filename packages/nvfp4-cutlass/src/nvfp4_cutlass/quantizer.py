"""``CutlassQuantizer``: ``nvfp4.quantize`` on Hopper GPUs (csrc/quantize_sm90.cu), bytes equal to quantize_ref."""

from __future__ import annotations

import torch

from nvfp4 import layouts
from nvfp4.backend import Availability, Quantizer
from nvfp4.tensor import SCALE_DTYPE, NVFP4Tensor

from . import device, native

_X_DTYPES = {torch.bfloat16: 0, torch.float16: 1, torch.float32: 2}


class CutlassQuantizer(Quantizer):
    name = "cutlass"
    priority = 50

    def availability(self) -> Availability:
        return device.availability()

    def supports(self, x: torch.Tensor, layout: str) -> str | None:
        if x.dtype not in _X_DTYPES:
            return f"x.dtype must be bfloat16, float16 or float32, got {x.dtype}"
        if x.dim() != 2 or x.shape[1] % 16:
            return f"x must be 2-D with K a multiple of 16, got shape {tuple(x.shape)}"
        if layout not in layouts.LAYOUTS:
            return f"layout must be one of {layouts.LAYOUTS}, got {layout!r}"
        if x.numel() // 16 >= 2**31 * 256:
            return "x is too large for one launch"
        return device.device_reason(x.device)

    def quantize(self, x: torch.Tensor, global_scale: torch.Tensor, layout: str) -> NVFP4Tensor:
        if x.device.index is not None and x.device.index != torch.cuda.current_device():
            with torch.cuda.device(x.device):  # the launch goes to the current device
                return self.quantize(x, global_scale, layout)
        rows, k = x.shape
        x = x.contiguous()
        if x.data_ptr() % 16:  # 16-byte vector loads
            x = x.clone()
        gs = global_scale.to(device=x.device, dtype=torch.float32).reshape(()).contiguous()
        data = torch.empty((rows, k // 2), dtype=torch.uint8, device=x.device)
        if layout == layouts.SWIZZLED:  # the kernel writes real scales only; the padding must read as zero
            scale = torch.zeros(layouts.swizzled_numel(rows, k), dtype=torch.uint8, device=x.device)
        else:
            scale = torch.empty((rows, k // 16), dtype=torch.uint8, device=x.device)
        stream = torch.cuda.current_stream(x.device).cuda_stream
        native.module().quantize(x.data_ptr(), _X_DTYPES[x.dtype], gs.data_ptr(), data.data_ptr(), scale.data_ptr(),
                                 rows, k, layout == layouts.SWIZZLED, stream)
        return NVFP4Tensor(data, scale.view(SCALE_DTYPE), gs, layout, (rows, k))
