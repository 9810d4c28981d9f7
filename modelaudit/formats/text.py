"""Text and small structured files that sit beside models: recognised so they are not guessed.

A repository's LICENSE, NOTICE or AUTHORS has no extension, and a `.dvc/config` starts with
`[core]`; guessing them as pickles or JSON made them end inconclusive. Nothing loads and runs
such a file, so recognising it is enough.
"""

from __future__ import annotations

import os
import struct
from typing import Final

_TEXT_CONTROLS: Final = frozenset(b"\t\n\r\f\v\x1b")
_JSON_AFTER_BRACKET: Final = frozenset(b'"{[]-0123456789tfn')


def is_repository_text(name: str) -> bool:
    """A bare name: LICENSE, NOTICE, AUTHORS, COPYING, MLmodel's neighbours, `.dvc/config`.

    Named text (`README.md`, `notes.txt`) is never guessed at: a walk skips it as before.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, ext = os.path.splitext(base)
    return bool(base) and (not ext or not stem)


def looks_like_text(head: bytes) -> bool:
    """UTF-8 without NULs or stray control bytes (a multi-byte character cut by the head is
    fine)."""
    if not head or any(b < 0x20 and b not in _TEXT_CONTROLS for b in head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data" and exc.start >= len(head) - 3
    return True


def looks_like_json_start(stripped: bytes) -> bool:
    """`{` or `[` opening a JSON value; `[core]` (INI) or `[Section]` is no JSON."""
    if stripped[:1] == b"{":
        after = stripped[1:].lstrip()
        return not after or after[:1] in (b'"', b"}")
    if stripped[:1] == b"[":
        after = stripped[1:].lstrip()
        return not after or after[0] in _JSON_AFTER_BRACKET
    return False


def looks_like_msgpack_map(head: bytes) -> bool:
    """A msgpack map keyed by strings (spaCy's `lookups.bin`, thinc model files)."""
    if not head:
        return False
    first = head[0]
    if 0x80 <= first <= 0x8F:
        count, pos = first & 0x0F, 1
    elif first == 0xDE and len(head) >= 3:
        count, pos = struct.unpack_from(">H", head, 1)[0], 3
    elif first == 0xDF and len(head) >= 5:
        count, pos = struct.unpack_from(">I", head, 1)[0], 5
    else:
        return False
    if count == 0:
        return len(head) == pos
    if pos >= len(head):
        return False
    key = head[pos]
    if 0xA0 <= key <= 0xBF:
        length, start = key & 0x1F, pos + 1
    elif key in (0xD9, 0xC4) and pos + 1 < len(head):
        length, start = head[pos + 1], pos + 2
    else:
        return False
    raw = head[start : start + length]
    if len(raw) < length:
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return key == 0xC4
    return True
