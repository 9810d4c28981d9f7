"""word2vec binary vectors (`vectors.bin`, `GoogleNews-vectors-negative300.bin`).

An ASCII header `<count> <dim>\\n`, then per word its text, a space and `dim` float32s. gensim
and the original C tool read them as data; a digit first is no pickle opcode that could run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO, Final

from .bounded_reader import BoundedReader, LimitReached, Malformed

_HEADER: Final = re.compile(rb"^(\d{1,12}) (\d{1,6})\r?\n")
_MAX_WORD: Final = 1 << 16


@dataclass
class Word2VecInfo:
    words: int
    dim: int


def looks_like_word2vec(head: bytes) -> bool:
    match = _HEADER.match(head)
    return match is not None and int(match.group(2)) > 0 and int(match.group(1)) > 0


def read_word2vec(f: BinaryIO, size: int) -> Word2VecInfo:
    """Header, then every entry: a word up to a space and exactly `dim` float32s."""
    r = BoundedReader(f, size)
    match = _HEADER.match(r.peek(32))
    if not match:
        raise Malformed("no '<count> <dim>' header line")
    r.skip(match.end())
    words, dim = int(match.group(1)), int(match.group(2))
    if dim <= 0 or words * (dim * 4 + 2) > r.left:
        raise Malformed(f"{words} vectors of {dim} floats cannot fit in {size} bytes")
    for n in range(words):
        try:
            word = r.take_until(b" ", _MAX_WORD - 1)
        except LimitReached:
            raise Malformed(f"word {n} longer than {_MAX_WORD} bytes") from None
        if n == 0 and b"\n" in word:
            raise Malformed("empty word")
        r.skip(4 * dim)
        if r.left and r.peek(1) == b"\n":
            r.skip(1)
    return Word2VecInfo(words, dim)
