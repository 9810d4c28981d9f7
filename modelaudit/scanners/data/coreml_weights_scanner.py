"""Core ML weight blobs (an `.mlpackage`'s `weights/weight.bin`): records and raw numbers."""

from __future__ import annotations

from typing import BinaryIO

from ...formats import Format
from ...formats.coreml import read_coreml_weights
from .data_only import DataOnlyScanner


class CoreMLWeightsScanner(DataOnlyScanner):
    name = "coreml_weights"
    description = "Core ML weight blobs (.mlpackage weights/weight.bin): every record is checked"
    formats = (Format.COREML_WEIGHTS,)
    kind = "Core ML weight file"
    loader = "Core ML"

    def read(self, f: BinaryIO, size: int) -> str:
        return f"{read_coreml_weights(f, size).blobs} weight blobs"
