"""The key/value metadata of a Parquet footer, and the Arrow schema pyarrow keeps in it.

A Parquet file ends `<FileMetaData><uint32 LE length>PAR1`; FileMetaData is a Thrift struct in
the compact protocol whose field 5 lists KeyValue{1: key, 2: value}. pyarrow stores the Arrow
schema there, under `ARROW:schema`, as a base64-encoded IPC schema message, and rebuilds it on
every read (that is where old pyarrow unpickles, `arrow_schema.py`). Only the footer is read,
never a column chunk; everything else in it is skipped by type. Each value read moves the
position forward, is charged to a budget, and nesting is bounded as Thrift bounds it, so
hostile input costs time linear in the footer. Anything malformed raises `ParquetError`.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from typing import Final

from .view import ByteView

MAGIC: Final = b"PAR1"
#: The footer magic of a file whose metadata is encrypted (nothing readable without the key).
ENCRYPTED_MAGIC: Final = b"PARE"
#: Largest footer read.
FOOTER_CAP: Final = 256 * 1024 * 1024
#: Thrift's default recursion limit.
MAX_DEPTH: Final = 64
ARROW_SCHEMA_KEY: Final = b"ARROW:schema"

_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY = range(9)
_LIST, _SET, _MAP, _STRUCT, _UUID = 9, 10, 11, 12, 13
_VARINTS: Final = frozenset({_I16, _I32, _I64})


class ParquetError(Exception):
    """Not a readable Parquet footer: no magic, a length outside the file, an encrypted
    footer, or Thrift that is truncated, of unknown type or nested too deeply."""


class _Compact:
    """A forward reader of Thrift compact protocol over one buffer."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0
        self.budget = len(buf) + 16

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            raise ParquetError("footer ends inside a value")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = value = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise ParquetError("varint longer than 64 bits")

    def zigzag(self) -> int:
        v = self.varint()
        return (v >> 1) ^ -(v & 1)

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise ParquetError(f"value of {n} bytes runs past the footer")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def binary(self) -> bytes:
        return self.take(self.varint())

    def field(self, last: int) -> tuple[int, int]:
        """(field id, type) of the next field header; type STOP ends the struct."""
        header = self.byte()
        kind = header & 0x0F
        if kind == _STOP:
            return 0, _STOP
        delta = header >> 4
        return (last + delta if delta else self.zigzag()), kind

    def container(self) -> tuple[int, int]:
        header = self.byte()
        size = header >> 4
        if size == 15:
            size = self.varint()
        return size, header & 0x0F

    def charge(self) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise ParquetError("more values than the footer can hold")

    def skip(self, kind: int, depth: int) -> None:
        self.charge()
        if depth > MAX_DEPTH:
            raise ParquetError(f"footer nested deeper than {MAX_DEPTH}")
        if kind in (_TRUE, _FALSE):
            return
        if kind == _BYTE:
            self.take(1)
        elif kind in _VARINTS:
            self.varint()
        elif kind == _DOUBLE:
            self.take(8)
        elif kind == _UUID:
            self.take(16)
        elif kind == _BINARY:
            self.binary()
        elif kind in (_LIST, _SET):
            size, element = self.container()
            for _ in range(size):
                # (booleans in a container take a byte each)
                self.skip(_BYTE if element in (_TRUE, _FALSE) else element, depth + 1)
        elif kind == _MAP:
            size = self.varint()
            if size:
                types = self.byte()
                for _ in range(size):
                    self.skip(_byte_bool(types >> 4), depth + 1)
                    self.skip(_byte_bool(types & 0x0F), depth + 1)
        elif kind == _STRUCT:
            last = 0
            while True:
                last, sub = self.field(last)
                if sub == _STOP:
                    return
                self.skip(sub, depth + 1)
        else:
            raise ParquetError(f"unknown Thrift type {kind} at {self.pos}")


def _byte_bool(kind: int) -> int:
    return _BYTE if kind in (_TRUE, _FALSE) else kind


def footer_bytes(view: ByteView) -> bytes:
    """The FileMetaData bytes (the only part of the file read)."""
    if view.size < 12:
        raise ParquetError("file too short for a Parquet footer")
    tail = view.get(view.size - 8, view.size)
    if tail[4:] == ENCRYPTED_MAGIC:
        raise ParquetError("the footer is encrypted")
    if tail[4:] != MAGIC:
        raise ParquetError("no PAR1 magic at the end of the file")
    (length,) = struct.unpack_from("<I", tail, 0)
    if length == 0 or length > FOOTER_CAP or length > view.size - 12:
        raise ParquetError(f"footer length {length} outside the file")
    return view.get(view.size - 8 - length, view.size - 8)


def parse_key_value_metadata(footer: bytes) -> list[tuple[bytes, bytes]]:
    """FileMetaData field 5, list<KeyValue{1: key, 2: optional value}> (a missing value is
    b"")."""
    reader = _Compact(footer)
    out: list[tuple[bytes, bytes]] = []
    last = 0
    while True:
        last, kind = reader.field(last)
        if kind == _STOP:
            return out
        if last != 5 or kind != _LIST:
            reader.skip(kind, 1)
            continue
        size, element = reader.container()
        if element != _STRUCT:
            for _ in range(size):
                reader.skip(_byte_bool(element), 2)
            continue
        for _ in range(size):
            reader.charge()
            key = value = b""
            sub = 0
            while True:
                sub, sub_kind = reader.field(sub)
                if sub_kind == _STOP:
                    break
                if sub in (1, 2) and sub_kind == _BINARY:
                    if sub == 1:
                        key = reader.binary()
                    else:
                        value = reader.binary()
                else:
                    reader.skip(sub_kind, 3)
            out.append((key, value))


def read_key_value_metadata(view: ByteView) -> list[tuple[bytes, bytes]]:
    return parse_key_value_metadata(footer_bytes(view))


_BASE64_PREFIX: Final = re.compile(rb"[A-Za-z0-9+/]*")


def decode_arrow_schema(value: bytes) -> bytes:
    """Arrow's base64 decoding before 14.0.1: the alphabet's characters up to the first
    other one (padding included), a lone last character dropped."""
    match = _BASE64_PREFIX.match(value)
    digits = match.group(0) if match else b""
    digits = digits[: len(digits) - (len(digits) % 4 == 1)]
    try:
        return base64.b64decode(digits + b"=" * (-len(digits) % 4))
    except binascii.Error as exc:  # pragma: no cover - the prefix is valid base64
        raise ParquetError(f"ARROW:schema is not base64: {exc}") from exc
