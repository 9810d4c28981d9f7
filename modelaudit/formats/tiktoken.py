"""tiktoken BPE ranks (`original/tokenizer.model` of Llama 3, `tiktoken.model`, `*.tiktoken`).

One line per token: the token's bytes in base64, a space, its rank. `tiktoken.load` (and
Meta's, Moonshot's and Qwen's tokenizers, which call it) decodes each line into a dict of
bytes to int; nothing in the file is run. Every byte of such a file is base64, a digit, a
space or a newline, so no pickle loader gets past its first opcodes: a GLOBAL or INST
line would name a module with a space in it, and STOP (`.`) can never occur.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO, Final

from .bounded_reader import BoundedReader, LimitReached, Malformed

_LINE: Final = re.compile(rb"([A-Za-z0-9+/]{1,4096}={0,2}) (\d{1,10})\r?")
#: Lines a head must show (all of them, if the file is shorter).
_HEAD_LINES: Final = 2
_MAX_LINE: Final = 8192


@dataclass
class TiktokenInfo:
    tokens: int


def _token(line: bytes) -> bool:
    match = _LINE.fullmatch(line)
    return match is not None and len(match.group(1)) % 4 == 0


def looks_like_tiktoken(head: bytes, complete: bool) -> bool:
    """The first lines (every line of a file read whole) are `<base64> <rank>`."""
    lines = head.split(b"\n")
    whole = lines if complete else lines[:-1]
    if complete and whole and whole[-1] == b"":
        whole = whole[:-1]
    shown = whole[:_HEAD_LINES]
    return len(shown) >= min(_HEAD_LINES, len(whole)) > 0 and all(_token(ln) for ln in shown)


def read_tiktoken(f: BinaryIO, size: int) -> TiktokenInfo:
    """Every line `<base64> <rank>`; a last line without a newline is allowed."""
    r = BoundedReader(f, size)
    tokens = 0
    while r.left:
        try:
            line = r.take_until(b"\n", _MAX_LINE)
        except LimitReached:
            raise Malformed(f"line {tokens + 1} longer than {_MAX_LINE} bytes") from None
        except Malformed:
            line = r.take(r.left)
        if not line.strip():
            continue  # `tiktoken.load` skips empty lines
        if not _token(line):
            raise Malformed(f"line {tokens + 1} is no '<base64> <rank>' pair")
        tokens += 1
    return TiktokenInfo(tokens)
