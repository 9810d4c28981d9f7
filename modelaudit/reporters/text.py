"""The human report: findings grouped by file, then a one-line summary.

Colour only when asked for (the CLI decides from the terminal and NO_COLOR), so the output is
plain text in files and pipes.
"""

from __future__ import annotations

from typing import Any

from ..findings import FileStatus, IssueSeverity
from ..report import ScanReport

_COLORS = {
    IssueSeverity.CRITICAL: "\x1b[1;31m",
    IssueSeverity.WARNING: "\x1b[33m",
    IssueSeverity.INFO: "\x1b[36m",
    IssueSeverity.DEBUG: "\x1b[2m",
}
_RESET = "\x1b[0m"


def _paint(text: str, severity: IssueSeverity, color: bool) -> str:
    return f"{_COLORS[severity]}{text}{_RESET}" if color else text


def render(report: ScanReport, color: bool = False, verbose: bool = False, **_: Any) -> bytes:
    lines: list[str] = []
    min_rank = IssueSeverity.DEBUG.rank if verbose else IssueSeverity.INFO.rank
    for f in report.files:
        shown = [i for i in f.issues if i.severity.rank >= min_rank]
        if f.status is FileStatus.SKIPPED and not verbose:
            continue
        if not shown and f.status is FileStatus.COMPLETE and not verbose:
            continue
        head = f.path
        if f.format:
            head += f"  [{f.format}]"
        if f.status is not FileStatus.COMPLETE:
            head += f"  ({f.status.value}: {f.status_reason})"
        lines.append(head)
        for issue in sorted(shown, key=lambda i: -i.severity.rank):
            label = _paint(issue.severity.value.upper(), issue.severity, color)
            lines.append(f"  {label}: {issue.message}")
            if issue.location:
                lines.append(f"    at {issue.location}")
            if issue.why:
                lines.append(f"    why: {issue.why}")
            if issue.rule:
                lines.append(f"    rule: {issue.rule}")
        lines.append("")
    for err in report.target_errors:
        message = err["error"]
        if not message.startswith(err["target"]):
            message = f"{err['target']}: {message}"
        lines.append(f"ERROR: {message}")
    if report.interrupted:
        lines.append(f"INTERRUPTED: {report.interrupted}")
    counts = report.count_by_severity()
    incomplete = len(report.incomplete_files)
    summary = (
        f"Scanned {report.files_scanned} file(s), {report.bytes_scanned} bytes in "
        f"{report.duration:.2f}s: {counts['critical']} critical, {counts['warning']} warning, "
        f"{counts['info']} info"
    )
    if incomplete:
        summary += f"; {incomplete} file(s) not fully scanned"
    verdict = {0: "clean", 1: "issues found", 2: "incomplete"}[report.exit_code]
    lines.append(f"{summary} -> {verdict}")
    return ("\n".join(lines) + "\n").encode()
