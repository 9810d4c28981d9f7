"""fastText models (`.bin`, quantized `.ftz`): arguments, dictionary and matrix shapes."""

from __future__ import annotations

from typing import BinaryIO

from ...formats import Format
from ...formats.fasttext import read_fasttext
from .data_only import DataOnlyScanner


class FastTextScanner(DataOnlyScanner):
    name = "fasttext"
    description = "fastText .bin/.ftz models: header, arguments and dictionary are parsed"
    formats = (Format.FASTTEXT,)
    kind = "fastText model"
    loader = "the fastText library"

    def read(self, f: BinaryIO, size: int) -> str:
        info = read_fasttext(f, size)
        quant = ", quantized" if info.quantized else ""
        return f"{info.model}, dim {info.dim}, {info.words} words, {info.labels} labels{quant}"
