"""The Arrow schema as an IPC reader sees it: field names and the custom metadata of the schema
and of every field, nested ones included. Nothing else of the FlatBuffers tables is read.

pyarrow before 14.0.1 unpickles `ARROW:extension:metadata` of any field named as
`arrow.py_extension_type` while it builds the schema, before any row is read; so the schema is
all a scanner needs. Arrow IPC files start with `ARROW1\\0\\0`, carry the schema both as the
stream's first message (at offset 8) and in the footer (`<Footer><int32 length>ARROW1` at the
end), and readers of the file format take the footer's. A stream (HF `datasets` cache files)
starts with the schema message: `0xFFFFFFFF`, an int32 length, the `Message` flatbuffer
(before Arrow 0.15, the length alone). Parquet keeps the same message, base64-encoded, in its
footer (`parquet_footer.py`).

Every read is bounds-checked, tables and vectors are visited once each (FlatBuffers may share
them) and the visits are charged to a budget, so the work is linear in the message; nesting is
bounded as Arrow's verifier bounds it. Anything malformed raises `ArrowSchemaError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from .view import ByteView

IPC_FILE_MAGIC: Final = b"ARROW1"
#: Feather version 1 (before Arrow IPC files): its own metadata, which has no extension types.
FEATHER_V1_MAGIC: Final = b"FEA1"
CONTINUATION: Final = b"\xff\xff\xff\xff"
#: Largest schema message read (Arrow's own limit is the int32 length).
MESSAGE_CAP: Final = 256 * 1024 * 1024
#: Arrow verifies flatbuffers with a maximum depth of 128 tables.
MAX_DEPTH: Final = 128
#: `MessageHeader` union: the first message of a stream must be a Schema.
_HEADER_SCHEMA: Final = 1


class ArrowSchemaError(Exception):
    """The bytes are not an Arrow schema message (truncated, out of bounds, too deep, not a
    Schema, or more tables than a message of its size can hold)."""


@dataclass(frozen=True)
class ArrowField:
    #: names from the top-level field down, joined by "/"
    path: str
    metadata: tuple[tuple[bytes, bytes], ...]


@dataclass
class ArrowSchema:
    metadata: tuple[tuple[bytes, bytes], ...] = ()
    fields: list[ArrowField] = field(default_factory=list)


class _Flat:
    """Bounds-checked reads of one flatbuffer."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.size = len(buf)
        # each table or vector element charged once; a message cannot hold more than this
        self.budget = self.size // 4 + 16
        # string bytes copied out: shared strings must not multiply the memory a message costs
        self.bytes_left = 4 * self.size + (1 << 20)

    def charge(self, units: int = 1) -> None:
        self.budget -= units
        if self.budget < 0:
            raise ArrowSchemaError("more tables and vector entries than the message can hold")

    def _u(self, fmt: str, pos: int, width: int) -> int:
        if pos < 0 or pos + width > self.size:
            raise ArrowSchemaError(f"read of {width} bytes at {pos} outside the {self.size}")
        value: int = struct.unpack_from(fmt, self.buf, pos)[0]
        return value

    def u8(self, pos: int) -> int:
        return self._u("<B", pos, 1)

    def u16(self, pos: int) -> int:
        return self._u("<H", pos, 2)

    def u32(self, pos: int) -> int:
        return self._u("<I", pos, 4)

    def i32(self, pos: int) -> int:
        return self._u("<i", pos, 4)

    def slot(self, table: int, index: int) -> int | None:
        """Where field `index` of the table at `table` is stored, or None when absent."""
        vtable = table - self.i32(table)
        vsize = self.u16(vtable)
        if vsize < 4 or vsize & 1:
            raise ArrowSchemaError(f"vtable at {vtable} has size {vsize}")
        self.u16(vtable + vsize - 2)
        entry = 4 + 2 * index
        if entry >= vsize:
            return None
        offset = self.u16(vtable + entry)
        return table + offset if offset else None

    def ref(self, table: int, index: int) -> int | None:
        """The table, string or vector field `index` points to, or None."""
        pos = self.slot(table, index)
        return None if pos is None else pos + self.u32(pos)

    def string(self, pos: int) -> bytes:
        length = self.u32(pos)
        if pos + 4 + length > self.size:
            raise ArrowSchemaError(f"string of {length} bytes at {pos} runs past the message")
        self.bytes_left -= length
        if self.bytes_left < 0:
            raise ArrowSchemaError("strings shared more often than the message can justify")
        return self.buf[pos + 4 : pos + 4 + length]

    def tables(self, pos: int) -> list[int]:
        """The tables of the vector at `pos`."""
        count = self.u32(pos)
        if pos + 4 + 4 * count > self.size:
            raise ArrowSchemaError(f"vector of {count} entries at {pos} runs past the message")
        self.charge(count)
        return [pos + 4 + 4 * i + self.u32(pos + 4 + 4 * i) for i in range(count)]


