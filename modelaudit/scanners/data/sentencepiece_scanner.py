"""SentencePiece tokenizer models (`tokenizer.model`, `spiece.model`): a protobuf of pieces."""

from __future__ import annotations

from typing import BinaryIO

from ...formats import Format
from ...formats.sentencepiece import read_sentencepiece
from .data_only import DataOnlyScanner


class SentencePieceScanner(DataOnlyScanner):
    name = "sentencepiece"
    description = "SentencePiece tokenizer models: the whole ModelProto is parsed"
    formats = (Format.SENTENCEPIECE,)
    kind = "SentencePiece tokenizer model"
    loader = "the sentencepiece library"

    def read(self, f: BinaryIO, size: int) -> str:
        info = read_sentencepiece(f, size)
        extra = f", unknown fields {info.unknown_fields}" if info.unknown_fields else ""
        return f"{info.pieces} pieces{extra}"
