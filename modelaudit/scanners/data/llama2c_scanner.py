"""karpathy/llama2.c checkpoints (`stories15M.bin`) and tokenizers (`tokenizer.bin`)."""

from __future__ import annotations

from typing import BinaryIO

from ...formats import Format
from ...formats.llama2c import read_checkpoint, read_tokenizer
from .data_only import DataOnlyScanner


class Llama2cScanner(DataOnlyScanner):
    name = "llama2c"
    description = "llama2.c checkpoints and tokenizers (.bin): sizes and entries are checked"
    formats = (Format.LLAMA2C, Format.LLAMA2C_TOKENIZER)
    kind = "llama2.c file"
    loader = "llama2.c's run.c"

    def read(self, f: BinaryIO, size: int) -> str:
        if self.ctx.format == Format.LLAMA2C_TOKENIZER:
            return read_tokenizer(f, size)
        return read_checkpoint(f, size)
