"""How a file's scan ended, written into its `FileReport`.

Shared by the runner (`ScanCall`) and the one-file run (`direct.py`), so that a file reads
the same in the report whichever path scanned it. Nothing here imports the async stack.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import rules
from ..findings import FileStatus, Issue, IssueSeverity, ScanResult, format_location
from ..formats import extension_format
from .capture import cap_issues, rescue

if TYPE_CHECKING:
    from ..config import ScanConfig
    from ..fetchers.base import ObjectRef
    from ..report import FileReport, ScanReport


@dataclass
class Outcome:
    """How a file's scan ended: "done" (with its result), "timeout" or "crash"."""

    kind: str
    result: ScanResult | None = None
    reason: str = ""


def info(fr: FileReport, message: str, rule: str) -> Issue:
    return Issue(
        message=message,
        severity=IssueSeverity.INFO,
        location=format_location(fr.path),
        rule=rule,
    )


def blacklisted(names: Sequence[str], shown: str, config: ScanConfig) -> list[Issue]:
    """--blacklist on names only the fetcher knows (a Hub repository id); the worker matches
    the file's own name and the model names its scanner found, in the same words."""
    issues = []
    for pattern in config.blacklist_patterns:
        name = next((n for n in names if pattern and pattern.lower() in n.lower()), None)
        if name is not None:
            issues.append(
                Issue(
                    f"Blacklisted model name matches pattern '{pattern}': {name}",
                    IssueSeverity.CRITICAL,
                    location=shown,
                    details={"pattern": pattern, "name": name},
                    why="Your --blacklist policy forbids models matching this pattern.",
                    rule=rules.BLACKLISTED,
                )
            )
    return issues


def apply_outcome(
    fr: FileReport,
    obj: ObjectRef,
    outcome: Outcome,
    streamed: Iterable[Issue],
    deadline: float,
    config: ScanConfig,
) -> None:
    """A file's result, or its timeout or crash with the findings its worker streamed."""
    if outcome.kind == "done" and outcome.result is not None:
        fill(fr, obj, outcome.result, config)
        return
    cap = int(config.max_findings_per_rule or 0)
    fr.format = extension_format(obj.uri)
    fr.issues.extend(rescue(streamed, cap, fr.path))
    if outcome.kind == "timeout":
        mark_timeout(fr, deadline, run_deadline=False)
        return
    fr.status = FileStatus.ERROR
    if outcome.kind == "crash":
        fr.status_reason = f"scanner process crashed ({outcome.reason or 'ended'})"
    else:
        fr.status_reason = outcome.reason
    fr.issues.append(info(fr, fr.status_reason, rules.SCAN_ERROR))


def fill(fr: FileReport, obj: ObjectRef, result: ScanResult, config: ScanConfig) -> None:
    scanner = result.scanner_name
    fr.scanner = scanner if scanner != "none" else None
    metadata = result.metadata
    fr.format = metadata.pop("format", None) or extension_format(obj.uri) or fr.scanner
    fr.status = result.status
    fr.status_reason = result.status_reason
    fr.bytes_scanned = result.bytes_scanned
    sha256 = metadata.pop("sha256", None)
    known = obj.metadata
    if known:
        digests: dict[str, str] = dict(known.get("digests") or {})
        if sha256:
            digests.setdefault("sha256", sha256)
        fr.sha256 = sha256 or digests.get("sha256")
        fr.digests = digests
        fr.digest_source = known.get("digest_source") if obj.local_path is None else None
    else:
        # Nothing published by a fetcher: the digest computed here, if any, is all.
        fr.sha256 = sha256 or None
        fr.digests = {"sha256": sha256} if sha256 else {}
        fr.digest_source = None
    fr.metadata = metadata
    issues = result.issues
    if issues:
        cap = int(config.max_findings_per_rule or 0)
        fr.issues.extend(cap_issues(issues, cap, fr.path) if cap else issues)
    if config.blacklist_patterns and known:
        fr.issues.extend(blacklisted(known.get("model_names") or (), fr.path, config))
    if result.end_time is not None:
        fr.duration = max(0.0, result.end_time - result.start_time)


def mark_timeout(fr: FileReport, seconds: float, run_deadline: bool) -> None:
    fr.status = FileStatus.INCONCLUSIVE
    fr.status_reason = f"Scan timeout after {seconds:g} seconds"
    if run_deadline:
        fr.status_reason += " (run deadline reached)"
    fr.issues.append(info(fr, fr.status_reason, rules.SCAN_TIMEOUT))


def mark_stopped(fr: FileReport, started: bool, stop_reason: str | None, timeout: float) -> None:
    """The run ended (its deadline, or `stop_reason`: a signal) before this file's scan
    finished."""
    if stop_reason is None:
        mark_timeout(fr, timeout, run_deadline=True)
    else:
        fr.status = FileStatus.INCONCLUSIVE
        fr.status_reason = stop_reason
        fr.issues.append(info(fr, fr.status_reason, rules.SCAN_TIMEOUT))
    if not started:
        fr.status_reason = f"{fr.status_reason}; not started"
        fr.issues[-1].message = fr.status_reason


def run_timeout_reason(timeout: float) -> str:
    return f"Scan timeout after {timeout:g} seconds (whole run)"


def finish_report(report: ScanReport) -> None:
    """Verdicts across files, files in path order, the end time, and secrets scrubbed: a
    call's last step."""
    from .. import gcquiet
    from ..redact import redact_report
    from .across_files import vouch_shipped_classes

    few = len(report.files) < _QUIET_FROM
    with contextlib.nullcontext() if few else gcquiet.quiet():
        vouch_shipped_classes(report)
        report.files.sort(key=_path)
        report.end_time = time.time()
        redact_report(report)


#: Reports of fewer files are finished without raising the collector's thresholds (a few
#: objects per file: nothing for a collection to walk again and again).
_QUIET_FROM = 100


def _path(fr: FileReport) -> str:
    return fr.path
