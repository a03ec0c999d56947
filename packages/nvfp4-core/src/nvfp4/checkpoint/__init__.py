"""Checkpoint formats: ModelOpt NVFP4 safetensors (``save_modelopt`` / ``load_modelopt``) and conversion."""

from __future__ import annotations

from .modelopt import LoadReport, ModelOptCheckpoint, load_modelopt, save_modelopt

__all__ = ["LoadReport", "ModelOptCheckpoint", "load_modelopt", "save_modelopt"]
