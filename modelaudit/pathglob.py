"""Path globs for `--exclude` and suppressions, with the gitignore meaning users already know.

A pattern without a slash matches one path component anywhere (`*.bin`, `node_modules`); a
pattern with a slash matches a whole relative path (`tests/fixtures/**`), where `**` spans any
number of folders; a trailing slash restricts it to folders; a leading slash makes it an
absolute path. Paths are compared in POSIX form, names byte for byte (no case folding).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Glob", "GlobSet", "posix"]


def posix(path: str) -> str:
    """`path` normalised and with forward slashes, without a leading `./`."""
    norm = os.path.normpath(path).replace(os.sep, "/")
    return "" if norm == "." else norm


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if i < n and pattern[i] == "/":
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern.startswith(("[!", "[^"), i) else i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                negate = body[:1] in ("!", "^")
                body = body[1:] if negate else body
                body = body.replace("\\", "\\\\")
                out.append(f"[{'^/' if negate else ''}{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class Glob:
    pattern: str
    regex: re.Pattern[str]
    #: no slash in the pattern: matched against the last component only
    basename: bool
    folders_only: bool
    absolute: bool

    @classmethod
    def compile(cls, pattern: str) -> Glob:
        text = pattern.strip()
        if not text:
            raise ValueError("an empty path pattern matches nothing")
        folders_only = text.endswith("/") and len(text) > 1
        text = text.rstrip("/") or "/"
        absolute = text.startswith("/")
        if text.startswith("./"):
            text = text[2:]
        basename = "/" not in text
        regex = re.compile(f"(?s:{_translate(text)})\\Z")
        return cls(pattern, regex, basename, folders_only, absolute)

    def matches(self, path: str, is_dir: bool = False) -> bool:
        """Whether `path` (POSIX, relative or absolute as the pattern expects) matches."""
        if self.folders_only and not is_dir:
            return False
        if self.basename:
            return bool(self.regex.match(path.rsplit("/", 1)[-1]))
        if self.regex.match(path):
            return True
        return is_dir and bool(self.regex.match(path + "/"))


class GlobSet:
    """Several globs; `match` names the first that matches any of a path's spellings."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.globs = [Glob.compile(p) for p in patterns]

    def __bool__(self) -> bool:
        return bool(self.globs)

    def match(self, spellings: Iterable[str], is_dir: bool = False) -> str | None:
        """The first pattern matching one of `spellings` (the same path relative to the walk
        root, as the user wrote it, absolute), or None."""
        names = [s for s in spellings if s]
        for glob in self.globs:
            for name in names:
                if not glob.basename and glob.absolute != name.startswith("/"):
                    continue
                if glob.matches(name, is_dir):
                    return glob.pattern
        return None
