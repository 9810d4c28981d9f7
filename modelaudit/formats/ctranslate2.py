"""CTranslate2 converted models (`model.bin`): named tensors behind a small binary header.

`ctranslate2.Translator`/`Generator` read variable names, shapes, dtypes and raw bytes;
nothing is executed. The `.bin` name sends such files to the pickle scanner otherwise.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from .bounded_reader import BoundedReader, Malformed

#: Binary versions CTranslate2 has written; the spec name appeared in version 2.
_VERSIONS: Final = range(1, 7)
_MAX_NAME: Final = 4096
_MAX_RANK: Final = 8
_MAX_VARIABLES: Final = 1_000_000
_DTYPES: Final = range(0, 8)


@dataclass
class CTranslate2Info:
    version: int
    spec: str
    revision: int
    variables: int
    aliases: int
    names: list[str] = field(default_factory=list)


def looks_like_ctranslate2(head: bytes) -> bool:
    """Version 2+ header: version, then a NUL-terminated spec name such as `...Spec`."""
    if len(head) < 10:
        return False
    version, length = struct.unpack_from("<IH", head)
    if version not in _VERSIONS or version < 2 or not 2 <= length <= 256:
        return False
    name = head[6 : 6 + length]
    return len(name) == length and name.endswith(b"\x00") and _ident(name[:-1])


def _ident(raw: bytes) -> bool:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return False
    return text.isidentifier()


def read_ctranslate2(f: BinaryIO, size: int, keep_names: int = 64) -> CTranslate2Info:
    """Walk every variable record (skipping tensor bytes) and the alias table."""
    r = BoundedReader(f, size)
    version = r.unpack("I")
    if version not in _VERSIONS:
        raise Malformed(f"unknown CTranslate2 binary version {version}")
    spec, revision = "", 1
    if version >= 2:
        spec, revision = _string(r), r.unpack("I")
    count = r.unpack("I")
    if count > _MAX_VARIABLES:
        raise Malformed(f"{count} variables")
    info = CTranslate2Info(version, spec, revision, count, 0)
    if version < 4:
        return info  # older layouts: the header is all this reader knows
    for _ in range(count):
        name = _string(r)
        if len(info.names) < keep_names:
            info.names.append(name)
        rank = r.take(1)[0]
        if rank > _MAX_RANK:
            raise Malformed(f"variable {name!r} has rank {rank}")
        r.skip(4 * rank)
        if r.take(1)[0] not in _DTYPES:
            raise Malformed(f"variable {name!r} has an unknown dtype")
        r.skip(r.unpack("I"))
    if version >= 3 and r.left:
        info.aliases = r.unpack("I")
        for _ in range(min(info.aliases, _MAX_VARIABLES)):
            _string(r)
            _string(r)
    if r.left:
        raise Malformed(f"{r.left} bytes after the last record")
    return info


def _string(r: BoundedReader) -> str:
    length = r.unpack("H")
    if not 1 <= length <= _MAX_NAME:
        raise Malformed(f"string of {length} bytes at {r.pos}")
    raw = r.take(length)
    if not raw.endswith(b"\x00"):
        raise Malformed(f"unterminated string at {r.pos}")
    try:
        return raw[:-1].decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed(f"string at {r.pos} is not UTF-8") from None