def _key_values(flat: _Flat, table: int, index: int) -> tuple[tuple[bytes, bytes], ...]:
    vector = flat.ref(table, index)
    if vector is None:
        return ()
    out = []
    for kv in flat.tables(vector):
        key, value = flat.ref(kv, 0), flat.ref(kv, 1)
        out.append(
            (
                b"" if key is None else flat.string(key),
                b"" if value is None else flat.string(value),
            )
        )
    return tuple(out)


def _schema(flat: _Flat, schema: int, depth: int) -> ArrowSchema:
    """Schema { endianness, fields: [Field], custom_metadata: [KeyValue], features }; Field {
    name, nullable, type_type, type, dictionary, children: [Field], custom_metadata }."""
    out = ArrowSchema(metadata=_key_values(flat, schema, 2))
    top = flat.ref(schema, 1)
    stack = [(f, "", depth + 1) for f in reversed(flat.tables(top))] if top is not None else []
    seen: set[int] = set()
    while stack:
        table, parent, level = stack.pop()
        if level > MAX_DEPTH:
            raise ArrowSchemaError(f"fields nested deeper than {MAX_DEPTH} tables")
        if table in seen:
            continue
        seen.add(table)
        flat.charge()
        name_at = flat.ref(table, 0)
        name = (b"" if name_at is None else flat.string(name_at)).decode("utf-8", "replace")
        path = f"{parent}/{name}" if parent else name
        out.fields.append(ArrowField(path or "<unnamed>", _key_values(flat, table, 6)))
        children = flat.ref(table, 5)
        if children is not None:
            stack.extend((c, path, level + 1) for c in reversed(flat.tables(children)))
    return out


def _root(flat: _Flat) -> int:
    return flat.u32(0)


def parse_message(buf: bytes) -> ArrowSchema:
    """A `Message` flatbuffer whose header is a Schema (`version`, `header_type`, `header`,
    `bodyLength`, `custom_metadata`)."""
    flat = _Flat(buf)
    message = _root(flat)
    type_at = flat.slot(message, 1)
    header_type = 0 if type_at is None else flat.u8(type_at)
    if header_type != _HEADER_SCHEMA:
        raise ArrowSchemaError(f"first message is of type {header_type}, not a Schema")
    schema = flat.ref(message, 2)
    if schema is None:
        raise ArrowSchemaError("schema message without a schema")
    return _schema(flat, schema, 1)


def parse_footer(buf: bytes) -> ArrowSchema:
    """An IPC file's `Footer` flatbuffer (`version`, `schema`, `dictionaries`, ...)."""
    flat = _Flat(buf)
    schema = flat.ref(_root(flat), 1)
    if schema is None:
        raise ArrowSchemaError("file footer without a schema")
    return _schema(flat, schema, 1)


