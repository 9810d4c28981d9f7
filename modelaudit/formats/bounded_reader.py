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

    def skip(self, n: int) -> None:
        if n > self.left:
            raise Malformed(f"needs {n} bytes at offset {self.pos}, only {self.left} left")
        self._pos += n

    def seek(self, pos: int) -> None:
        self._pos = pos

    def unpack(self, fmt: str) -> Any:
        data = self.take(struct.calcsize(fmt))
        return struct.unpack(self.endian + fmt, data)[0]
