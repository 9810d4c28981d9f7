"""The finding for a zip hiding at the end of a file of another format (a polyglot).

Detection is pure and lives in `modelaudit.formats.sniff.appended_zip_format`.

Loaders that read from the start (pickle, torch's legacy path) and loaders that read the zip
directory from the end (zipfile, numpy) see different content, so the engine scans both views.
"""

from __future__ import annotations

from ...findings import IssueSeverity, ScanResult
from ...rules import containers as crules


def report_polyglot(result: ScanResult, where: str, kind: str) -> None:
    result.add_issue(
        f"File is also a {kind} archive (zip appended to another format); both views scanned",
        severity=IssueSeverity.WARNING,
        location=where,
        details={"zip_format": kind},
        why="A polyglot shows one content to a scanner and another to the loader that opens it "
        "as a zip; it is a known way to smuggle a payload past checks.",
        rule=crules.POLYGLOT,
    )
