"""Spot code, pickles and URLs hidden in strings that a format stores as plain metadata.

Formats such as safetensors (`__metadata__`), PMML (`Extension`) and msgpack carry free text
that no loader executes by itself, but that a downstream tool may `eval`, unpickle or fetch.
Detection is by pattern only; nothing found here is ever decoded further than base64. The
whole text is read (a payload after a megabyte of padding went unread): every pattern here is
linear in it, and each base64 token is decoded once.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from ...formats.pickle_start import looks_like_pickle

__all__ = ["Payload", "find_payloads", "looks_like_pickle"]

_CODE_PATTERNS: Final = (
    re.compile(r"\b__import__\s*\("),
    re.compile(r"\b(?:eval|exec|compile|execfile)\s*\("),
    re.compile(r"\bos\.(?:system|popen|exec\w*|spawn\w*|fork|remove|unlink)\s*\("),
    re.compile(r"\bsubprocess\.\w+"),
    re.compile(
        r"\bimport\s+(?:os|sys|subprocess|socket|shutil|ctypes|pty|pickle|marshal|base64)\b"
    ),
    re.compile(r"\bfrom\s+(?:os|subprocess|socket|shutil|ctypes|pty|pickle|marshal)\s+import\b"),
    re.compile(r"\b(?:getattr|setattr)\s*\(\s*__builtins__"),
    re.compile(r"(?:^|[;&|`$(]\s*)(?:curl|wget)\s+\S+"),
    re.compile(r"\b(?:bash|sh|zsh)\s+-c\s"),
    re.compile(r"/bin/(?:ba|z)?sh\b"),
    re.compile(r"\brm\s+-rf\s"),
    re.compile(r"\bnc\s+(?:-\w+\s+)*-e\s"),
    re.compile(r"\bpowershell(?:\.exe)?\s+-"),
)
_BASE64_TOKEN: Final = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
_URL: Final = re.compile(r"\b(?:https?|ftp|file|s3|gs|hf)://[^\s\"'<>]+", re.IGNORECASE)


@dataclass(frozen=True)
class Payload:
    kind: str  # "code", "pickle" or "url"
    snippet: str
    data: bytes = b""  # the pickle's bytes, for a nested scan


def find_payloads(text: str, urls: bool = True) -> list[Payload]:
    """The first code fragment and URL in `text`, and every raw or base64 pickle: one code
    fragment is enough to flag the text, but each pickle is scanned on its own, so a harmless
    one first (or 16 tokens of padding) cannot hide the next. Linear in `text`."""
    found: list[Payload] = []
    # Python reads identifiers in NFKC form: fullwidth `eval(` is `eval(` to whatever evals
    code = text if text.isascii() else unicodedata.normalize("NFKC", text)
    for pattern in _CODE_PATTERNS:
        m = pattern.search(code)
        if m:
            found.append(Payload("code", _snippet(code, m.start(), m.end())))
            break
    raw = text.encode("latin-1", "ignore")
    if looks_like_pickle(raw):
        found.append(Payload("pickle", _snippet(text, 0, 40), raw))
    seen: set[bytes] = set()
    for m in _BASE64_TOKEN.finditer(text):
        token = m.group(0)
        try:
            decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        if decoded not in seen and looks_like_pickle(decoded):
            seen.add(decoded)
            found.append(Payload("pickle", _snippet(text, m.start(), m.end()), decoded))
    if urls:
        m = _URL.search(text)
        if m:
            found.append(Payload("url", m.group(0)[:200]))
    return found


def _snippet(text: str, start: int, end: int) -> str:
    return text[max(0, start - 20) : min(len(text), end + 40)][:160]
