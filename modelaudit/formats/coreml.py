"""Core ML weight blobs (`Data/com.apple.CoreML/weights/weight.bin` of an `.mlpackage`).

What coremltools' MIL blob writer (`milstorage`, version 2) writes and Core ML maps: a 64-byte
header (blob count, version 2, reserved zeros), then per blob a 64-byte metadata record (the
sentinel 0xDEADBEEF, a data type, the size and offset of its bytes) and the bytes, each
64-byte aligned. Core ML reads numbers at those offsets; nothing in the file is run.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Final

from .bounded_reader import BoundedReader, Malformed

_HEADER: Final = 64
_RECORD: Final = 64
_SENTINEL: Final = b"\xef\xbe\xad\xde"
_VERSION: Final = b"\x02\x00\x00\x00"


@dataclass
class CoreMLWeightsInfo:
    blobs: int


def looks_like_coreml_weights(head: bytes) -> bool:
    """Header of version 2 with zeroed reserved words, and the first record's sentinel."""
    return (
        len(head) >= _HEADER + 4
        and head[4:8] == _VERSION
        and not any(head[8:_HEADER])
        and head[_HEADER : _HEADER + 4] == _SENTINEL
    )


def read_coreml_weights(f: BinaryIO, size: int) -> CoreMLWeightsInfo:
    """Every blob: its record's sentinel, and its bytes after the record inside the file."""
    r = BoundedReader(f, size)
    header = r.take(_HEADER)
    (count,) = struct.unpack_from("<I", header)
    if header[4:8] != _VERSION:
        raise Malformed("not a version 2 weight file")
    if count * (_RECORD + 1) > size:
        raise Malformed(f"{count} blobs cannot fit in {size} bytes")
    pos = _HEADER
    for n in range(count):
        r.seek(pos)
        record = r.take(_RECORD)
        if record[:4] != _SENTINEL:
            raise Malformed(f"blob {n} has no metadata sentinel at offset {pos}")
        length, offset = struct.unpack_from("<QQ", record, 8)
        if offset < pos + _RECORD or offset + length > size:
            raise Malformed(f"blob {n} lies outside the file ({length} bytes at {offset})")
        pos = -(-(offset + length) // _RECORD) * _RECORD
    return CoreMLWeightsInfo(count)
