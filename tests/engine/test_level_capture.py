"""A scanner that dies keeps the findings it made first, whichever sink collected them.

`dispatch._judge` gives a file named by its own path under a top-level `FileCapture` (every
file of a worker batch) no level sink of its own: the findings a dying scanner made are taken
from the capture instead. These tests hold that path to what the level sink gives (the
findings of that level only, deduplicated, named by the scanner that died), for the top
level and for nested bytes judged in memory under it, and check that a file shown under
another name (a remote object's spool) still has its findings renamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch, worker
from modelaudit.findings import FileStatus, Issue, IssueSeverity, ScanResult
from modelaudit.formats import Format
from modelaudit.scanners.base import BaseScanner

#: Protocol 0 by hand; only ever scanned, by the dying scanner below, never loaded.
SMALL_PICKLE = b"(dp0\nS'w'\np1\nI1\ns."


def _die(result: ScanResult, how: str) -> None:
    result.add_issue("kept warning", severity=IssueSeverity.WARNING, rule="TEST-W")
    result.add_issue("kept critical", severity=IssueSeverity.CRITICAL, rule="TEST-C")
    result.add_issue("kept critical", severity=IssueSeverity.CRITICAL, rule="TEST-C")
    result.add_issue("an info note", severity=IssueSeverity.INFO, rule="TEST-I")
    if how == "memory":
        raise MemoryError
    if how == "recursion":
        raise RecursionError
    raise ValueError("broken parser")


class Dying(BaseScanner):
    """Owns `.dying` files by name: adds findings, then dies as its file's name says."""

    name = "dying"
    supported_extensions: ClassVar[list[str]] = [".dying"]

    def scan(self, path: str) -> ScanResult:
        _die(self._create_result(), Path(self.display_path).stem.rsplit("-", 1)[-1])
        raise AssertionError("unreachable")


class DyingPickle(BaseScanner):
    """Owns pickles, judges them in memory, and dies after its findings."""

    name = "dying-pickle"
    formats: ClassVar[tuple[str, ...]] = (Format.PICKLE,)
    judges_bytes = True

    def scan(self, path: str) -> ScanResult:
        _die(self._create_result(), "error")
        raise AssertionError("unreachable")


class Outer(BaseScanner):
    """Owns `.outer` files: a finding of its own, then a pickle member judged in memory."""

    name = "outer"
    supported_extensions: ClassVar[list[str]] = [".outer"]

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        result.add_issue("outer warning", severity=IssueSeverity.WARNING, rule="TEST-O")
        member = self.ctx.scan_member(
            SMALL_PICKLE, f"{self.display_path}:member.pkl", depth=1, config=self.ctx.config
        )
        result.merge(member)
        result.metadata["member"] = {
            "scanner": member.scanner_name,
            "status": member.status.value,
            "issues": [(i.message, i.severity.value) for i in member.issues],
        }
        result.finish()
        return result


@pytest.fixture
def registry() -> Iterator[None]:
    dispatch.set_registry([Dying, DyingPickle, Outer])
    try:
        yield
    finally:
        dispatch.set_registry(None)


def _serious(issues: list[Issue]) -> list[tuple[str, str | None]]:
    return [
        (i.message, i.location)
        for i in issues
        if i.severity in (IssueSeverity.WARNING, IssueSeverity.CRITICAL)
    ]


@pytest.mark.parametrize(
    ("how", "status", "reason"),
    [
        ("error", FileStatus.ERROR, "dying scanner failed: ValueError: broken parser"),
        ("memory", FileStatus.ERROR, "out of memory while scanning"),
        ("recursion", FileStatus.INCONCLUSIVE, "structure nested too deeply to analyse"),
    ],
)
@pytest.mark.parametrize("lane", [False, True], ids=["plain", "lane"])
@pytest.mark.usefixtures("registry")
def test_a_dying_scanner_keeps_its_findings_at_the_top_level(
    tmp_path: Path, how: str, status: FileStatus, reason: str, lane: bool
) -> None:
    config = ScanConfig().scanner_config()
    path = tmp_path / f"m-{how}.dying"
    path.write_bytes(b"not judged")
    shown = str(path)
    result = worker.scan_file(
        shown, config, shown, False, lane=dispatch.Lane(config) if lane else None
    )
    assert result.scanner_name == "dying"
    assert (result.status, result.status_reason) == (status, reason)
    assert _serious(result.issues) == [("kept warning", None), ("kept critical", None)]
    assert not any(i.rule == "TEST-I" for i in result.issues)  # only serious ones are kept
    assert [i.message for i in result.issues if i.severity is IssueSeverity.INFO] == [
        f"Scan incomplete: {reason}"
    ]


@pytest.mark.usefixtures("registry")
def test_a_spool_shown_under_its_uri_keeps_renamed_findings(tmp_path: Path) -> None:
    """The path differs from the name shown (a remote object's spool): the level sink
    still renames each finding before the capture and the stream see it."""
    config = ScanConfig().scanner_config()
    spool = tmp_path / "spool-error.dying"
    spool.write_bytes(b"not judged")
    streamed: list[Issue] = []
    uri = "s3://bucket/m-error.dying"
    result = worker.scan_file(str(spool), config, uri, False, stream=streamed.append)
    assert result.status is FileStatus.ERROR
    assert _serious(result.issues) == [("kept warning", uri), ("kept critical", uri)]
    assert [i.location for i in streamed] == [uri, uri, uri]


@pytest.mark.usefixtures("registry")
def test_nested_bytes_that_kill_their_scanner_keep_only_their_own_findings(
    tmp_path: Path,
) -> None:
    """The member's salvage holds the member's findings, not the outer file's."""
    config = ScanConfig().scanner_config()
    path = tmp_path / "m.outer"
    path.write_bytes(b"not judged")
    shown = str(path)
    result = worker.scan_file(shown, config, shown, False, lane=dispatch.Lane(config))
    member: dict[str, Any] = result.metadata["member"]
    assert member["scanner"] == "dying-pickle"
    assert member["status"] == "error"
    assert [m for m, severity in member["issues"] if severity != "info"] == [
        "kept warning",
        "kept critical",
    ]
    assert [m for m, _ in _serious(result.issues)] == [
        "outer warning",
        "kept warning",
        "kept critical",
    ]
