"""Helpers shared by the data-format tests (tests/dataformats)."""

from __future__ import annotations

from pathlib import Path

from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch
from modelaudit.findings import FileStatus, IssueSeverity, ScanResult


def scan(path: Path | str, explicit: bool = True) -> ScanResult:
    """Route and scan one file exactly as a worker does (sniff, owning scanner, blacklist)."""
    return dispatch.scan_path(str(path), ScanConfig().scanner_config(), explicit=explicit)


def severities(result: ScanResult) -> set[IssueSeverity]:
    return {i.severity for i in result.issues}


def rules_of(result: ScanResult, severity: IssueSeverity | None = None) -> set[str]:
    return {i.rule or "" for i in result.issues if severity is None or i.severity is severity}


def assert_clean(result: ScanResult) -> None:
    """No WARNING or CRITICAL, and the scan saw the whole file."""
    bad = [i.message for i in result.issues if i.severity.rank >= IssueSeverity.WARNING.rank]
    assert not bad, bad
    assert result.status is FileStatus.COMPLETE, result.status_reason


def has_pickle_scanner() -> bool:
    return any("pickle" in getattr(c, "formats", ()) for c in dispatch.registry())


def wide(ascii_text: str) -> str:
    """`ascii_text` in fullwidth compatibility characters (NFKC folds them back)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in ascii_text)
