"""tiktoken BPE ranks: a base64 token and its rank per line."""

from __future__ import annotations

from typing import BinaryIO

from ...formats import Format
from ...formats.tiktoken import read_tiktoken
from .data_only import DataOnlyScanner


class TiktokenScanner(DataOnlyScanner):
    name = "tiktoken"
    description = (
        "tiktoken BPE ranks (Llama 3 original/tokenizer.model, *.tiktoken): every line is read"
    )
    formats = (Format.TIKTOKEN,)
    kind = "tiktoken BPE ranks file"
    loader = "tiktoken"

    def read(self, f: BinaryIO, size: int) -> str:
        return f"{read_tiktoken(f, size).tokens} tokens"
