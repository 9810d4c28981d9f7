"""The finished report: one entry per file, merged findings, and the exit-code rule.

Reporters render this; they never re-derive verdicts. The JSON shape keeps every key the
reference documents (`scanner_names`, `start_time`, `bytes_scanned`, `issues`, `has_errors`,
`files_scanned`, `duration`, `assets`) and adds per-file statuses.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ._version import __version__
from .exit_codes import EXIT_CLEAN as EXIT_CLEAN
from .exit_codes import EXIT_FINDINGS as EXIT_FINDINGS
from .exit_codes import EXIT_INCOMPLETE as EXIT_INCOMPLETE
from .findings import FileStatus, Issue, IssueSeverity
from .rules import SCAN_ERROR

_FINDING_SEVERITIES = (IssueSeverity.WARNING, IssueSeverity.CRITICAL)
#: Members bound once: reading `FileStatus.ERROR` or `.value` costs a descriptor call, and
#: the properties below walk every file of a 50,000-file sweep several times.
_COMPLETE = FileStatus.COMPLETE
_INCONCLUSIVE = FileStatus.INCONCLUSIVE
_ERROR = FileStatus.ERROR
_SKIPPED = FileStatus.SKIPPED
FAIL_ON_WARNING = "warning"
FAIL_ON_CRITICAL = "critical"


def _target_message(err: dict[str, str]) -> str:
    target, error = err.get("target", ""), err.get("error", "")
    return error if target and error.startswith(f"{target}:") else f"{target}: {error}"


@dataclass
class FileReport:
    path: str
    status: FileStatus = FileStatus.COMPLETE
    status_reason: str | None = None
    format: str | None = None
    scanner: str | None = None
    size: int | None = None
    bytes_scanned: int = 0
    duration: float = 0.0
    sha256: str | None = None
    #: every digest known of the file's content, by algorithm (sha256, md5, sha1, crc32c;
    #: lowercase hex): computed here, or published by a remote object's provider
    digests: dict[str, str] = field(default_factory=dict)
    #: where a remote object's digests come from (e.g. "Hugging Face LFS sha256"); None when
    #: they were computed from the bytes
    digest_source: str | None = None
    remote: bool = False
    issues: list[Issue] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Reported from `--cache`: the object is unchanged since this verdict was reached.
    cached: bool = False

    @property
    def is_finished(self) -> bool:
        return self.status is FileStatus.COMPLETE

    def to_record(self) -> dict[str, Any]:
        """Everything about the file as plain JSON data: what a cluster node sends back and
        what the result cache stores (`from_record` reads it)."""
        return {
            "path": self.path,
            "status": self.status.value,
            "status_reason": self.status_reason,
            "format": self.format,
            "scanner": self.scanner,
            "size": self.size,
            "bytes_scanned": self.bytes_scanned,
            "duration": self.duration,
            "sha256": self.sha256,
            "digests": self.digests,
            "digest_source": self.digest_source,
            "remote": self.remote,
            "issues": [i.to_dict() for i in self.issues],
            "metadata": self.metadata,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> FileReport:
        """Raises KeyError, TypeError or ValueError on anything that is not a record."""
        if not isinstance(data, dict):
            raise TypeError("a file record is a JSON object")
        metadata = data.get("metadata") or {}
        issues = data.get("issues") or []
        if not isinstance(metadata, dict) or not isinstance(issues, list):
            raise TypeError("malformed file record")
        return cls(
            path=str(data["path"]),
            status=FileStatus(data["status"]),
            status_reason=_optional_str(data.get("status_reason")),
            format=_optional_str(data.get("format")),
            scanner=_optional_str(data.get("scanner")),
            size=None if data.get("size") is None else int(data["size"]),
            bytes_scanned=int(data.get("bytes_scanned") or 0),
            duration=float(data.get("duration") or 0.0),
            sha256=_optional_str(data.get("sha256")),
            digests=_digests(data.get("digests")),
            digest_source=_optional_str(data.get("digest_source")),
            remote=bool(data.get("remote")),
            issues=[Issue.from_dict(i) for i in issues],
            metadata=metadata,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "status": self.status._value_,
            "format": self.format,
            "scanner": self.scanner,
            "size": self.size,
            "bytes_scanned": self.bytes_scanned,
            "duration": self.duration,
            "issue_count": len(self.issues),
        }
        if self.status_reason:
            out["reason"] = self.status_reason
        if self.sha256:
            out["sha256"] = self.sha256
        if self.digests and (set(self.digests) != {"sha256"} or self.digest_source):
            out["hashes"] = dict(self.digests)
        if self.digest_source:
            out["hash_source"] = self.digest_source
        if self.metadata:
            out["metadata"] = self.metadata
        if self.cached:
            out["cached"] = True
        return out


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _digests(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


@dataclass
class ScanReport:
    targets: list[str] = field(default_factory=list)
    start_time: float = field(default_factory=time.time)
    end_time: float | None = None
    files: list[FileReport] = field(default_factory=list)
    #: Problems with a whole target (cannot list a bucket, bad credentials).
    target_errors: list[dict[str, str]] = field(default_factory=list)
    interrupted: str | None = None
    command_line: list[str] = field(default_factory=list)
    #: Lowest severity that fails the run: "warning" (default) or "critical" (`--fail-on`).
    fail_on: str = "warning"
    #: The tally while `settled`.
    _settled: Tally | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def duration(self) -> float:
        return (self.end_time or time.time()) - self.start_time

    @property
    def file_issues(self) -> list[Issue]:
        return [i for f in self.files for i in f.issues]

    @property
    def target_issues(self) -> list[Issue]:
        """A target that could not be read or listed, as a CRITICAL issue.

        Consumers that read only `issues` (the reference's API example, the GitLab recipe's
        grep for a critical severity) must never take a scan that saw nothing for a clean
        one. These issues are not findings about a file: they make the exit code 2, not 1.
        """
        return [
            Issue(
                f"Could not scan {_target_message(err)}",
                severity=IssueSeverity.CRITICAL,
                location=err.get("target"),
                details={"target": err.get("target"), "error": err.get("error")},
                why="Nothing in this target was scanned, so nothing about it is verified.",
                rule=SCAN_ERROR,
                timestamp=self.start_time,
            )
            for err in self.target_errors
        ]

    @property
    def issues(self) -> list[Issue]:
        return [*self.file_issues, *self.target_issues]

    @property
    def findings(self) -> list[Issue]:
        """WARNING and CRITICAL issues no policy accepted."""
        return [
            i for i in self.file_issues if i.severity in _FINDING_SEVERITIES and not i.suppressed
        ]

    @property
    def suppressed_issues(self) -> list[Issue]:
        return [i for i in self.file_issues if i.suppressed]

    @property
    def scanner_names(self) -> list[str]:
        return self.tally().scanner_names

    @property
    def bytes_scanned(self) -> int:
        return self.tally().bytes_scanned

    @property
    def files_scanned(self) -> int:
        return self.tally().files_scanned

    @property
    def incomplete_files(self) -> list[FileReport]:
        return [f for f in self.files if _incomplete(f.status)]

    @property
    def has_errors(self) -> bool:
        return self.tally().has_errors

    @property
    def failing_findings(self) -> list[Issue]:
        """The findings that fail the run under the `fail_on` policy."""
        if self.fail_on == FAIL_ON_CRITICAL:
            return [i for i in self.findings if i.severity is IssueSeverity.CRITICAL]
        return self.findings

    @property
    def exit_code(self) -> int:
        """1 for any failing finding (WARNING or CRITICAL; only CRITICAL with fail_on
        "critical"), else 2 for anything unfinished, else 0."""
        return self.tally().exit_code

    @contextmanager
    def settled(self) -> Iterator[None]:
        """While the report does not change (its reports are being written), one tally
        serves them all: the JSON or SARIF reporter, the CLI's last line and the exit code
        each counted a 50,000-file report again."""
        self._settled = self.tally()
        try:
            yield
        finally:
            self._settled = None

    def tally(self) -> Tally:
        """Every count the summaries show, in one pass over the files (a 50,000-file sweep's
        report is summarised by the JSON, SARIF and text reporters and the CLI's last line;
        a walk per property cost each of them a dozen passes). Computed afresh each time
        (suppressions and `fail_on` change a report after the scan), except while `settled`."""
        if self._settled is not None:
            return self._settled
        t = Tally()
        counts = t.severity_counts
        failing = (
            (IssueSeverity.CRITICAL,) if self.fail_on == FAIL_ON_CRITICAL else _FINDING_SEVERITIES
        )
        scanners: set[str] = set()
        issues = t.file_issues
        for f in self.files:
            status = f.status
            if f.scanner:
                scanners.add(f.scanner)
            t.bytes_scanned += f.bytes_scanned
            if status is _COMPLETE:
                t.complete += 1
            elif status is _INCONCLUSIVE:
                t.inconclusive += 1
            elif status is _ERROR:
                t.error += 1
            elif status is _SKIPPED:
                t.skipped += 1
            elif _incomplete(status):  # a plain string rather than a member
                t.unlisted += 1
            if f.cached:
                t.cached += 1
            if f.issues:
                issues.extend(f.issues)
        for issue in issues:
            if issue.suppressed:
                t.suppressed += 1
                continue
            counts[issue.severity.value] += 1
            if issue.severity in failing:
                t.failing = True
        t.files_scanned = len(self.files) - t.skipped
        t.scanner_names = sorted(scanners)
        t.has_errors = bool(
            t.inconclusive or t.error or t.unlisted or self.target_errors or self.interrupted
        )
        if t.failing:
            t.exit_code = EXIT_FINDINGS
        elif t.has_errors:
            t.exit_code = EXIT_INCOMPLETE
        return t

    def count_by_severity(self) -> dict[str, int]:
        """Findings in files by severity; suppressed ones and target errors are counted apart
        (a target that could not be read is an error, not a critical finding, even though
        `target_issues` shows it as one to readers of `issues` alone)."""
        return self.tally().severity_counts

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape; issues carry a `fingerprint` once `fingerprints.assign_fingerprints`
        ran (the JSON reporter and `scan_model_directory_or_file` run it)."""
        t = self.tally()
        return {
            "scanner_names": t.scanner_names,
            "start_time": self.start_time,
            "bytes_scanned": t.bytes_scanned,
            "issues": [i.to_dict() for i in t.file_issues]
            + [i.to_dict() for i in self.target_issues],
            "has_errors": t.has_errors,
            "files_scanned": t.files_scanned,
            "duration": self.duration,
            "assets": [
                {"path": f.path, "type": f.format or "unknown"}
                for f in self.files
                if f.status is not _SKIPPED
            ],
            "files": [f.to_dict() for f in self.files],
            "target_errors": self.target_errors,
            "summary": {
                "exit_code": t.exit_code,
                "severity_counts": t.severity_counts,
                "files_complete": t.complete,
                "files_inconclusive": t.inconclusive,
                "files_error": t.error,
                "files_skipped": t.skipped,
                "target_errors": len(self.target_errors),
                "suppressed": t.suppressed,
                "interrupted": self.interrupted,
            },
            "version": __version__,
        }


class Tally:
    """What `ScanReport.tally` counts; plain attributes, read by the reporters."""

    __slots__ = (
        "bytes_scanned",
        "cached",
        "complete",
        "error",
        "exit_code",
        "failing",
        "file_issues",
        "files_scanned",
        "has_errors",
        "inconclusive",
        "scanner_names",
        "severity_counts",
        "skipped",
        "suppressed",
        "unlisted",
    )

    def __init__(self) -> None:
        self.bytes_scanned = self.cached = self.complete = self.error = 0
        self.inconclusive = self.skipped = self.suppressed = self.files_scanned = 0
        #: files whose status is an unfinished status's plain string, not the member
        self.unlisted = 0
        self.exit_code = EXIT_CLEAN
        self.failing = self.has_errors = False
        self.file_issues: list[Issue] = []
        self.scanner_names: list[str] = []
        self.severity_counts: dict[str, int] = {s.value: 0 for s in IssueSeverity}


def _incomplete(status: FileStatus) -> bool:
    return (
        status is _ERROR
        or status is _INCONCLUSIVE
        or (type(status) is not FileStatus and status in (_ERROR, _INCONCLUSIVE))
    )
