"""A sequential reader that knows how many bytes remain, for parsers of untrusted headers.

Every length a file declares is checked against `left` before anything is read or
allocated, and skips over bulk data move the position instead of reading.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

from .view import ByteView, FileView

_CHUNK = 1 << 20


class Malformed(Exception):
    """The file cannot be what its header claims; the message says where."""


class LimitReached(Malformed):
    """`take_until` met no delimiter within its limit."""


class Hostile(Malformed):
    """A count or length no legitimate file has: reported as a finding, not just truncation."""


class BoundedReader:
    """Sequential reads over a `ByteView` (a local file, or the range planner's fetched
    ranges), never past its size."""

    def __init__(self, f: BinaryIO, size: int, endian: str = "<", start: int = 0) -> None:
        self._setup(FileView(f, size, block=_CHUNK), endian, start)

    @classmethod
    def on(cls, view: ByteView, endian: str = "<", start: int = 0) -> BoundedReader:
        reader = cls.__new__(cls)
        reader._setup(view, endian, start)
        return reader

    def _setup(self, view: ByteView, endian: str, start: int) -> None:
        self.view, self.size, self.endian = view, view.size, endian
        self._pos = start

    @property
    def pos(self) -> int:
        return self._pos

    @property
    def left(self) -> int:
        return self.size - self._pos

    def take(self, n: int) -> bytes:
        if n > self.left:
            raise Malformed(f"needs {n} bytes at offset {self.pos}, only {self.left} left")
        out = self.view.get(self._pos, self._pos + n)
        if len(out) < n:
            raise Malformed(f"needs {n} bytes at offset {self.pos}, the file ended")
        self._pos += n
        return out

    def peek(self, n: int) -> bytes:
        return self.view.get(self._pos, self._pos + min(n, self.left))

    def take_until(self, delim: bytes, limit: int) -> bytes:
        """The bytes before the next `delim` (one byte), consumed with it. Looked for in
        growing peeks rather than byte by byte: a word list of millions of entries (word2vec,
        fastText dictionaries) cost a Python call per byte. Raises `Malformed` when the file
        ends first, `LimitReached` when `limit` bytes hold no `delim`."""
        want = 64
        while True:
            chunk = self.peek(min(want, limit + 1))
            at = chunk.find(delim)
            if at >= 0:
                self._pos += at + 1
                return chunk[:at]
            if len(chunk) > limit:
                raise LimitReached(f"no {delim!r} within {limit} bytes at offset {self.pos}")
            if len(chunk) < min(want, limit + 1):
                raise Malformed(f"no {delim!r} before the end of the file at offset {self.pos}")
            want *= 4

    def skip(self, n: int) -> None:
        if n > self.left:
            raise Malformed(f"needs {n} bytes at offset {self.pos}, only {self.left} left")
        self._pos += n

    def seek(self, pos: int) -> None:
        self._pos = pos

    def unpack(self, fmt: str) -> Any:
        data = self.take(struct.calcsize(fmt))
        return struct.unpack(self.endian + fmt, data)[0]
