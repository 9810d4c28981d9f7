"""Findings of one file as they are made: streamed out of the worker, and capped.

A worker may be killed at any moment (deadline, memory, a crash in a parser), so every
WARNING and CRITICAL leaves the worker the moment a scanner adds it; the parent keeps them if
the file never finishes. A file cannot flood the report either: past `max_findings_per_rule`
findings of one rule, the rest are counted and summarised in one finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..findings import Issue, IssueSeverity, ScanResult, format_location
from ..rules import FINDINGS_TRUNCATED

#: Default findings kept per rule per file (`max_findings_per_rule`).
DEFAULT_PER_RULE = 100
#: A scanner may make this many times the cap before its findings are dropped as they come:
#: nested scans add findings that their caller later discards, so the exact cap is applied
#: to the finished result, and this looser one only bounds memory.
_SLACK = 10

_STREAMED = frozenset({IssueSeverity.WARNING, IssueSeverity.CRITICAL})


def _key(issue: Issue) -> str:
    return issue.rule or f"(no rule) {issue.severity.value}"


def per_rule_cap(config: Mapping[str, Any]) -> int:
    value = config.get("max_findings_per_rule", DEFAULT_PER_RULE)
    return int(value) if value else 0


class FileCapture:
    """The issue sink of one top-level file (see `findings.observing`)."""

    def __init__(self, cap: int, stream: Callable[[Issue], None] | None = None) -> None:
        self.cap = cap
        self.hard_cap = cap * _SLACK if cap else 0
        self.stream = stream
        self.counts: dict[str, int] = {}
        self.dropped: dict[str, list[Any]] = {}
        #: Every WARNING and CRITICAL admitted, for a scan that ends in an exception.
        self.serious: list[Issue] = []

    def __call__(self, issue: Issue) -> bool:
        key = _key(issue)
        n = self.counts.get(key, 0) + 1
        self.counts[key] = n
        if self.hard_cap and n > self.hard_cap:
            entry = self.dropped.setdefault(key, [0, issue.severity])
            entry[0] += 1
            if issue.severity.rank > entry[1].rank:
                entry[1] = issue.severity
            return False
        if issue.severity in _STREAMED:
            self.serious.append(issue)
            if self.stream is not None:
                self.stream(issue)
        return True

    def salvage(self) -> ScanResult:
        """A result holding the findings made before the scan was cut short."""
        result = ScanResult(scanner_name="none")
        result.issues = dedupe(self.serious)
        self.serious = []
        return result

    def finish(self, result: ScanResult, display: str) -> None:
        """Apply the exact cap to the finished result, counting what the sink dropped."""
        if not self.cap or (not self.dropped and len(result.issues) <= self.cap):
            return  # nothing over the cap (a truncation summary is kept as it is either way)
        result.issues = cap_issues(result.issues, self.cap, display, self.dropped)


def cap_issues(
    issues: Iterable[Issue],
    cap: int,
    display: str,
    dropped: dict[str, list[Any]] | None = None,
) -> list[Issue]:
    """At most `cap` issues per rule, in order, plus one summary per rule that overflowed."""
    if not cap:
        return list(issues)
    kept: list[Issue] = []
    seen: dict[str, int] = {}
    over: dict[str, list[Any]] = {k: list(v) for k, v in (dropped or {}).items()}
    for issue in issues:
        if issue.rule == FINDINGS_TRUNCATED:
            if issue.details.get("rule") in over:
                over[issue.details["rule"]][0] += int(issue.details.get("not_shown", 0))
                continue
            kept.append(issue)
            continue
        key = _key(issue)
        n = seen.get(key, 0) + 1
        seen[key] = n
        if n <= cap:
            kept.append(issue)
            continue
        entry = over.setdefault(key, [0, issue.severity])
        entry[0] += 1
        if issue.severity.rank > entry[1].rank:
            entry[1] = issue.severity
    for key, (count, severity) in over.items():
        if not count:
            continue
        kept.append(
            Issue(
                message=f"{count} more findings of {key} not shown (at most {cap} per rule "
                "per file)",
                severity=severity
                if severity.rank >= IssueSeverity.INFO.rank
                else IssueSeverity.INFO,
                location=format_location(display),
                details={"rule": key, "not_shown": count, "limit": cap},
                why="A file that repeats one finding this often is either hostile or broken; "
                "the first findings show what it does.",
                rule=FINDINGS_TRUNCATED,
            )
        )
    return kept


def dedupe(issues: Iterable[Issue]) -> list[Issue]:
    seen: set[tuple[str | None, str, str | None]] = set()
    unique = []
    for issue in issues:
        key = (issue.rule, issue.message, issue.location)
        if key not in seen:
            seen.add(key)
            unique.append(issue)
    return unique


def rescue(streamed: Iterable[Issue], cap: int, display: str) -> list[Issue]:
    """The findings a worker streamed before it died: deduplicated, capped."""
    unique = dedupe(streamed)
    for issue in unique:
        issue.details.setdefault("found_before_scan_stopped", True)
    return cap_issues(unique, cap, display)
