"""JSON with comments (tsconfig.json, .vscode/*.json, devcontainer.json): back to plain JSON.

One linear pass: `//` and `/* */` comments outside strings become spaces (so positions keep
their line numbers) and commas before a closing bracket are dropped.
"""

from __future__ import annotations


def strip_jsonc(text: str) -> str | None:
    """Plain JSON text, or None if a comment is left open."""
    out: list[str] = []
    i, n = 0, len(text)
    pending_comma: int | None = None  # index in `out` of a comma that may be trailing
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            pending_comma = None
            i = j + 1
            continue
        if c == "/" and i + 1 < n and text[i + 1] in "/*":
            if text[i + 1] == "/":
                end = text.find("\n", i)
                end = n if end < 0 else end
            else:
                end = text.find("*/", i + 2)
                if end < 0:
                    return None
                end += 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:end]))
            i = end
            continue
        if c == ",":
            pending_comma = len(out)
        elif c in "}]":
            if pending_comma is not None:
                out[pending_comma] = " "
            pending_comma = None
        elif not c.isspace():
            pending_comma = None
        out.append(c)
        i += 1
    return "".join(out)
