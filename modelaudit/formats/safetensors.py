"""The safetensors header as a loader reads it: an 8-byte little-endian length, then that many
bytes of JSON. Nothing after the header is ever read (tensor data, trailing bytes)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from .view import ByteView

#: The Rust loader refuses longer headers.
HEADER_CAP: Final = 100 * 1000 * 1000


class SafetensorsError(Exception):
    """The file is too short to hold the header length."""


@dataclass
class RawHeader:
    length: int
    #: the JSON bytes; None when `length` is beyond the cap or the file (nothing more is read)
    raw: bytes | None

    @property
    def in_bounds(self) -> bool:
        return self.raw is not None


def read_raw_header(view: ByteView) -> RawHeader:
    prefix = view.get(0, 8)
    if len(prefix) < 8:
        raise SafetensorsError("file shorter than the 8-byte header length")
    (length,) = struct.unpack("<Q", prefix)
    if length > HEADER_CAP or length > view.size - 8:
        return RawHeader(length, None)
    return RawHeader(length, view.get(8, 8 + length))
