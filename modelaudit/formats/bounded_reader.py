"""A buffered reader that knows how many bytes remain, for parsers of untrusted headers.

Every length a file declares is checked against `left` before anything is read or
allocated, and skips over bulk data seek instead of reading.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

_CHUNK = 1 << 20


class Malformed(Exception):
    """The file cannot be what its header claims; the message says where."""


class Hostile(Malformed):
    """A count or length no legitimate file has: reported as a finding, not just truncation."""


class BoundedReader:
    def __init__(self, f: BinaryIO, size: int, endian: str = "<", start: int = 0) -> None:
        self.f, self.size, self.endian = f, size, endian
        self.buf = b""
        self.buf_pos = 0
        self.offset = start

    @property
    def pos(self) -> int:
        return self.offset + self.buf_pos

    @property
    def left(self) -> int:
        return self.size - self.pos

    def take(self, n: int) -> bytes:
        if n > self.left:
            raise Malformed(f"needs {n} bytes at offset {self.pos}, only {self.left} left")
        if self.buf_pos + n > len(self.buf):
            self.offset = self.pos
            self.f.seek(self.offset)
            self.buf = self.f.read(max(n, _CHUNK))
            self.buf_pos = 0
        out = self.buf[self.buf_pos : self.buf_pos + n]
        self.buf_pos += n
        return out

    def peek(self, n: int) -> bytes:
        n = min(n, self.left)
        data = self.take(n)
        self.buf_pos -= n
        return data

    def skip(self, n: int) -> None:
        if n > self.left:
            raise Malformed(f"needs {n} bytes at offset {self.pos}, only {self.left} left")
        if self.buf_pos + n <= len(self.buf):
            self.buf_pos += n
        else:
            self.offset = self.pos + n
            self.buf, self.buf_pos = b"", 0

    def seek(self, pos: int) -> None:
        self.offset, self.buf, self.buf_pos = pos, b"", 0

    def unpack(self, fmt: str) -> Any:
        data = self.take(struct.calcsize(fmt))
        return struct.unpack(self.endian + fmt, data)[0]
