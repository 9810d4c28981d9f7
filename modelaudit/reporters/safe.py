"""Render names that came from a scanned file or a directory listing, whatever they hold.

File names are carried as the OS gives them (undecodable bytes as surrogate escapes), and a
pickle or a JSON file may hold lone surrogates. Neither may crash a reporter nor reach a
terminal raw: a name with an ANSI sequence could erase findings, one with a newline could
print a fake summary line.

- `printable(text)`: for terminals and logs; control, format (bidi) and separator characters
  and surrogates become backslash escapes, so each name stays on its line and is shown as is.
- `json_safe(value)`: for JSON-based formats; only what UTF-8 cannot encode is escaped (an
  undecodable byte from a file name becomes the text `\\xNN`, another lone surrogate `\\udNNN`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

_CANDIDATE = re.compile(r"[\x00-\x1f\x7f-\x9f]|[^\x00-\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn"})
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in _SHORT:
        return _SHORT[ch]
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _printable_char(match: re.Match[str]) -> str:
    ch = match.group(0)
    if ord(ch) < 0xA0 or unicodedata.category(ch) in _UNSAFE_CATEGORIES:
        return _escape(ch)
    return ch


def printable(text: object) -> str:
    """`text` as one line that a terminal shows as written, never interprets."""
    value = text if isinstance(text, str) else str(text)
    return _CANDIDATE.sub(_printable_char, value)


def utf8_safe(text: str) -> str:
    """`text` encodable as UTF-8: each lone surrogate becomes an escape."""
    return _SURROGATE.sub(lambda m: _escape(m.group(0)), text)


def json_safe(value: Any) -> Any:
    """A copy of a JSON-shaped value whose strings (and keys) all encode as UTF-8."""
    if isinstance(value, str):
        return utf8_safe(value)
    if isinstance(value, dict):
        return {(utf8_safe(k) if isinstance(k, str) else k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return utf8_safe(str(value))
