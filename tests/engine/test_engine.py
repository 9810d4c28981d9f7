"""The engine: concurrency, deadlines, crashes, limits, routing and statuses."""

from __future__ import annotations

import time
from pathlib import Path

import anyio

import modelaudit
from modelaudit.config import ScanConfig
from modelaudit.core import scan_model_directory_or_file
from modelaudit.engine import run_scan
from modelaudit.findings import FileStatus


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def test_appended_scanner_is_used_by_next_scan(tmp_path: Path, custom_scanner: type) -> None:
    _write(tmp_path, "custom_model.mymodel", b"...malicious_pattern...")
    results = scan_model_directory_or_file(str(tmp_path / "custom_model.mymodel"))
    assert [i["message"] for i in results["issues"]] == ["Suspicious pattern found"]
    assert results["issues"][0]["severity"] == "warning"
    assert results["scanner_names"] == ["custom_format"]


def test_reference_snippet_works_as_written(tmp_path: Path, custom_scanner: type) -> None:
    _write(tmp_path, "a.mymodel", b"malicious_pattern")
    config = {
        "blacklist_patterns": ["unsafe_model", "malicious_net"],
        "max_file_size": 1073741824,
        "timeout": 600,
    }
    results = scan_model_directory_or_file(str(tmp_path), **config)
    lines = [f"- {issue['severity'].upper()}: {issue['message']}" for issue in results["issues"]]
    assert lines == ["- WARNING: Suspicious pattern found"]
    for key in (
        "scanner_names",
        "start_time",
        "bytes_scanned",
        "issues",
        "has_errors",
        "files_scanned",
        "duration",
        "assets",
    ):
        assert key in results


def test_timeout_kills_only_the_slow_file(tmp_path: Path, custom_scanner: type) -> None:
    _write(tmp_path, "slow.mymodel", b"sleep_forever")
    _write(tmp_path, "bad.mymodel", b"malicious_pattern")
    _write(tmp_path, "good.mymodel", b"fine")
    started = time.monotonic()
    report = anyio.run(run_scan, [str(tmp_path)], ScanConfig(timeout=60, file_timeout=1.5, jobs=2))
    assert time.monotonic() - started < 30  # the sleeping worker was killed, not awaited
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["slow.mymodel"].status is FileStatus.INCONCLUSIVE
    assert by_name["slow.mymodel"].status_reason == "Scan timeout after 1.5 seconds"
    assert by_name["good.mymodel"].status is FileStatus.COMPLETE
    assert [i.message for i in by_name["bad.mymodel"].issues] == ["Suspicious pattern found"]
    assert report.exit_code == 1


def test_run_deadline_keeps_finished_results(tmp_path: Path, custom_scanner: type) -> None:
    """The call with the deadline runs on a Scanner whose fork server and worker are already
    up: starting them (every module compiled from source without bytecode) took longer than
    the 2 s deadline on a loaded machine, before the good file could be scanned."""
    folder = tmp_path / "models"
    folder.mkdir()
    _write(folder, "a_slow.mymodel", b"sleep_forever")
    _write(folder, "b_good.mymodel", b"fine")

    async def scan_after_warming_up() -> modelaudit.ScanReport:
        async with modelaudit.Scanner(ScanConfig(jobs=2)) as scanner:
            warm = await scanner.scan(str(folder / "b_good.mymodel"))
            assert warm.files[0].status is FileStatus.COMPLETE
            return await scanner.scan(str(folder), timeout=2)

    report = anyio.run(scan_after_warming_up)
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["b_good.mymodel"].status is FileStatus.COMPLETE
    assert by_name["a_slow.mymodel"].status is FileStatus.INCONCLUSIVE
    assert "Scan timeout after 2 seconds" in (by_name["a_slow.mymodel"].status_reason or "")
    assert report.interrupted
    assert report.exit_code == 2


def test_crashing_worker_fails_only_its_file(tmp_path: Path, custom_scanner: type) -> None:
    _write(tmp_path, "crash.mymodel", b"crash_now")
    _write(tmp_path, "good.mymodel", b"fine")
    _write(tmp_path, "bad.mymodel", b"malicious_pattern")
    report = anyio.run(run_scan, [str(tmp_path)], ScanConfig(jobs=2))
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["crash.mymodel"].status is FileStatus.ERROR
    assert "crashed" in (by_name["crash.mymodel"].status_reason or "")
    assert by_name["good.mymodel"].status is FileStatus.COMPLETE
    assert by_name["bad.mymodel"].issues
    assert report.exit_code == 1