def message_bytes(view: ByteView, offset: int = 0) -> bytes:
    """The flatbuffer of the encapsulated message at `offset` (continuation marker optional,
    as Arrow's reader accepts the pre-0.15 framing)."""
    prefix = view.get(offset, offset + 8)
    if len(prefix) < 4:
        raise ArrowSchemaError("no message: the stream ends before its first length")
    start = offset + 4
    if prefix[:4] == CONTINUATION:
        if len(prefix) < 8:
            raise ArrowSchemaError("no message: the stream ends inside its first length")
        start = offset + 8
        (length,) = struct.unpack_from("<i", prefix, 4)
    else:
        (length,) = struct.unpack_from("<i", prefix, 0)
    if length == 0:
        raise ArrowSchemaError("the stream ends before its schema message")
    if length < 0 or length > MESSAGE_CAP or start + length > view.size:
        raise ArrowSchemaError(f"schema message length {length} outside the file")
    return view.get(start, start + length)


def read_stream_schema(view: ByteView, offset: int = 0) -> ArrowSchema:
    """The schema message a stream reader reads first."""
    return parse_message(message_bytes(view, offset))


def is_ipc_file(view: ByteView) -> bool:
    return view.get(0, 6) == IPC_FILE_MAGIC


def read_file_footer(view: ByteView) -> ArrowSchema:
    """The schema in an IPC file's footer, the one `pyarrow.ipc.open_file` and Feather v2
    readers use."""
    if view.size < 6 + 2 + 4 + 6:
        raise ArrowSchemaError("file too short for an Arrow IPC footer")
    tail = view.get(view.size - 10, view.size)
    if tail[4:] != IPC_FILE_MAGIC:
        raise ArrowSchemaError("no ARROW1 magic at the end of the file")
    (length,) = struct.unpack_from("<i", tail, 0)
    start = view.size - 10 - length
    if length <= 0 or length > MESSAGE_CAP or start < 8:
        raise ArrowSchemaError(f"footer length {length} outside the file")
    return parse_footer(view.get(start, start + length))


def read_ipc_schemas(view: ByteView) -> list[tuple[str, ArrowSchema]]:
    """Every schema an IPC reader may take: a file's stream schema and footer schema, or a
    stream's first message."""
    if is_ipc_file(view):
        return [("schema", read_stream_schema(view, 8)), ("footer", read_file_footer(view))]
    return [("schema", read_stream_schema(view))]


def looks_like_arrow_stream(head: bytes, size: int | None) -> bool:
    """A continuation marker, then a length that fits the file, then a Message flatbuffer
    whose header is a Schema (checked as far as the head holds it)."""
    if len(head) < 16 or head[:4] != CONTINUATION:
        return False
    (length,) = struct.unpack_from("<i", head, 4)
    if length < 8 or (size is not None and length + 8 > size):
        return False
    flat = _Flat(head[8 : 8 + length])
    try:
        message = _root(flat)
        type_at = flat.slot(message, 1)
        return type_at is not None and flat.u8(type_at) == _HEADER_SCHEMA
    except ArrowSchemaError:
        return False


def read_schemas(view: ByteView) -> list[tuple[str, ArrowSchema]]:
    """Every Arrow schema a reader of this Parquet or IPC file builds, named by where it is
    kept: a Parquet footer's `ARROW:schema` values (each one: which a reader takes is its
    business), or `read_ipc_schemas`. Told apart by content, as readers are: Parquet by its
    trailing magic (or a leading `PAR1`). A Feather v1 file holds no Arrow schema: none."""
    from .parquet_footer import (
        ARROW_SCHEMA_KEY,
        ENCRYPTED_MAGIC,
        MAGIC,
        decode_arrow_schema,
        read_key_value_metadata,
    )
    from .view import BufferView

    if view.get(0, 4) == FEATHER_V1_MAGIC == view.get(view.size - 4, view.size):
        return []
    if view.get(0, 4) != MAGIC and view.get(view.size - 4, view.size) not in (
        MAGIC,
        ENCRYPTED_MAGIC,
    ):
        return read_ipc_schemas(view)
    out = []
    for key, value in read_key_value_metadata(view):
        if key == ARROW_SCHEMA_KEY:
            out.append(
                ("footer/ARROW:schema", read_stream_schema(BufferView(decode_arrow_schema(value))))
            )
    return out
