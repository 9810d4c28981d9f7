"""CPython bytecode files (`.pyc`): told by their header, not by their name.

A `.pyc` is a code object behind a small header: the interpreter's magic number (two bytes,
then `\\r\\n`), from 3.7 a flags word (timestamp, checked or unchecked source hash) and eight
bytes that tie it to its source, then a marshalled code object. `import` runs it in place of
its source (from `__pycache__` when the header matches the `.py`, and an unchecked-hash one
without looking; a `.pyc` on the path with no `.py` beside it always), so bytecode shipped
with a model is code no scan of the sources reads. Only the header and the code object's type
byte are checked; nothing is unmarshalled.
"""

from __future__ import annotations

from typing import Final

__all__ = ["bytecode_kind", "hash_based"]

#: marshal's type byte of a code object, with and without its FLAG_REF bit
_CODE: Final = (0x63, 0xE3)
_FLAGS: Final = {0: "timestamp", 1: "unchecked source hash", 3: "checked source hash"}


def hash_based(head: bytes) -> bool:
    """Whether a bytecode header (its first 8 bytes will do) says hash-based (3.7+ flags 1 or
    3): `import` takes it without comparing the source's date."""
    return head[2:4] == b"\r\n" and int.from_bytes(head[4:8], "little") in (1, 3)


def bytecode_kind(head: bytes) -> str | None:
    """What `head` (the first bytes of a file) says of the bytecode file it starts, or None
    when it does not start one."""
    if len(head) < 17 or head[2:4] != b"\r\n":
        return None
    magic = head[0] | head[1] << 8
    if 3390 <= magic < 4000:  # 3.7 and later: magic, flags, 8 bytes, code
        flags = int.from_bytes(head[4:8], "little")
        if flags in _FLAGS and head[16] in _CODE:
            return f"CPython bytecode (magic {magic}, {_FLAGS[flags]})"
        return None
    if 3000 <= magic < 3390:  # 3.0-3.6: magic, mtime, (3.3+) source size, code
        if head[12 if magic >= 3200 else 8] in _CODE:
            return f"CPython bytecode (magic {magic})"
        return None
    if 20121 <= magic <= 62211 and head[8] in _CODE:  # Python 2
        return f"CPython 2 bytecode (magic {magic})"
    return None
