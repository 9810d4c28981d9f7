"""ONNX models: custom operator domains and external-data paths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._lazy import load_export

if TYPE_CHECKING:
    from .onnx_scanner import OnnxScanner

_EXPORTS = {
    "OnnxScanner": ".onnx_scanner",
}
__all__ = [
    "OnnxScanner",
]


def __getattr__(name: str) -> Any:
    return load_export(__name__, _EXPORTS, name)
