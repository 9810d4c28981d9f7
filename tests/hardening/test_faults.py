"""A worker that crashes, is killed, or exhausts a resource fails only its own file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from modelaudit import rules
from modelaudit.core import scan_report
from modelaudit.engine import sandbox
from modelaudit.findings import FileStatus
from modelaudit.report import EXIT_INCOMPLETE
from tests.hardening._hardening_util import child_pids, left_behind, write_hostile


@pytest.fixture
def mixed_folder(tmp_path, hostile) -> str:
    for i in range(3):
        write_hostile(str(tmp_path), f"clean{i}.hostile", "clean")
    return str(tmp_path)


@pytest.mark.parametrize("command", ["segfault", "kill", "oom"])
def test_fault_fails_only_its_own_file(mixed_folder: str, command: str) -> None:
    write_hostile(mixed_folder, f"bad-{command}.hostile", command)
    report = scan_report(mixed_folder, jobs=1, timeout=120, worker_memory_limit=512 * 1024**2)
    by_name = {os.path.basename(f.path): f for f in report.files}
    assert len(by_name) == 4
    bad = by_name[f"bad-{command}.hostile"]
    assert bad.status is FileStatus.ERROR, bad
    for i in range(3):
        assert by_name[f"clean{i}.hostile"].status is FileStatus.COMPLETE
    assert report.exit_code == EXIT_INCOMPLETE
    assert left_behind() == set()


def test_out_of_memory_is_reported_as_such(mixed_folder: str) -> None:
    write_hostile(mixed_folder, "oom.hostile", "oom")
    report = scan_report(mixed_folder, jobs=1, timeout=120, worker_memory_limit=512 * 1024**2)
    bad = next(f for f in report.files if f.path.endswith("oom.hostile"))
    assert bad.status is FileStatus.ERROR
    assert "out of memory" in (bad.status_reason or "")


def test_cpu_limit_stops_a_spinning_scan(mixed_folder: str) -> None:
    """Only the CPU limit can stop the spin: the file's wall-clock deadline (15 s by default)
    is far away, since on a loaded machine a worker may take longer than that to be given
    its 1-2 s of CPU time, and the deadline would then stop the file first."""
    write_hostile(mixed_folder, "spin.hostile", "spin")
    report = scan_report(mixed_folder, jobs=1, timeout=900, file_timeout=600, worker_cpu_limit=1)
    bad = next(f for f in report.files if f.path.endswith("spin.hostile"))
    assert bad.status is FileStatus.INCONCLUSIVE, bad
    assert any(i.rule == rules.RESOURCE_LIMIT for i in bad.issues), bad
    assert sum(f.status is FileStatus.COMPLETE for f in report.files) == 3


def test_per_file_deadline_kills_the_worker_only_for_that_file(mixed_folder: str) -> None:
    write_hostile(mixed_folder, "slow.hostile", "sleep", "3600")
    report = scan_report(mixed_folder, jobs=2, timeout=120, file_timeout=3)
    slow = next(f for f in report.files if f.path.endswith("slow.hostile"))
    assert slow.status is FileStatus.INCONCLUSIVE
    assert sum(f.status is FileStatus.COMPLETE for f in report.files) == 3
    assert left_behind() == set()


@pytest.fixture(scope="module")
def other_fixtures_server() -> Iterator[subprocess.Popen[bytes]]:
    """A server another fixture keeps running across tests (as the remote tests' moto, GCS
    and MLflow servers do for the whole session)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield proc
    proc.kill()
    proc.wait(30)


def test_no_child_left_is_about_the_tests_own_processes(
    other_fixtures_server: subprocess.Popen[bytes], mixed_folder: str
) -> None:
    """A run after the remote tests once failed every "no child left" check: their session
    servers are this process's children too. They were there before the test; a process
    the test starts and leaves is still caught."""
    assert other_fixtures_server.pid in child_pids(os.getpid())
    report = scan_report(mixed_folder, jobs=2, timeout=60)
    assert report.exit_code == 0
    assert left_behind() == set()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert left_behind() == {sleeper.pid}
    finally:
        sleeper.kill()
        sleeper.wait(30)


