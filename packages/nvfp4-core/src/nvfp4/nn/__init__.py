"""Quantized modules: ``nvfp4.nn.Linear``, whole-model conversion and activation calibration."""

from __future__ import annotations

from .calibrate import calibrate
from .convert import QuantizeReport, SkippedLayer, quantize_model
from .linear import ACTIVATIONS, Linear

__all__ = ["ACTIVATIONS", "Linear", "QuantizeReport", "SkippedLayer", "calibrate", "quantize_model"]
