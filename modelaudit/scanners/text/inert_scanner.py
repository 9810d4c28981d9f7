"""Text and empty files beside models: LICENSE, NOTICE, AUTHORS, README, `.dvc/config`.

Sniffing only calls a file text after ruling out what a loader could run (a protocol 0/1
pickle that would import something, JSON, YAML by name, a zip appended to it is scanned by the
engine anyway), so there is nothing left to check: the file is complete, silently (an INFO on every LICENSE would only be noise).
"""

from __future__ import annotations

from ...formats import HEAD_SIZE, Format
from ..base import BaseScanner, ScanResult


class InertFileScanner(BaseScanner):
    name = "inert"
    description = "Text files without a loader (licenses, notices, INI) and empty files"
    formats = (Format.TEXT, Format.EMPTY)
    judges_bytes = True

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        whole = self.whole_file(path)
        size = len(whole) if whole is not None else self.file_size(path)
        result.metadata["inert"] = "empty" if size == 0 else "text"
        result.bytes_scanned = min(size, HEAD_SIZE)
        result.finish()
        return result
