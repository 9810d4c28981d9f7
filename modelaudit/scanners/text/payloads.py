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
#: A protocol 0-2 GLOBAL opcode: `c<module>\n<name>\n`.
_PICKLE_GLOBAL: Final = re.compile(rb"(?:^|[(\n])c[A-Za-z_][\w.]*\n[A-Za-z_][\w.]*\n")
#: Opcodes that import (the only way a pickle reaches anything callable), and their bytes.
_IMPORT_OPS: Final = frozenset({"GLOBAL", "INST", "STACK_GLOBAL", "EXT1", "EXT2", "EXT4"})
_IMPORT_BYTES: Final = re.compile(rb"[ci][A-Za-z_][\w.]*\n|[\x93\x82\x83\x84]")
_BASE64_TOKEN: Final = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
_URL: Final = re.compile(r"\b(?:https?|ftp|file|s3|gs|hf)://[^\s\"'<>]+", re.IGNORECASE)


@dataclass(frozen=True)
class Payload:
    kind: str  # "code", "pickle" or "url"
    snippet: str
    data: bytes = b""  # the pickle's bytes, for a nested scan


def looks_like_pickle(data: bytes) -> bool:
    """A binary pickle header, a protocol 0-2 GLOBAL opcode near the start, or opcodes that,
    read from the first byte as `pickle.loads` reads them, reach an import (GLOBAL or INST
    past the first 512 bytes, after padding; STACK_GLOBAL or EXT in a stream without a
    PROTO header, which the unpickler accepts) before a STOP or a byte no unpickler reads.
    Nothing runs in a pickle without an import, so one with none needs no walk. Linear."""
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return True
    if _PICKLE_GLOBAL.search(data[:512]):
        return True
    return bool(_IMPORT_BYTES.search(data)) and _reaches_import(data)


def _reaches_import(data: bytes) -> bool:
    """Whether `data`'s opcodes, from its first byte, parse up to an import opcode."""
    import io
    import pickletools

    try:
        for op, _arg, _pos in pickletools.genops(io.BytesIO(data)):
            if op.name in _IMPORT_OPS:
                return True
            if op.name == "STOP":
                return False
    except ValueError:
        return False
    return False


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
