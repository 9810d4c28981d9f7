"""word2vec binary vectors: a count/dimension header and fixed-size entries."""

from __future__ import annotations

from typing import BinaryIO

from ...formats import Format
from ...formats.word2vec import read_word2vec
from .data_only import DataOnlyScanner


class Word2VecScanner(DataOnlyScanner):
    name = "word2vec"
    description = "word2vec binary vectors (.bin): every entry is walked"
    formats = (Format.WORD2VEC,)
    kind = "word2vec binary vectors file"
    loader = "gensim and the word2vec tools"

    def read(self, f: BinaryIO, size: int) -> str:
        info = read_word2vec(f, size)
        return f"{info.words} vectors of dimension {info.dim}"
