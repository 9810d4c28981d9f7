"""The GGUF header, key/values and tensor table, read with hard bounds.

llama.cpp's C parser has had heap overflows on crafted counts and lengths, so every count and
length is checked against the bytes that remain before anything is read or allocated. String
values are kept only for the keys the scanner judges (`general.*`, chat templates); token
arrays are skipped, not decoded. Tensor data is never read. A header that breaks partway is
returned with what was read before the break, and the break in `error`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Final

from .bounded_reader import BoundedReader, Hostile, Malformed
from .view import ByteView

MAGIC: Final = b"GGUF"
_STRING, _ARRAY = 8, 9
_SCALAR_SIZES: Final = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_SCALAR_FMT: Final = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_KEEP_STRINGS: Final = ("general.", "tokenizer.chat_template")
_MAX_KEPT_STRING: Final = 4 * 1024 * 1024
_MAX_KEY: Final = 65536
_MAX_DIMS: Final = 8

#: ggml type id -> (elements per block, bytes per block), as in gguf-py's GGML_QUANT_SIZES.
GGML_TYPES: Final[dict[int, tuple[int, int]]] = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 40),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
    39: (32, 17),
    40: (64, 36),
    41: (128, 18),
}


def loaded_string(value: Any) -> str | None:
    """A key's value as llama.cpp hands it to callers that ask for a string (its metadata map,
    `llama_model_chat_template`, llama-cpp-python's `metadata`): a string as it is, an array of
    strings written out as `["a", "b"]` with backslashes and quotes escaped (gguf_kv_to_str).
    So a chat template stored as a string array is still a template, Jinja tags and all."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in value)
        return "[" + ", ".join(quoted) + "]"
    return None


def tensor_nbytes(dims: list[int], ttype: int) -> int | None:
    """Bytes of one tensor's data; None for a type gguf-py does not know."""
    layout = GGML_TYPES.get(ttype)
    if layout is None:
        return None
    elements = 1
    for d in dims:
        elements *= d
    block, block_bytes = layout
    return -(-elements // block) * block_bytes


def tensors_end(header: GgufHeader) -> int | None:
    """Where the last tensor's data ends (an offset in the file), or None when a tensor has
    a type whose size is unknown (then nothing can be said about what follows)."""
    last = 0
    for _name, dims, ttype, offset in header.tensor_info:
        nbytes = tensor_nbytes(dims, ttype)
        if nbytes is None:
            return None
        last = max(last, offset + nbytes)
    return header.data_start + last


class NotGguf(Malformed):
    """The file does not start with a GGUF header."""


@dataclass
class GgufHeader:
    version: int = 0
    tensors: int = 0
    values: dict[str, Any] = field(default_factory=dict)
    tensor_info: list[tuple[str, list[int], int, int]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    #: Values a later copy of the same key replaced in `values` (key, value): loaders that
    #: let the first copy win (older gguf-py and llama.cpp) read these instead.
    shadowed: list[tuple[str, Any]] = field(default_factory=list)
    #: where tensor data starts (aligned); 0 when the header did not parse to the end
    data_start: int = 0
    #: bytes read: the end of the tensor table, or where the header broke
    end: int = 0
    error: Malformed | None = None


def parse_header(view: ByteView) -> GgufHeader:
    """Raises `NotGguf` for another format; any later break is recorded in `error`."""
    head = view.get(0, 8)
    if len(head) < 8 or head[:4] != MAGIC:
        raise NotGguf("not a GGUF header")
    (version,) = struct.unpack("<I", head[4:8])
    endian = "<"
    if version & 0xFFFF == 0 and version >> 16:
        endian, version = ">", struct.unpack(">I", head[4:8])[0]
    header = GgufHeader()
    reader = BoundedReader.on(view, endian, start=8)
    try:
        if version not in (1, 2, 3):
            raise Hostile(f"unknown GGUF version {version}")
        header.version = version
        _read(reader, header)
    except Malformed as exc:
        header.error = exc
    header.end = reader.pos
    return header


def _read(r: BoundedReader, h: GgufHeader) -> None:
    wide = h.version >= 2
    count_fmt = "Q" if wide else "I"
    h.tensors = r.unpack(count_fmt)
    kv_count = r.unpack(count_fmt)
    if h.tensors > r.left // 20 or kv_count > r.left // 9:
        raise Hostile(f"counts {h.tensors} tensors / {kv_count} keys exceed what the file holds")
    for _ in range(kv_count):
        key = _string(r, wide, keep=True, limit=_MAX_KEY)
        vtype = r.unpack("I")
        value = _value(r, vtype, wide, keep=key.startswith(_KEEP_STRINGS))
        if key in h.values:
            h.duplicates.append(f"key {key!r}")
            h.shadowed.append((key, h.values[key]))
        h.values[key] = value
    names: set[str] = set()
    for _ in range(h.tensors):
        name = _string(r, wide, keep=True, limit=_MAX_KEY)
        n_dims = r.unpack("I")
        if n_dims > _MAX_DIMS:
            raise Hostile(f"tensor {name!r} claims {n_dims} dimensions")
        dims = [r.unpack(count_fmt) for _ in range(n_dims)]
        ttype = r.unpack("I")
        offset = r.unpack("Q")
        if name in names:
            h.duplicates.append(f"tensor {name!r}")
        names.add(name)
        h.tensor_info.append((name, dims, ttype, offset))
    alignment = h.values.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise Hostile(f"general.alignment {alignment!r} is not a power of two")
    h.data_start = -(-r.pos // alignment) * alignment


def _string(r: BoundedReader, wide: bool, keep: bool, limit: int = _MAX_KEPT_STRING) -> str:
    length = r.unpack("Q" if wide else "I")
    if length > r.left:
        raise Hostile(f"string length {length} exceeds the {r.left} bytes left")
    if not keep or length > limit:
        if keep and length > limit:
            raise Hostile(f"string of {length} bytes where at most {limit} are expected")
        r.skip(length)
        return ""
    return r.take(length).decode("utf-8", "replace")


def _value(r: BoundedReader, vtype: int, wide: bool, keep: bool) -> Any:
    if vtype in _SCALAR_FMT:
        return r.unpack(_SCALAR_FMT[vtype])
    if vtype == _STRING:
        return _string(r, wide, keep)
    if vtype != _ARRAY:
        raise Hostile(f"unknown value type {vtype}")
    itype = r.unpack("I")
    count = r.unpack("Q" if wide else "I")
    if itype in _SCALAR_SIZES:
        if count * _SCALAR_SIZES[itype] > r.left:
            raise Hostile(f"array of {count} items exceeds the {r.left} bytes left")
        r.skip(count * _SCALAR_SIZES[itype])
        return None
    if itype == _STRING:
        if count > r.left // (8 if wide else 4):
            raise Hostile(f"array of {count} strings exceeds the {r.left} bytes left")
        items = [_string(r, wide, keep) for _ in range(count)] if keep else None
        if not keep:
            for _ in range(count):
                _string(r, wide, False)
        return items
    raise Hostile(f"array of unsupported item type {itype}")
