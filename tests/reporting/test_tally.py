"""`ScanReport.tally` counts in one pass what the summaries show (JSON, text, SARIF, the
exit code, and the count properties that read it): it must agree with the report's
list properties and with the counts written out here over its files and issues."""

from __future__ import annotations

import random

import pytest

from modelaudit.findings import FileStatus, Issue, IssueSeverity
from modelaudit.report import EXIT_CLEAN, EXIT_FINDINGS, EXIT_INCOMPLETE, FileReport, ScanReport


def _random_report(rng: random.Random) -> ScanReport:
    files = []
    for n in range(rng.randint(0, 12)):
        fr = FileReport(
            path=f"/m/{n}",
            status=rng.choice(list(FileStatus)),
            scanner=rng.choice([None, "pickle", "numpy"]),
            bytes_scanned=rng.randint(0, 9),
            cached=rng.random() < 0.2,
        )
        for _ in range(rng.randint(0, 3)):
            issue = Issue(f"m{n}", severity=rng.choice(list(IssueSeverity)))
            if rng.random() < 0.3:
                issue.suppression = {"reason": "accepted"}
            fr.issues.append(issue)
        files.append(fr)
    report = ScanReport(targets=["/m"], files=files)
    report.fail_on = rng.choice(["warning", "critical"])
    if rng.random() < 0.2:
        report.target_errors.append({"target": "/x", "error": "gone"})
    if rng.random() < 0.1:
        report.interrupted = "Interrupted by SIGINT"
    return report


def _by_walks(report: ScanReport) -> int:
    """The exit-code rule written out over the report's properties."""
    if report.failing_findings:
        return EXIT_FINDINGS
    if report.has_errors:
        return EXIT_INCOMPLETE
    return EXIT_CLEAN


@pytest.mark.parametrize("seed", range(300))
def test_tally_agrees_with_the_properties(seed: int) -> None:
    report = _random_report(random.Random(seed))
    t = report.tally()
    assert t.exit_code == report.exit_code == _by_walks(report)
    assert t.severity_counts == report.count_by_severity()
    assert t.files_scanned == report.files_scanned
    assert t.bytes_scanned == report.bytes_scanned
    assert t.scanner_names == report.scanner_names
    files = report.files
    issues = [i for f in files for i in f.issues]
    assert t.files_scanned == sum(1 for f in files if f.status is not FileStatus.SKIPPED)
    assert t.bytes_scanned == sum(f.bytes_scanned for f in files)
    assert t.scanner_names == sorted({f.scanner for f in files if f.scanner})
    assert t.severity_counts == {
        s.value: sum(1 for i in issues if i.severity is s and not i.suppressed)
        for s in IssueSeverity
    }
    assert t.has_errors == bool(
        report.incomplete_files or report.target_errors or report.interrupted
    )
    assert t.has_errors == report.has_errors
    assert t.suppressed == len(report.suppressed_issues)
    assert t.file_issues == report.file_issues
    assert t.inconclusive + t.error + t.unlisted == len(report.incomplete_files)
    assert t.skipped == sum(1 for f in report.files if f.status is FileStatus.SKIPPED)
    assert t.cached == sum(1 for f in report.files if f.cached)
    summary = report.to_dict()["summary"]
    assert summary["exit_code"] == t.exit_code
    assert summary["files_error"] == sum(1 for f in report.files if f.status is FileStatus.ERROR)


def test_a_settled_report_is_counted_once_and_afresh_after() -> None:
    """While its reports are written (`settled`) every reader gets the tally taken when it
    began (one pass over the files, not one per reporter); afterwards a change shows again
    (suppressions and `fail_on` change a report after the scan)."""
    report = ScanReport(targets=["/m"], files=[FileReport(path=f"/m/{n}") for n in range(3)])
    with report.settled():
        assert report.exit_code == EXIT_CLEAN
        report.files[1].status = FileStatus.ERROR
        assert report.tally() is report.tally()
        assert report.tally().error == 0 and report.exit_code == EXIT_CLEAN
    assert report.tally().error == 1
    assert report.exit_code == EXIT_INCOMPLETE
    assert report.tally() is not report.tally()
