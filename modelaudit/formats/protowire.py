"""A bounded protobuf wire-format walker over a memory-mapped file.

ONNX and TensorFlow models are protobuf messages that can be gigabytes of tensor bytes around a
small graph. Parsing them with generated classes copies every tensor; walking the wire format
over an mmap touches only the pages of the fields we decode, and skips the rest by length.
Every length is checked against its enclosing message, so a corrupt file raises `WireError`.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager

VARINT = 0
FIXED64 = 1
LENGTH = 2
FIXED32 = 5

#: Longest string field decoded; names and paths are far shorter.
MAX_STRING = 1 << 20


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


class Wire:
    """Fields of messages inside one buffer, addressed by (start, end) byte spans."""

    def __init__(self, buf: bytes | mmap.mmap) -> None:
        self.buf = buf
        self.size = len(buf)

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        buf = self.buf
        result = 0
        shift = 0
        while True:
            if pos >= end:
                raise WireError(f"truncated varint at byte {pos}")
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result, pos
            shift += 7
            if shift >= 70:
                raise WireError(f"overlong varint at byte {pos}")

    def fields(self, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
        """Yield `(field, wire_type, a, b)`: a varint's value and 0, or a payload's offset and size."""
        if end > self.size:
            raise WireError(f"message ends at {end}, past the end of the data ({self.size})")
        pos = start
        while pos < end:
            key, pos = self.varint(pos, end)
            field, wire_type = key >> 3, key & 7
            if field == 0:
                raise WireError(f"field number 0 at byte {pos}")
            if wire_type == VARINT:
                value, pos = self.varint(pos, end)
                yield field, VARINT, value, 0
            elif wire_type == LENGTH:
                n, pos = self.varint(pos, end)
                if pos + n > end:
                    raise WireError(
                        f"field {field} at byte {pos} overruns its message by {pos + n - end} bytes"
                    )
                yield field, LENGTH, pos, n
                pos += n
            elif wire_type in (FIXED64, FIXED32):
                n = 8 if wire_type == FIXED64 else 4
                if pos + n > end:
                    raise WireError(f"truncated fixed-size field at byte {pos}")
                yield field, wire_type, pos, n
                pos += n
            else:
                raise WireError(f"unsupported wire type {wire_type} at byte {pos}")

    def text(self, offset: int, size: int) -> str:
        size = min(size, MAX_STRING)
        return bytes(self.buf[offset : offset + size]).decode("utf-8", "replace")

    def data(self, offset: int, size: int) -> bytes:
        return bytes(self.buf[offset : offset + min(size, MAX_STRING)])


@contextmanager
def open_wire(path: str) -> Iterator[Wire]:
    """Map `path` read-only; an empty file maps to an empty buffer."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            yield Wire(b"")
            return
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield Wire(mm)
        finally:
            mm.close()
