"""ONNX external data (`model.onnx_data`, `model.onnx.data`): raw tensor bytes.

`onnx.load` reads the tensors an ONNX model stores outside itself as plain bytes at the
offsets the model gives (the ONNX scanner checks those locations); nothing parses or runs
the file, so any bytes are valid. Content with a magic of its own (a pickle, a zip) is
sniffed as that format first and never reaches this scanner.
"""

from __future__ import annotations

from typing import BinaryIO

from ...formats import Format
from .data_only import DataOnlyScanner


class OnnxExternalDataScanner(DataOnlyScanner):
    name = "onnx_external_data"
    description = "ONNX external tensor data (.onnx_data, .onnx.data): raw bytes nothing runs"
    formats = (Format.ONNX_EXTERNAL_DATA,)
    kind = "ONNX external data file"
    loader = "onnx"

    def read(self, f: BinaryIO, size: int) -> str:
        return f"{size} bytes of raw tensor data"
