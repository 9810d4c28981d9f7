"""Find a zip hiding at the end of a file of another format (a pickle with a zip appended).

Loaders that read from the start (pickle, torch's legacy path) and loaders that read the zip
directory from the end (zipfile, numpy) see different content, so the engine scans both views.
"""

from __future__ import annotations

import os

from ...engine.sniff import classify_zip
from ...findings import IssueSeverity, ScanResult
from . import rules as crules
from .zipdir import MemberError, ZipFormatError, data_offset, find_eocd, read_directory


def appended_zip_format(path: str) -> str | None:
    """The zip format (zip, pytorch_zip, npz...) of an appended archive, or None."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if f.read(4) in (b"PK\x03\x04", b"PK\x05\x06"):
            return None
        if find_eocd(f, size) is None:
            return None
        try:
            directory = read_directory(f, size)
            if not directory.entries:
                return None
            data_offset(f, directory.entries[0])
        except (ZipFormatError, MemberError):
            return None
    return classify_zip(directory.names)


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
