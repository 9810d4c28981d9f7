"""The human report: findings grouped by file, then a one-line summary.

Colour only when asked for (the CLI decides from the terminal, NO_COLOR and FORCE_COLOR), so
the output is plain text in files and pipes. Everything that came from a scanned file or a
listing (paths, member and global names, messages that quote them) goes through
`printable`, so it cannot move the cursor, recolour, or start a line of its own.
"""

from __future__ import annotations

from typing import Any

from ..findings import FileStatus, Issue, IssueSeverity
from ..report import ScanReport
from .safe import printable

_COLORS = {
    IssueSeverity.CRITICAL: "\x1b[1;31m",
    IssueSeverity.WARNING: "\x1b[33m",
    IssueSeverity.INFO: "\x1b[36m",
    IssueSeverity.DEBUG: "\x1b[2m",
}
_DIM = "\x1b[2m"
_RESET = "\x1b[0m"
_VERDICTS = {0: "clean", 1: "issues found", 2: "incomplete"}


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color else text


def _issue_lines(issue: Issue, color: bool) -> list[str]:
    label = _paint(issue.severity.value.upper(), _COLORS[issue.severity], color)
    head = f"  {label}: {printable(issue.message)}"
    if issue.suppression is not None:
        note = f"(suppressed by {issue.suppression.get('kind', 'policy')}: "
        note += f"{printable(issue.suppression.get('reason', ''))})"
        head += " " + _paint(note, _DIM, color)
    lines = [head]
    if issue.location:
        lines.append(f"    at {printable(issue.location)}")
    if issue.why:
        lines.append(f"    why: {printable(issue.why)}")
    if issue.rule:
        lines.append(f"    rule: {printable(issue.rule)}")
    return lines


def summary_line(report: ScanReport) -> str:
    """`Scanned N file(s) ... -> verdict`, as the report ends and as the CLI logs it."""
    t = report.tally()
    counts = t.severity_counts
    summary = (
        f"Scanned {t.files_scanned} file(s), {t.bytes_scanned} bytes in "
        f"{report.duration:.2f}s: {counts['critical']} critical, {counts['warning']} warning, "
        f"{counts['info']} info"
    )
    incomplete = t.inconclusive + t.error + t.unlisted
    if incomplete:
        summary += f"; {incomplete} file(s) not fully scanned"
    if report.target_errors:
        summary += f"; {len(report.target_errors)} error(s): target or folder unreadable"
    if t.skipped:
        summary += f"; {t.skipped} skipped"
    if t.suppressed:
        summary += f"; {t.suppressed} suppressed"
    if t.cached:
        summary += f"; {t.cached} unchanged file(s) reported from the cache"
    code = t.exit_code
    verdict = _VERDICTS[code]
    if code == 0 and t.files_scanned == 0:
        verdict = "nothing scanned"
    return f"{summary} -> {verdict}"


def render(
    report: ScanReport,
    color: bool = False,
    verbose: bool = False,
    quiet: bool = False,
    **_: Any,
) -> bytes:
    """`verbose` adds DEBUG issues, skipped entries and suppressed findings; `quiet` keeps
    only WARNING and CRITICAL findings and problems, and drops the summary of a clean run."""
    lines: list[str] = []
    if verbose:
        min_rank = IssueSeverity.DEBUG.rank
    elif quiet:
        min_rank = IssueSeverity.WARNING.rank
    else:
        min_rank = IssueSeverity.INFO.rank
    skipped, complete = FileStatus.SKIPPED, FileStatus.COMPLETE
    for f in report.files:
        if not verbose and (f.status is skipped or (f.status is complete and not f.issues)):
            continue
        shown = [
            i for i in f.issues if i.severity.rank >= min_rank and (verbose or not i.suppressed)
        ]
        if not shown and f.status is complete and not verbose:
            continue
        head = printable(f.path)
        if f.format:
            head += f"  [{printable(f.format)}]"
        if f.status is not FileStatus.COMPLETE:
            head += f"  ({f.status.value}: {printable(f.status_reason or '')})"
        if f.cached:
            head += "  (cached)"
        lines.append(head)
        for issue in sorted(shown, key=lambda i: (i.suppressed, -i.severity.rank)):
            lines.extend(_issue_lines(issue, color))
        lines.append("")
    for err in report.target_errors:
        target, message = str(err.get("target", "")), str(err.get("error", ""))
        if not message.startswith(target):
            message = f"{target}: {message}"
        lines.append(f"ERROR: {printable(message)}")
    if report.interrupted:
        lines.append(f"INTERRUPTED: {printable(report.interrupted)}")
    if not (quiet and report.exit_code == 0):
        lines.append(summary_line(report))
    if not lines:
        return b""
    return ("\n".join(lines) + "\n").encode("utf-8")
