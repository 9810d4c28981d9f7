"""CTranslate2 converted models (`model.bin`): every variable record and the alias table."""

from __future__ import annotations

from typing import BinaryIO

from ...formats import Format
from ...formats.ctranslate2 import read_ctranslate2
from .data_only import DataOnlyScanner


class CTranslate2Scanner(DataOnlyScanner):
    name = "ctranslate2"
    description = "CTranslate2 model.bin: variable records walked, tensor bytes skipped"
    formats = (Format.CTRANSLATE2,)
    kind = "CTranslate2 model"
    loader = "CTranslate2"

    def read(self, f: BinaryIO, size: int) -> str:
        info = read_ctranslate2(f, size)
        return f"{info.spec or 'spec unnamed'}, binary version {info.version}, {info.variables} variables"
