"""Every legitimate repository of the zoo scans quiet and complete.

The repositories under `repos/` were written by the real libraries' own save functions
(`build.py` rebuilds them; `manifest.json` records which library versions wrote them). A
scanner that CI users keep is silent on them: exit 0, no WARNING or CRITICAL, every file
complete. The one exception is a cloudpickled MLflow pyfunc, which really does carry code
that runs when loaded: it gets exactly one clear CRITICAL, not one per opcode. The same holds
under `--strict`, which vouches for text and data-only files and so has nothing more to say.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelaudit.core import scan_report
from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.report import ScanReport

ZOO = Path(__file__).resolve().parent
REPOS = ZOO / "repos"
MANIFEST = json.loads((ZOO / "manifest.json").read_text(encoding="utf-8"))
NAMES = sorted(MANIFEST["repositories"])

#: Repositories that must not be quiet: (file, severity, words the message must contain).
EXPECTED_FINDINGS: dict[str, list[tuple[str, IssueSeverity, str]]] = {
    "mlflow-pyfunc-cloudpickle": [
        (
            "model/python_model.pkl",
            IssueSeverity.CRITICAL,
            "carries Python code that runs when loaded",
        )
    ],
}
LOUD = (IssueSeverity.WARNING, IssueSeverity.CRITICAL)


@pytest.fixture(scope="module", params=[False, True], ids=["default", "strict"])
def zoo_report(request: pytest.FixtureRequest) -> ScanReport:
    """One scan of every repository (a directory walk each, as a user would run it), with
    and without --strict: strict judges unverifiable content more severely, but a clean
    repository's text, tokenizer and data files are not unverifiable."""
    return scan_report([str(REPOS / name) for name in NAMES], strict=request.param)


def repo_report(report: ScanReport, name: str) -> ScanReport:
    root = str(REPOS / name) + os.sep
    return ScanReport(
        targets=[root],
        files=[f for f in report.files if f.path.startswith(root)],
        target_errors=[e for e in report.target_errors if root in json.dumps(e)],
        fail_on=report.fail_on,
    )


def test_manifest_matches_the_committed_files() -> None:
    """The manifest is the zoo's inventory: a file added or lost by hand shows up here."""
    for name, entry in MANIFEST["repositories"].items():
        on_disk = sorted(
            p.relative_to(REPOS / name).as_posix() for p in (REPOS / name).rglob("*") if p.is_file()
        )
        assert on_disk == sorted(f["path"] for f in entry["files"]), name


@pytest.mark.parametrize("name", NAMES)
def test_zoo_repository_scans_quiet(zoo_report: ScanReport, name: str) -> None:
    sub = repo_report(zoo_report, name)
    root = REPOS / name
    assert sub.files, f"{name}: nothing was scanned"
    unfinished = {
        os.path.relpath(f.path, root): f"{f.status.value}: {f.status_reason}"
        for f in sub.files
        if f.status in (FileStatus.INCONCLUSIVE, FileStatus.ERROR)
    }
    assert unfinished == {}, f"{name}: files not fully scanned"
    assert sub.target_errors == []
    loud = sorted(
        (os.path.relpath(f.path, root), i.severity, i.message)
        for f in sub.files
        for i in f.issues
        if i.severity in LOUD
    )
    expected = EXPECTED_FINDINGS.get(name, [])
    assert len(loud) == len(expected), f"{name}: {loud}"
    for (path, severity, message), (want_path, want_severity, words) in zip(
        loud, sorted(expected), strict=True
    ):
        assert path == want_path, f"{name}: {loud}"
        assert severity is want_severity, f"{name}: {loud}"
        assert words in message, f"{name}: {loud}"
    assert sub.exit_code == (1 if expected else 0), f"{name}: {loud}"


@pytest.mark.parametrize("options", [[], ["--strict"]], ids=["default", "strict"])
def test_cli_exits_zero_on_the_quiet_zoo(options: list[str]) -> None:
    """The command CI users run, over every quiet repository at once."""
    quiet = [str(REPOS / n) for n in NAMES if n not in EXPECTED_FINDINGS]
    done = subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", *quiet, "--format", "json", *options],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(done.stdout)
    loud = [i for i in report["issues"] if i["severity"] in ("warning", "critical")]
    assert (done.returncode, loud) == (0, []), done.stderr[-2000:]
