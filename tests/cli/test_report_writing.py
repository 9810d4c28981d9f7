"""Reports: destinations checked before the scan, written atomically with the usual modes."""

from __future__ import annotations

import os
import resource
import signal
import stat
from pathlib import Path

import pytest

from tests.cli._helper import EVIL_PICKLE, SAFE_PICKLE, json_report, run


@pytest.fixture
def models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    (root / "evil.pkl").write_bytes(EVIL_PICKLE)
    return root


@pytest.mark.parametrize("option", ["--output", "--sbom"])
def test_missing_folder_is_refused_before_the_scan(
    models: Path, tmp_path: Path, option: str
) -> None:
    dest = tmp_path / "no" / "such" / "r.json"
    proc = run(str(models), option, str(dest))
    assert proc.returncode == 2
    what = "report" if option == "--output" else "SBOM"
    assert proc.stderr.decode() == (
        f"modelaudit: error: cannot write {what} {dest}: folder {dest.parent} does not exist\n"
    )
    # Refused up front: no report, no summary, nothing scanned.
    assert proc.stdout == b""


@pytest.mark.parametrize("option", ["--output", "--sbom"])
def test_a_folder_is_not_a_destination(models: Path, tmp_path: Path, option: str) -> None:
    proc = run(str(models), option, str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == [
        f"modelaudit: error: cannot write {'report' if option == '--output' else 'SBOM'} "
        f"{tmp_path}: it is a folder"
    ]


def test_same_file_for_report_and_sbom(models: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "r.json")
    proc = run(str(models), "--output", out, "--sbom", out)
    assert proc.returncode == 2 and b"same file" in proc.stderr


def _set_umask(mask: int) -> None:
    os.umask(mask)


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))


def test_a_write_that_fails_after_the_scan_is_one_line_and_exit_2(
    models: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = run(
        str(models),
        "--format",
        "json",
        "--output",
        str(out / "r.json"),
        preexec_fn=_limit_file_size,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.decode().splitlines()
    assert lines[0] == f"modelaudit: error: cannot write report {out / 'r.json'}: File too large"
    # The verdict still reaches the log; no traceback; no half-written file left behind.
    assert lines[1].startswith("modelaudit: Scanned 1 file(s)")
    assert lines[1].endswith("-> issues found")
    assert len(lines) == 2
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_reports_follow_the_umask(models: Path, tmp_path: Path, umask: int, mode: int) -> None:
    report, bom = tmp_path / "r.sarif", tmp_path / "bom.json"
    proc = run(
        str(models),
        "--format",
        "sarif",
        "--output",
        str(report),
        "--sbom",
        str(bom),
        preexec_fn=lambda: _set_umask(umask),
    )
    assert proc.returncode == 1, proc.stderr
    assert stat.S_IMODE(report.stat().st_mode) == mode
    assert stat.S_IMODE(bom.stat().st_mode) == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bom.json", "models", "r.sarif"]


def test_a_replaced_report_keeps_its_mode(models: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    report.write_text("old")
    report.chmod(0o640)
    old_inode = report.stat().st_ino
    assert run(str(models), "--format", "json", "--output", str(report)).returncode == 1
    assert stat.S_IMODE(report.stat().st_mode) == 0o640
    assert report.stat().st_ino != old_inode  # renamed over, never written in place
    assert json_report_file(report)["files_scanned"] == 1


def test_dash_and_special_files_are_written_in_place(tmp_path: Path) -> None:
    (tmp_path / "ok.pkl").write_bytes(SAFE_PICKLE)
    dash = run(str(tmp_path), "--format", "json", "--output", "-")
    assert dash.returncode == 0 and json_report(dash)["files_scanned"] == 1
    assert dash.stderr == b""
    dev = run(str(tmp_path), "--format", "json", "--output", "/dev/stdout")
    assert dev.returncode == 0 and json_report(dev)["files_scanned"] == 1


def json_report_file(path: Path) -> dict[str, object]:
    import json

    doc: dict[str, object] = json.loads(path.read_bytes())
    return doc
