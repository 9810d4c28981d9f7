"""Findings made before a limit survive it; temp folders never outlive their worker; a file
cannot flood the report (issue 11: per-file budgets, streaming, temp ownership, caps)."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import pytest

import modelaudit
from modelaudit import rules
from modelaudit.config import ScanConfig
from modelaudit.core import scan_report
from modelaudit.findings import FileStatus, IssueSeverity
from tests.hardening._hardening_util import left_behind, write_hostile

CLI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_hostile_cli.py")


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def _planted(report: modelaudit.ScanReport) -> list[str]:
    return [i.message for i in report.issues if i.rule == "TEST-PLANTED"]


@pytest.mark.parametrize(
    ("command", "options", "status", "reason"),
    [
        ("critical-then-kill", {}, FileStatus.ERROR, "SIGKILL"),
        ("critical-then-segfault", {}, FileStatus.ERROR, "SIGSEGV"),
        ("critical-then-sleep", {"file_timeout": 2}, FileStatus.INCONCLUSIVE, "timeout"),
        ("critical-then-spin", {"worker_cpu_limit": 1}, FileStatus.INCONCLUSIVE, "CPU"),
        (
            "critical-then-oom",
            {"worker_memory_limit": 512 * 1024**2},
            FileStatus.ERROR,
            "out of memory",
        ),
        ("critical-then-exit", {}, FileStatus.ERROR, "SystemExit"),
    ],
)
def test_a_critical_found_before_the_scan_dies_is_kept(
    tmp_path: Path, hostile: type, command: str, options: dict, status: FileStatus, reason: str
) -> None:
    write_hostile(str(tmp_path), "a.hostile", command, "3600")
    write_hostile(str(tmp_path), "b.hostile", "clean")
    report = scan_report(str(tmp_path), jobs=1, timeout=120, **options)
    bad, clean = report.files
    assert bad.status is status, bad
    assert reason in (bad.status_reason or ""), bad.status_reason
    assert _planted(report) == ["Planted critical finding"]
    assert [i.severity for i in bad.issues if i.rule == "TEST-PLANTED"] == [IssueSeverity.CRITICAL]
    assert clean.status is FileStatus.COMPLETE
    assert report.exit_code == 1
    assert left_behind() == set()


def test_the_pickle_engine_streams_before_a_hang(tmp_path: Path, hostile: type) -> None:
    """A real malicious pickle judged by the real engine, then the worker hangs and is
    killed on the file's deadline: the CRITICAL it had found is in the report."""
    payload = pickle.dumps(_Evil(), protocol=2).hex()
    write_hostile(str(tmp_path), "p.hostile", "pickle-then-sleep", payload)
    report = scan_report(str(tmp_path), jobs=1, file_timeout=2, timeout=120)
    (entry,) = report.files
    assert entry.status is FileStatus.INCONCLUSIVE
    critical = [i for i in entry.issues if i.severity is IssueSeverity.CRITICAL]
    assert any("system" in i.message for i in critical), entry.issues
    assert all(i.details.get("found_before_scan_stopped") for i in critical)


def test_the_run_deadline_keeps_findings_of_files_in_flight(tmp_path: Path, hostile: type) -> None:
    write_hostile(str(tmp_path), "a.hostile", "critical-then-sleep", "3600")
    report = scan_report(str(tmp_path), jobs=1, timeout=3)
    (entry,) = report.files
    assert entry.status is FileStatus.INCONCLUSIVE
    assert "run deadline" in (entry.status_reason or "")
    assert _planted(report) == ["Planted critical finding"]


def test_out_of_memory_in_process_keeps_findings(tmp_path: Path) -> None:
    """dispatch keeps what a scanner found before it ran out of memory (no worker needed)."""
    from modelaudit.engine.dispatch import scan_path
    from modelaudit.scanners.base import BaseScanner, ScanResult

    class Exhausted(BaseScanner):
        name = "exhausted"
        supported_extensions = [".exhausted"]

        def scan(self, path: str) -> ScanResult:
            result = self._create_result()
            result.add_issue("found first", severity=IssueSeverity.CRITICAL)
            raise MemoryError

    from modelaudit.engine import dispatch

    target = tmp_path / "x.exhausted"
    target.write_bytes(b"x")
    dispatch.set_registry([Exhausted])
    try:
        result = scan_path(str(target), {})
    finally:
        dispatch.set_registry(None)
    assert result.status is FileStatus.ERROR
    assert [i.message for i in result.issues if i.severity is IssueSeverity.CRITICAL] == [
        "found first"
    ]


