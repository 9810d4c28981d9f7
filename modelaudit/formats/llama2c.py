"""karpathy/llama2.c files: `model.bin` checkpoints (tinyllamas' `stories15M.bin`) and
`tokenizer.bin`.

A checkpoint of `export.py`'s legacy format is seven int32 (dim, hidden_dim, n_layers,
n_heads, n_kv_heads, vocab_size, negative when the classifier is not shared, seq_len) then
float32 weights whose count those fix, so the file's size must come out exactly; version 1
has a 256-byte header (magic `ak42`, version 1, the same seven ints, a shared-classifier
byte). A tokenizer is the longest token's length, then per token a float32 score, an int32
length and the bytes. `run.c` maps or reads the numbers; nothing in either file is run.
"""

from __future__ import annotations

import math
import struct
from typing import BinaryIO, Final

from .bounded_reader import BoundedReader, Malformed

_PARAMS: Final = struct.Struct("<7i")
_MAGIC: Final = b"24ka"  # 0x616b3432 little-endian
_V1_HEADER: Final = 256
_MAX_DIM: Final = 1 << 20
_MAX_TOKEN: Final = 4096


def _weights(params: tuple[int, ...], freqs: bool) -> int | None:
    """Float count `run.c`'s `memory_map_weights` reads for these params, or None."""
    dim, hidden, layers, heads, kv_heads, vocab, seq = params
    shared = vocab > 0
    vocab = abs(vocab)
    if not (
        0 < dim <= _MAX_DIM
        and 0 < hidden <= 8 * _MAX_DIM
        and 0 < layers <= 4096
        and 0 < heads <= dim
        and 0 < kv_heads <= heads
        and dim % heads == 0
        and 0 < vocab <= 1 << 24
        and 0 < seq <= 1 << 24
    ):
        return None
    head = dim // heads
    kv_dim = kv_heads * head
    per_layer = 2 * dim + 2 * dim * dim + 2 * dim * kv_dim + 3 * dim * hidden
    count = vocab * dim + layers * per_layer + dim + (seq * head if freqs else 0)
    return count + (0 if shared else vocab * dim)


def checkpoint_size(head: bytes) -> int | None:
    """The exact size a checkpoint with this header has, or None if it is none."""
    if head[:4] == _MAGIC and len(head) >= 37:
        (version,) = struct.unpack_from("<i", head, 4)
        params = _PARAMS.unpack_from(head, 8)
        count = _weights(params, freqs=False) if version == 1 else None
        if count is not None and head[36] in (0, 1) and (head[36] == 1) == (params[5] > 0):
            return _V1_HEADER + 4 * count
        return None
    if len(head) < _PARAMS.size:
        return None
    count = _weights(_PARAMS.unpack_from(head), freqs=True)
    return None if count is None else _PARAMS.size + 4 * count


def looks_like_checkpoint(head: bytes, size: int | None) -> bool:
    return size is not None and checkpoint_size(head) == size


def _entries(r: BoundedReader, longest: int) -> int:
    n = 0
    while r.left:
        score, length = struct.unpack("<fI", r.take(8))
        if not math.isfinite(score) or not 0 < length <= longest:
            raise Malformed(f"token {n} has a score of {score} or a length of {length}")
        r.skip(length)
        n += 1
    return n


def looks_like_tokenizer(head: bytes, complete: bool) -> bool:
    """The longest length, then every whole entry of the head valid: at least 16 of them,
    or, when the head is the whole file, entries ending exactly at its end."""
    if len(head) < 12:
        return False
    (longest,) = struct.unpack_from("<I", head)
    if not 0 < longest <= _MAX_TOKEN:
        return False
    pos, n = 4, 0
    while pos + 8 <= len(head):
        score, length = struct.unpack_from("<fI", head, pos)
        if not math.isfinite(score) or not 0 < length <= longest:
            return False
        if pos + 8 + length > len(head):
            break
        pos += 8 + length
        n += 1
    return pos == len(head) and n > 0 if complete else n >= 16


def read_checkpoint(f: BinaryIO, size: int) -> str:
    head = f.read(_V1_HEADER)
    if checkpoint_size(head) != size:
        raise Malformed("the header's sizes do not add up to the file's")
    params = _PARAMS.unpack_from(head, 8 if head[:4] == _MAGIC else 0)
    return f"dim {params[0]}, {params[2]} layers, vocabulary of {abs(params[5])}"


def read_tokenizer(f: BinaryIO, size: int) -> str:
    r = BoundedReader(f, size)
    (longest,) = struct.unpack("<I", r.take(4))
    if not 0 < longest <= _MAX_TOKEN:
        raise Malformed(f"longest token of {longest} bytes")
    return f"{_entries(r, longest)} tokens"