def test_too_large_file_is_not_read(tmp_path: Path, custom_scanner: type) -> None:
    _write(tmp_path, "big.mymodel", b"malicious_pattern" + b"x" * 5000)
    results = scan_model_directory_or_file(str(tmp_path), max_file_size=1000)
    messages = [i["message"] for i in results["issues"]]
    assert len(messages) == 1 and messages[0].startswith("File too large to scan")
    # Unverified, not a finding: the exit code says incomplete (2), not issues found (1).
    assert results["issues"][0]["severity"] == "info"
    assert results["files"][0]["status"] == "inconclusive"
    assert results["summary"]["exit_code"] == 2


def test_unknown_model_file_is_unverified_named_or_walked(tmp_path: Path) -> None:
    path = _write(tmp_path, "mystery.model", b"\x00\x01\x02 not a model")
    for target in (path, tmp_path):
        results = scan_model_directory_or_file(str(target))
        assert [i["message"] for i in results["issues"]] == ["Unknown or unhandled format"]
        assert results["issues"][0]["severity"] == "info"
        assert results["files"][0]["status"] == "inconclusive"
        assert results["summary"]["exit_code"] == 2


def test_unknown_non_model_file_is_skipped_named_or_walked(tmp_path: Path) -> None:
    path = _write(tmp_path, "mystery.dat", b"\x00\x01\x02 not a model")
    for target in (path, tmp_path):
        results = scan_model_directory_or_file(str(target))
        assert results["issues"] == []
        assert results["files"][0]["status"] == "skipped"
        assert results["summary"]["exit_code"] == 0


def test_unknown_non_model_file_in_directory_is_skipped(tmp_path: Path) -> None:
    _write(tmp_path, "README.md", b"# hello\n")
    results = scan_model_directory_or_file(str(tmp_path))
    assert results["issues"] == []
    assert results["files"][0]["status"] == "skipped"
    assert results["summary"]["exit_code"] == 0


def test_missing_target_is_an_error_not_clean(tmp_path: Path) -> None:
    results = scan_model_directory_or_file(str(tmp_path / "nope.pkl"))
    assert results["has_errors"] is True
    assert results["summary"]["exit_code"] == 2


def test_blacklist_matches_file_names(tmp_path: Path, custom_scanner: type) -> None:
    _write(tmp_path, "DeepSeek-small.mymodel", b"fine")
    results = scan_model_directory_or_file(str(tmp_path), blacklist_patterns=["deepseek"])
    crit = [i for i in results["issues"] if i["severity"] == "critical"]
    assert len(crit) == 1 and "deepseek" in crit[0]["message"]


def test_many_files_are_scanned_concurrently_and_all_reported(
    tmp_path: Path, custom_scanner: type
) -> None:
    for n in range(300):
        _write(tmp_path, f"m{n:03}.mymodel", b"malicious_pattern" if n % 3 == 0 else b"ok")
    report = anyio.run(run_scan, [str(tmp_path)], ScanConfig(jobs=2))
    assert len(report.files) == 300
    assert len(report.findings) == 100
    assert [f.path for f in report.files] == sorted(f.path for f in report.files)


async def test_async_api_does_not_block_the_event_loop(
    tmp_path: Path, custom_scanner: type
) -> None:
    _write(tmp_path, "slow.mymodel", b"sleep_forever")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.05)
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        report = await modelaudit.scan([str(tmp_path)], file_timeout=1.0)
        tg.cancel_scope.cancel()
    assert report.files[0].status is FileStatus.INCONCLUSIVE
    assert ticks >= 10  # the loop kept running while the worker slept


async def test_sync_api_works_inside_a_running_loop(tmp_path: Path, custom_scanner: type) -> None:
    _write(tmp_path, "a.mymodel", b"malicious_pattern")
    results = scan_model_directory_or_file(str(tmp_path))
    assert len(results["issues"]) == 1
