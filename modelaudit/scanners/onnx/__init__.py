"""ONNX models: custom operator domains and external-data paths."""

from __future__ import annotations

from .onnx_scanner import OnnxScanner

__all__ = ["OnnxScanner"]
