"""The ``cutlass`` entry point of the ``nvfp4.backends`` group: the hooks the core calls."""

from __future__ import annotations

from nvfp4.hookspecs import hookimpl

from .backend import CutlassBackend
from .quantizer import CutlassQuantizer


@hookimpl
def nvfp4_register_backends():
    return [CutlassBackend()]


@hookimpl
def nvfp4_register_quantizers():
    return [CutlassQuantizer()]