def test_no_worker_left_after_a_clean_run(mixed_folder: str) -> None:
    report = scan_report(mixed_folder, jobs=2, timeout=60)
    assert report.exit_code == 0
    assert left_behind() == set()


def test_limits_read_from_config() -> None:
    limits = sandbox.Limits.from_config(
        {"timeout": 100, "worker_memory_limit": 1 << 30, "max_expanded_size": 1 << 20}
    )
    assert limits == sandbox.Limits(
        address_space=1 << 30, cpu_seconds=210, open_files=0, file_size=1 << 20
    )


async def test_no_worker_left_after_the_async_api(mixed_folder: str) -> None:
    """A service awaiting `scan` in its own event loop keeps no worker after each run."""
    from modelaudit.core import scan

    report = await scan(mixed_folder, jobs=2, timeout=60)
    assert report.exit_code == 0
    assert left_behind() == set()
    again = await scan(mixed_folder, jobs=2, timeout=60)
    assert again.exit_code == 0
    assert left_behind() == set()


def test_limits_are_applied_in_the_worker(tmp_path, hostile) -> None:
    import resource

    write_hostile(str(tmp_path), "limits.hostile", "report-limits")
    report = scan_report(
        str(tmp_path),
        jobs=1,
        timeout=60,
        worker_memory_limit=1536 * 1024**2,
        worker_open_files=64,
        worker_file_size_limit=8 * 1024**2,
        worker_cpu_limit=30,
    )
    seen = report.files[0].issues[0].details
    assert seen["RLIMIT_AS"] == 1536 * 1024**2
    assert seen["RLIMIT_NOFILE"] == 64
    assert seen["RLIMIT_FSIZE"] == 8 * 1024**2
    assert 30 <= seen["RLIMIT_CPU"] <= 60
    assert seen["RLIMIT_CORE"] == 0
    # The parent is never limited.
    assert resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY


def test_file_size_limit_fails_the_write_not_the_worker(tmp_path, hostile) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_hostile(str(folder), "a-big.hostile", "write-big", str(tmp_path / "big.out"))
    write_hostile(str(folder), "b-clean.hostile", "clean")
    report = scan_report(str(folder), jobs=1, timeout=60, worker_file_size_limit=1024**2)
    big, clean = sorted(report.files, key=lambda f: f.path)
    assert big.status is FileStatus.ERROR
    assert "File too large" in (big.status_reason or "")
    assert os.path.getsize(tmp_path / "big.out") <= 1024**2
    assert clean.status is FileStatus.COMPLETE


def test_cli_memory_limit(tmp_path, mixed_folder: str) -> None:
    import json
    import subprocess
    import sys

    write_hostile(mixed_folder, "oom.hostile", "oom")
    cli = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_hostile_cli.py")
    proc = subprocess.run(
        [sys.executable, cli, "scan", mixed_folder, "-f", "json", "--memory-limit", "512MB"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == EXIT_INCOMPLETE, proc.stderr.decode()[-2000:]
    files = {os.path.basename(f["path"]): f for f in json.loads(proc.stdout)["files"]}
    assert files["oom.hostile"]["status"] == "error"
    assert "out of memory" in files["oom.hostile"]["reason"]
    assert [files[f"clean{i}.hostile"]["status"] for i in range(3)] == ["complete"] * 3


@pytest.mark.parametrize("use_processes", [True, False])
def test_scanner_calling_exit_fails_only_its_file(mixed_folder: str, use_processes: bool) -> None:
    write_hostile(mixed_folder, "exit.hostile", "exit")
    report = scan_report(mixed_folder, jobs=1, timeout=60, use_processes=use_processes)
    by_name = {os.path.basename(f.path): f for f in report.files}
    assert by_name["exit.hostile"].status is FileStatus.ERROR
    assert "SystemExit" in (by_name["exit.hostile"].status_reason or "")
    assert [by_name[f"clean{i}.hostile"].status for i in range(3)] == [FileStatus.COMPLETE] * 3
