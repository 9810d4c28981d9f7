"""The vocabulary every layer shares: severities, issues, per-file results and statuses.

Kept free of heavy imports because it is loaded by every worker process and by the CLI.
A `ScanResult` crosses the process boundary, so it holds only plain data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class IssueSeverity(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __str__(self) -> str:
        return self.value


_RANK = {
    IssueSeverity.DEBUG: 0,
    IssueSeverity.INFO: 1,
    IssueSeverity.WARNING: 2,
    IssueSeverity.CRITICAL: 3,
}


class FileStatus(StrEnum):
    """Whether a file's verdict can be trusted.

    Anything but COMPLETE means the scanner could not see everything a loader would see,
    so the file must never be reported clean.
    """

    COMPLETE = "complete"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


def format_location(path: str, member: str | None = None, pos: int | None = None) -> str:
    """`file (pos N)` or `archive:member (pos N)`, the form every reporter expects."""
    loc = f"{path}:{member}" if member else path
    return f"{loc} (pos {pos})" if pos is not None else loc


@dataclass
class Issue:
    message: str
    severity: IssueSeverity = IssueSeverity.WARNING
    location: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    why: str | None = None
    rule: str | None = None
    timestamp: float = field(default_factory=time.time)
    #: Set when a policy accepted this finding (`kind`: "config" or "baseline", `reason`,
    #: `source`): it stays in the report but never counts for the exit code.
    suppression: dict[str, str] | None = None
    #: Stable identity across runs (rule, file, member, normalised message and details, and
    #: occurrence), set when a report is finished; baselines match on it.
    fingerprint: str | None = None

    @property
    def suppressed(self) -> bool:
        return self.suppression is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "message": self.message,
            "severity": self.severity.value,
            "location": self.location,
            "details": self.details,
            "timestamp": self.timestamp,
        }
        if self.why:
            out["why"] = self.why
        if self.rule:
            out["rule"] = self.rule
        if self.fingerprint:
            out["fingerprint"] = self.fingerprint
        if self.suppression is not None:
            out["suppressed"] = dict(self.suppression)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Issue:
        return cls(
            message=data["message"],
            severity=IssueSeverity(data.get("severity", "warning")),
            location=data.get("location"),
            details=dict(data.get("details") or {}),
            why=data.get("why"),
            rule=data.get("rule"),
            timestamp=float(data.get("timestamp", time.time())),
            suppression=dict(data["suppressed"]) if data.get("suppressed") else None,
            fingerprint=data.get("fingerprint"),
        )


#: Sees every issue a scanner adds, as it is added; returns False to drop it (a cap).
IssueSink = Callable[["Issue"], bool]
_sink: ContextVar[IssueSink | None] = ContextVar("modelaudit_issue_sink", default=None)


class observing:
    """Route every `ScanResult.add_issue` in this context through `sink` first.

    The engine uses it to stream findings out of a worker as they are made (so a file killed
    on a limit keeps them) and to cap how many findings one file can produce. A class rather
    than a generator: it is entered twice per file, and a sweep of small files feels it.
    """

    __slots__ = ("sink", "token")

    def __init__(self, sink: IssueSink) -> None:
        self.sink = sink

    def __enter__(self) -> None:
        self.token = _sink.set(self.sink)

    def __exit__(self, *exc: object) -> None:
        _sink.reset(self.token)


def current_sink() -> IssueSink | None:
    return _sink.get()


#: What a result says about its own file: a merged member's values describe the member.
_OWN_METADATA = frozenset({"format", "format_details"})


@dataclass
class ScanResult:
    """What one scanner found in one file.

    Scanners add issues and, when they could not see the whole file, downgrade the status;
    the engine adds the file's identity and merges results into the report.
    """

    scanner_name: str = "unknown"
    issues: list[Issue] = field(default_factory=list)
    bytes_scanned: int = 0
    status: FileStatus = FileStatus.COMPLETE
    status_reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    start_time: float = field(default_factory=time.time)
    end_time: float | None = None

    @property
    def success(self) -> bool:
        return self.status is FileStatus.COMPLETE

    @property
    def has_errors(self) -> bool:
        return self.status in (FileStatus.ERROR, FileStatus.INCONCLUSIVE)

    @property
    def duration(self) -> float:
        return (self.end_time or time.time()) - self.start_time

    def add_issue(
        self,
        message: str,
        severity: IssueSeverity = IssueSeverity.WARNING,
        location: str | None = None,
        details: dict[str, Any] | None = None,
        why: str | None = None,
        rule: str | None = None,
    ) -> Issue:
        issue = Issue(
            message=message,
            severity=IssueSeverity(severity),
            location=location,
            details=dict(details or {}),
            why=why,
            rule=rule,
        )
        sink = _sink.get()
        if sink is not None and not sink(issue):
            return issue
        self.issues.append(issue)
        return issue

    def mark_inconclusive(self, reason: str) -> None:
        """The scan stopped short (timeout, truncation, size, unsupported part)."""
        if self.status is FileStatus.COMPLETE:
            self.status = FileStatus.INCONCLUSIVE
            self.status_reason = reason
        elif self.status_reason is None:
            self.status_reason = reason

    def mark_error(self, reason: str) -> None:
        """The scanner itself failed; an error outranks inconclusive."""
        self.status = FileStatus.ERROR
        self.status_reason = reason

    def finish(self, success: bool = True) -> None:
        self.end_time = time.time()
        if not success and self.status is FileStatus.COMPLETE:
            self.mark_error("scanner reported failure")

    def merge(self, other: ScanResult) -> None:
        """Fold a nested result (an archive member, an embedded pickle) into this one."""
        self.issues.extend(other.issues)
        self.bytes_scanned += other.bytes_scanned
        if other.status is FileStatus.ERROR:
            self.mark_error(other.status_reason or "nested scan failed")
        elif other.status is FileStatus.INCONCLUSIVE:
            self.mark_inconclusive(other.status_reason or "nested scan inconclusive")
        for key, value in other.metadata.items():
            if key not in _OWN_METADATA:
                self.metadata.setdefault(key, value)

    @property
    def max_severity(self) -> IssueSeverity | None:
        return max((i.severity for i in self.issues), key=lambda s: s.rank, default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scanner": self.scanner_name,
            "status": self.status.value,
            "status_reason": self.status_reason,
            "bytes_scanned": self.bytes_scanned,
            "issues": [i.to_dict() for i in self.issues],
            "metadata": self.metadata,
            "start_time": self.start_time,
            "end_time": self.end_time,
        }
