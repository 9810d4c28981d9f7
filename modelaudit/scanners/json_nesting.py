"""Measure how deeply a JSON text nests before handing it to a parser.

Parsers recurse per level, so a hostile `[[[[...` costs stack and time in every tool that
reads the file; measuring first lets a scanner refuse it cheaply and say why.
"""

from __future__ import annotations

import re
from typing import Final

_STRINGS: Final = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"{}[]")


def json_depth(raw: bytes, limit: int) -> int:
    """Bracket nesting outside strings; stops counting once `limit` is exceeded."""
    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = best = 0
    for byte in brackets:
        if byte in (0x7B, 0x5B):
            depth += 1
            if depth > best:
                best = depth
                if best > limit:
                    return best
        else:
            depth -= 1
    return best
