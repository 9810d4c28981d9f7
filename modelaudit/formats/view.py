"""What a format parser reads from: a byte view that either has the bytes or says which it lacks.

Every parser in this package is a pure function of a `ByteView`: it asks for byte ranges with
`get(start, end)` (or indexes it, for the protobuf walk) and never opens, seeks or fetches
anything itself. A scanner hands it a `FileView` over the local file, which always has the
bytes. The range planner hands it a view over the ranges fetched so far, which raises
`NeedBytes` for the rest; the planner fetches those and runs the same parser again. So what
the planner fetches is exactly what the scanner will read, by construction.
"""

from __future__ import annotations

import mmap
import os
from typing import BinaryIO, Protocol


class NeedBytes(Exception):
    """The parser needs bytes it was not given: `ranges`, as [start, end) pairs."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        super().__init__(f"need bytes {ranges[:4]}")
        self.ranges = ranges


class ByteView(Protocol):
    """Random access to one object of known size."""

    size: int

    def get(self, start: int, end: int) -> bytes:
        """Bytes [start, end), clipped to the object; raises `NeedBytes` when not available."""
        ...


class FileView:
    """A local file as a view: reads what is asked (at least `block` bytes at a time, for
    parsers that take many small pieces), keeping the last read."""

    def __init__(self, f: BinaryIO, size: int | None = None, block: int = 0) -> None:
        self.f = f
        self.size = file_size(f) if size is None else size
        self.block = block
        self._start = 0
        self._buf = b""

    def get(self, start: int, end: int) -> bytes:
        start, end = max(0, start), min(end, self.size)
        if end <= start:
            return b""
        if not (self._start <= start and end <= self._start + len(self._buf)):
            self.f.seek(start)
            self._buf = self.f.read(max(end - start, self.block))
            self._start = start
        return self._buf[start - self._start : end - self._start]


def file_size(f: BinaryIO) -> int:
    try:
        return os.fstat(f.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        here = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(here)
        return end


class StreamView:
    """A forward-only stream (a zip member) as a view: bytes are read as they are first
    asked for and kept, and the stream is never read past the furthest byte asked for, so
    it is left exactly where the parser stopped."""

    def __init__(self, stream: BinaryIO, size: int = 1 << 62) -> None:
        self.stream = stream
        self.size = size
        self._buf = bytearray()

    def get(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        need = end - len(self._buf)
        if need > 0:
            more = self.stream.read(need)
            self._buf += more
            if len(more) < need:
                self.size = len(self._buf)
        return bytes(self._buf[max(0, start) : end])


class BufferView:
    """Bytes or an mmap already in memory, as a view."""

    def __init__(self, buf: bytes | bytearray | memoryview | mmap.mmap) -> None:
        self.buf = buf
        self.size = len(buf)

    def get(self, start: int, end: int) -> bytes:
        return bytes(self.buf[max(0, start) : min(end, self.size)])
