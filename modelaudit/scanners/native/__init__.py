"""Binary formats read by native loaders: GGUF, GGML, TFLite, TorchScript flatbuffers and executables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._lazy import load_export

if TYPE_CHECKING:
    from .executable_scanner import ExecutableScanner
    from .ggml_scanner import GgmlScanner
    from .gguf_scanner import GgufScanner
    from .tflite_scanner import TFLiteScanner
    from .torchscript_flatbuffer_scanner import TorchScriptFlatbufferScanner

_EXPORTS = {
    "ExecutableScanner": ".executable_scanner",
    "GgmlScanner": ".ggml_scanner",
    "GgufScanner": ".gguf_scanner",
    "TFLiteScanner": ".tflite_scanner",
    "TorchScriptFlatbufferScanner": ".torchscript_flatbuffer_scanner",
}
__all__ = [
    "ExecutableScanner",
    "GgmlScanner",
    "GgufScanner",
    "TFLiteScanner",
    "TorchScriptFlatbufferScanner",
]


def __getattr__(name: str) -> Any:
    return load_export(__name__, _EXPORTS, name)
