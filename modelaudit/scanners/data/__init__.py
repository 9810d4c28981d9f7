"""Tensor containers with a data header: safetensors and (Flax) msgpack."""

from __future__ import annotations

from .msgpack_scanner import MsgpackScanner
from .safetensors_scanner import SafetensorsScanner

__all__ = ["MsgpackScanner", "SafetensorsScanner"]