def test_a_sweep_with_bombs_reports_every_malicious_file(tmp_path: Path, hostile: type) -> None:
    """Two files that never finish do not hide the ten malicious pickles beside them."""
    for i in range(2):
        write_hostile(str(tmp_path), f"a-bomb{i}.hostile", "sleep", "3600")
    for i in range(10):
        (tmp_path / f"m-evil{i}.pkl").write_bytes(pickle.dumps(_Evil(), protocol=2))
    for i in range(30):
        (tmp_path / f"z-clean{i}.pkl").write_bytes(pickle.dumps({"i": i}))
    report = scan_report(str(tmp_path), jobs=2, file_timeout=3, timeout=120)
    names = {Path(f.path).name: f for f in report.files}
    flagged = {name for name, f in names.items() if f.issues and "evil" in name}
    assert flagged == {f"m-evil{i}.pkl" for i in range(10)}
    bombs = [f for name, f in names.items() if "bomb" in name]
    assert [f.status for f in bombs] == [FileStatus.INCONCLUSIVE] * 2
    assert not report.interrupted


def test_default_file_deadline_is_independent_of_the_run_deadline() -> None:
    config = ScanConfig()
    assert config.timeout == 300
    assert config.file_deadline(1000) <= 20
    assert config.file_deadline(10 * 1024**3) > config.file_deadline(1024**3) > 20
    assert ScanConfig(timeout=5).file_deadline(1000) == 5
    assert ScanConfig(file_timeout=7).file_deadline(10**12) == 7


def test_the_parent_removes_worker_temp_folders(
    tmp_path: Path, hostile: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    folder = tmp_path / "in"
    folder.mkdir()
    marker = tmp_path / "written"
    write_hostile(str(folder), "a.hostile", "tmp-then-sleep", str(marker))
    write_hostile(str(folder), "b.hostile", "report-process")

    async def main() -> modelaudit.ScanReport:
        async with modelaudit.Scanner(jobs=1) as scanner, anyio.create_task_group() as tg:
            result: list[modelaudit.ScanReport] = []

            async def run() -> None:
                result.append(await scanner.scan(str(folder), file_timeout=3))

            tg.start_soon(run)
            while not marker.exists():
                await anyio.sleep(0.02)
            # The worker wrote into its own folder under the pool's root, never elsewhere
            # (beside it: its progress record and journal, which the parent made).
            control = (".progress", ".journal")
            written = [p for p in root.rglob("*") if p.is_file() and p.suffix not in control]
            assert len(written) == 1 and written[0].stat().st_size == 1 << 20
            assert written[0].parent.parent.parent == root
        return result[0]

    report = anyio.run(main)
    timed_out, probe = report.files
    assert timed_out.status is FileStatus.INCONCLUSIVE
    worker_tmp = probe.issues[0].details["tmp"]
    assert worker_tmp.startswith(str(root)) and worker_tmp != str(root)
    assert list(root.iterdir()) == []


def test_ctrl_c_removes_worker_temp_folders(tmp_path: Path) -> None:
    root = tmp_path / "tmp"
    root.mkdir()
    folder = tmp_path / "in"
    folder.mkdir()
    marker = tmp_path / "written"
    write_hostile(str(folder), "a.hostile", "tmp-then-sleep", str(marker))
    proc = subprocess.Popen(
        [sys.executable, CLI, "scan", str(folder), "-f", "json", "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(root)},
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert any(p.is_file() for p in root.rglob("*"))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err.decode()
    assert json.loads(out)["files"][0]["status"] == "inconclusive"
    assert list(root.iterdir()) == []


def test_findings_are_capped_per_rule_with_a_summary(tmp_path: Path, hostile: type) -> None:
    write_hostile(str(tmp_path), "many.hostile", "many", "5000")
    report = scan_report(str(tmp_path), jobs=1, timeout=120)
    issues = report.files[0].issues
    kept = [i for i in issues if i.rule == "TEST-MANY"]
    (summary,) = [i for i in issues if i.rule == rules.FINDINGS_TRUNCATED]
    assert len(kept) == 100
    assert [i.message for i in kept[:2]] == ["finding 0", "finding 1"]
    assert summary.details == {"rule": "TEST-MANY", "not_shown": 4900, "limit": 100}
    assert summary.severity is IssueSeverity.WARNING


def test_a_flood_is_dropped_at_the_source(tmp_path: Path, hostile: type) -> None:
    """300,000 findings: the worker keeps a bounded number; the count is still exact."""
    write_hostile(str(tmp_path), "flood.hostile", "many", "300000")
    report = scan_report(str(tmp_path), jobs=1, timeout=300, max_findings_per_rule=10)
    issues = report.files[0].issues
    assert len(issues) == 11
    assert issues[-1].details["not_shown"] == 300000 - 10


def test_the_cap_can_be_lifted(tmp_path: Path, hostile: type) -> None:
    write_hostile(str(tmp_path), "many.hostile", "many", "250")
    report = scan_report(str(tmp_path), jobs=1, timeout=120, max_findings_per_rule=0)
    assert len(report.files[0].issues) == 250
