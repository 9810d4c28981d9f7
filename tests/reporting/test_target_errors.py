"""Errors are findings: a target that cannot be read shows up wherever issues are read."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelaudit.core import scan_model_directory_or_file

#: The reference's API example, verbatim but for the path.
REFERENCE_EXAMPLE = """
from modelaudit.core import scan_model_directory_or_file
results = scan_model_directory_or_file(PATH)
if results["issues"]:
    print(f"Found {len(results['issues'])} issues:")
    for issue in results["issues"]:
        print(f"- {issue['severity'].upper()}: {issue['message']}")
else:
    print("No issues found!")
"""


def test_reference_api_example_never_says_clean_for_a_missing_path(tmp_path: Path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(REFERENCE_EXAMPLE, {"PATH": str(tmp_path / "missing")})
    assert "No issues found!" not in out.getvalue()
    assert "CRITICAL: Could not scan" in out.getvalue()
    assert "no such file or directory" in out.getvalue()


def test_missing_target_is_a_critical_issue_but_exits_2(tmp_path: Path) -> None:
    report = scan_model_directory_or_file(str(tmp_path / "missing"))
    assert report["has_errors"] is True
    [issue] = report["issues"]
    assert issue["severity"] == "critical"
    assert issue["details"]["target"] == str(tmp_path / "missing")
    # counted as what it is, an error, not as a critical finding about a file
    assert report["summary"]["severity_counts"]["critical"] == 0
    assert report["summary"]["target_errors"] == 1
    assert report["summary"]["exit_code"] == 2


SCAN = (sys.executable, "-m", "modelaudit", "scan")


def test_every_report_counts_a_target_error_as_an_error(tmp_path: Path) -> None:
    """The text summary, the JSON summary and SARIF's properties say the same thing: one
    target error, and as many critical findings as the files have (none for the target)."""
    (tmp_path / "evil.pkl").write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")

    def scan(fmt: str) -> str:
        done = subprocess.run(
            [*SCAN, str(tmp_path), str(tmp_path / "missing"), "--format", fmt, "--no-progress"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 1, done.stderr
        return done.stdout

    report = json.loads(scan("json"))
    in_files = sum(
        1 for i in report["issues"] if i["severity"] == "critical" and i["rule"] != "MA0004"
    )
    assert in_files >= 1
    assert report["summary"]["severity_counts"]["critical"] == in_files
    assert report["summary"]["target_errors"] == 1
    sarif = json.loads(scan("sarif"))["runs"][0]["properties"]
    assert (sarif["severityCounts"]["critical"], sarif["targetErrors"]) == (in_files, 1)
    text = scan("text")
    summary = text.strip().splitlines()[-1]
    assert f": {in_files} critical, " in summary, summary
    assert "; 1 error(s): target or folder unreadable" in summary, summary
    assert "ERROR: " in text


def test_readable_targets_keep_their_own_issues_beside_the_error(tmp_path: Path) -> None:
    (tmp_path / "w.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    report = scan_model_directory_or_file([str(tmp_path), str(tmp_path / "missing")])
    assert report["files_scanned"] == 1
    assert [i["details"]["target"] for i in report["issues"]] == [str(tmp_path / "missing")]


@pytest.mark.parametrize("exists", [False, True])
def test_gitlab_recipe_fails_when_the_folder_does_not_exist(tmp_path: Path, exists: bool) -> None:
    """docs/ci.md's GitLab script lines, run as GitLab runs them (sh -e)."""
    docs = Path(__file__).resolve().parents[2] / "docs" / "ci.md"
    recipe = docs.read_text(encoding="utf-8").split("# .gitlab-ci.yml", 1)[1]
    lines = [
        line.strip()[2:]
        for line in recipe.split("artifacts:", 1)[0].splitlines()
        if line.strip().startswith("- ") and "pip install" not in line
    ]
    assert lines[0].startswith("modelaudit scan models/"), lines
    if exists:
        (tmp_path / "models").mkdir()
        (tmp_path / "models" / "w.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    bindir = Path(sys.executable).parent
    done = subprocess.run(
        ["sh", "-ec", "\n".join(lines)],
        cwd=tmp_path,
        env={"PATH": f"{bindir}:/usr/bin:/bin", **_pythonpath()},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == (0 if exists else 1), done.stdout + done.stderr
    report = json.loads((tmp_path / "scan-results.json").read_text())
    assert report["has_errors"] is not exists


def _pythonpath() -> dict[str, str]:
    import os

    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}


def test_the_json_summary_counts_every_status_as_the_properties_do() -> None:
    """`to_dict` counts statuses in one pass; it must agree with the report's properties
    (which also take a status set as a plain string by a third-party caller)."""
    from modelaudit.findings import FileStatus
    from modelaudit.report import FileReport, ScanReport

    def report(*statuses: object) -> ScanReport:
        files = []
        for n, status in enumerate(statuses):
            fr = FileReport(f"f{n}", scanner="pickle" if n % 2 else None, bytes_scanned=n)
            fr.status = status  # type: ignore[assignment]
            files.append(fr)
        return ScanReport(files=files)

    cases = [
        report(FileStatus.COMPLETE, FileStatus.SKIPPED),
        report(FileStatus.COMPLETE, FileStatus.INCONCLUSIVE, FileStatus.ERROR),
        report(FileStatus.SKIPPED, FileStatus.ERROR),
        report(),
    ]
    for scan in cases:
        doc = scan.to_dict()
        assert doc["has_errors"] is scan.has_errors
        assert doc["files_scanned"] == scan.files_scanned
        assert doc["bytes_scanned"] == scan.bytes_scanned
        assert doc["scanner_names"] == scan.scanner_names
        assert doc["summary"]["exit_code"] == scan.exit_code
        assert [a["path"] for a in doc["assets"]] == [
            f.path for f in scan.files if f.status is not FileStatus.SKIPPED
        ]
    assert [c.to_dict()["has_errors"] for c in cases] == [False, True, True, False]
    summary = cases[1].to_dict()["summary"]
    assert (summary["files_complete"], summary["files_inconclusive"]) == (1, 1)
    assert (summary["files_error"], summary["files_skipped"]) == (1, 0)
    plain = report(FileStatus.COMPLETE, "inconclusive")
    assert plain.has_errors and len(plain.incomplete_files) == 1 and plain.exit_code == 2
