"""Binary formats read by native loaders: GGUF, GGML, TFLite and executables."""

from __future__ import annotations

from .executable_scanner import ExecutableScanner
from .ggml_scanner import GgmlScanner
from .gguf_scanner import GgufScanner
from .tflite_scanner import TFLiteScanner

__all__ = ["ExecutableScanner", "GgmlScanner", "GgufScanner", "TFLiteScanner"]
