"""fastText binary models (`.bin`, quantized `.ftz`): a fixed header, a dictionary, matrices.

The fastText library reads them with plain stream reads; nothing in them is executed, and
since they start with fastText's magic number no pickle loader can read them either.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Final

from .bounded_reader import BoundedReader, LimitReached, Malformed

MAGIC: Final = 793712314
_MAGIC_BYTES: Final = struct.pack("<i", MAGIC)
#: Versions fastText has written (11: before subwords' maxn default changed, 12: current).
_VERSIONS: Final = range(10, 13)
_MODELS: Final = {1: "cbow", 2: "skipgram", 3: "supervised"}
_MAX_WORD: Final = 1 << 16


@dataclass
class FastTextInfo:
    version: int
    dim: int
    model: str
    words: int
    labels: int
    quantized: bool


def looks_like_fasttext(head: bytes) -> bool:
    if len(head) < 8 or not head.startswith(_MAGIC_BYTES):
        return False
    (version,) = struct.unpack_from("<i", head, 4)
    return version in _VERSIONS


def read_fasttext(f: BinaryIO, size: int) -> FastTextInfo:
    """Header, arguments and the whole dictionary; the matrices' shapes against the size."""
    r = BoundedReader(f, size)
    if r.unpack("i") != MAGIC:
        raise Malformed("not a fastText model (magic number)")
    version = r.unpack("i")
    if version not in _VERSIONS:
        raise Malformed(f"unknown fastText version {version}")
    dim, _ws, _epoch, _min_count, _neg, _ngrams, loss, model, bucket, _minn, _maxn = (
        r.unpack("i") for _ in range(11)
    )
    r.unpack("i")  # lrUpdateRate
    r.unpack("d")  # t
    if not 0 < dim <= 1 << 16 or model not in _MODELS or not 0 < loss <= 4 or bucket < 0:
        raise Malformed(f"implausible arguments (dim {dim}, model {model}, loss {loss})")
    entries, words, labels = r.unpack("i"), r.unpack("i"), r.unpack("i")
    r.unpack("q")  # ntokens
    prune = r.unpack("q")
    if not 0 <= words <= entries or labels < 0 or words + labels != entries or prune < -1:
        raise Malformed(f"dictionary counts disagree ({entries} = {words} + {labels})")
    for _ in range(entries):
        _read_word(r)
        r.skip(9)  # count (int64), entry type (int8)
    if prune > 0:
        r.skip(16 * prune)
    quantized = bool(r.take(1)[0])
    if not quantized:
        rows, cols = r.unpack("q"), r.unpack("q")
        if rows < 0 or cols != dim or rows * cols * 4 > r.left:
            raise Malformed(f"input matrix {rows}x{cols} does not fit the file")
    return FastTextInfo(version, dim, _MODELS[model], words, labels, quantized)


def _read_word(r: BoundedReader) -> None:
    try:
        r.take_until(b"\x00", _MAX_WORD - 1)
    except LimitReached:
        raise Malformed(f"dictionary word longer than {_MAX_WORD} bytes at {r.pos}") from None
