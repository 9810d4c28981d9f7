"""The contract a format scanner fulfils.

A scanner is pure and synchronous: given a local path it decides what loading that file would
do and returns a `ScanResult`. It runs inside a worker process under a deadline, so it may be
killed at any point; it must stream its input and never load, import or execute what it reads.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from ..findings import FileStatus, Issue, IssueSeverity, ScanResult, format_location
from ..formats import Format
from ..rules import MALFORMED, define_rule
from .context import ScanContext
from .trailing import scan_trailing

__all__ = [
    "BaseScanner",
    "FileStatus",
    "Issue",
    "IssueSeverity",
    "ScanContext",
    "ScanError",
    "ScanResult",
    "define_rule",
    "format_location",
]


class ScanError(Exception):
    """A scanner could not analyse a file; the message says why in words a user can act on."""


class BaseScanner(ABC):
    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    supported_extensions: ClassVar[list[str]] = []
    #: Content-sniffed formats (`modelaudit.formats.Format`) this scanner owns.
    formats: ClassVar[tuple[str, ...]] = ()
    #: True when, given `ScanContext.whole`, `scan` reads nothing else of its path: nested
    #: bytes this scanner owns (a small archive member, an embedded pickle) are then judged
    #: in memory instead of being written to a temporary file first.
    judges_bytes: ClassVar[bool] = False

    def __init__(
        self, config: Mapping[str, Any] | None = None, context: ScanContext | None = None
    ) -> None:
        self.config: dict[str, Any] = dict(config or {})
        #: Handed over by the engine; a scanner built by hand gets one with no engine behind.
        self.ctx = context or ScanContext.standalone("", self.config)

    @classmethod
    def can_handle(cls, path: str) -> bool:
        """Fallback routing by name, used when content sniffing finds no owner."""
        lower = path.lower()
        return any(lower.endswith(ext.lower()) for ext in cls.supported_extensions)

    @abstractmethod
    def scan(self, path: str) -> ScanResult:
        """Analyse `path` and return what was found."""

    def _create_result(self) -> ScanResult:
        return ScanResult(self.name)

    @property
    def display_path(self) -> str:
        """How the file is named in findings: the remote URI or archive member, if any."""
        return self.ctx.display_path

    def location(self, path: str, member: str | None = None, pos: int | None = None) -> str:
        shown = self.display_path or path
        return format_location(shown, member, pos)

    def scan_after_end(self, path: str, start: int, result: ScanResult, what: str) -> Format | None:
        """Judge the bytes from `start` (where the loader of this format stops reading, at
        the end of `what`) to the end of the file (`trailing`)."""
        return scan_trailing(
            self.ctx, path, start, result, what, lambda pos: self.location(path, pos=pos)
        )

    def mark_malformed(
        self, result: ScanResult, path: str, what: str, error: object, member: str | None = None
    ) -> None:
        """Truncated or corrupt input: say so, and never let the file count as clean."""
        result.add_issue(
            f"Malformed {what}: {error}",
            severity=IssueSeverity.INFO,
            location=self.location(path, member),
            rule=MALFORMED,
        )
        result.mark_inconclusive(f"malformed: {error}")

    @staticmethod
    def file_size(path: str) -> int:
        return os.path.getsize(path)

    def whole_file(self, path: str) -> bytes | None:
        """Every byte of `path` when the engine already read them all (a small file, read
        once by the sniff), else None: the scanner opens the file itself."""
        whole = self.ctx.whole
        return whole[1] if whole is not None and whole[0] == path else None
