"""The one-file run (engine/direct.py): `modelaudit scan FILE` forks one worker straight from
the CLI. A hostile file must still end only its own scan, with the engine's verdict: these
tests run the hostile scanner through it and compare with the engine (spawned workers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.hardening._hardening_util import write_hostile

CLI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_hostile_cli.py")


def _env(tmp_path: Path, engine: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MODELAUDIT_WORKER_START", None)
    if engine:
        env["MODELAUDIT_WORKER_START"] = "spawn"
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    env["TMPDIR"] = str(temp)
    return env


def _scan(path: str, tmp_path: Path, *extra: str, engine: bool = False) -> tuple[int, Any]:
    proc = subprocess.run(
        [sys.executable, CLI, "scan", path, "-f", "json", "--no-progress", *extra],
        capture_output=True,
        timeout=120,
        env=_env(tmp_path, engine),
        check=False,
    )
    assert proc.stdout, proc.stderr.decode()[-2000:]
    return proc.returncode, json.loads(proc.stdout)


def _verdict(report: dict[str, Any]) -> tuple[object, ...]:
    (entry,) = report["files"]
    rules = sorted(i.get("rule") or "" for i in report["issues"])
    severities = sorted(i["severity"] for i in report["issues"])
    return (
        entry["status"],
        entry.get("reason"),
        rules,
        severities,
        report["summary"]["exit_code"],
        report["summary"]["interrupted"],
    )


def _temp_left(tmp_path: Path) -> list[str]:
    return os.listdir(tmp_path / "tmp")


@pytest.mark.parametrize(
    ("command", "extra", "status", "reason"),
    [
        ("clean", (), "complete", None),
        ("segfault", (), "error", "SIGSEGV"),
        ("kill", (), "error", "SIGKILL"),
        ("critical-then-kill", (), "error", "SIGKILL"),
        ("oom", ("--memory-limit", "512MB"), "error", "out of memory"),
        ("critical-then-sleep", ("--file-timeout", "2"), "inconclusive", "Scan timeout after 2"),
        ("exit", (), "error", "SystemExit"),
        ("kill-parent", (), None, None),
        ("popen", (), None, None),
    ],
)
def test_a_hostile_file_gets_the_engine_verdict(
    tmp_path: Path, command: str, extra: tuple[str, ...], status: str | None, reason: str | None
) -> None:
    arg = "3600" if command.endswith("sleep") else str(tmp_path / "touched")
    path = write_hostile(str(tmp_path), "a.hostile", command, arg)
    code, report = _scan(path, tmp_path, *extra)
    (entry,) = report["files"]
    assert status is None or entry["status"] == status, entry
    assert reason is None or reason in entry["reason"], entry["reason"]
    engine_code, engine_report = _scan(path, tmp_path, *extra, engine=True)
    assert _verdict(report) == _verdict(engine_report)
    assert code == engine_code
    assert not (tmp_path / "touched").exists()
    assert _temp_left(tmp_path) == []


def test_the_sandbox_refuses_and_reports_in_the_one_file_worker(tmp_path: Path) -> None:
    """The worker is a fork of the CLI itself: signalling it (its parent) is refused."""
    path = write_hostile(str(tmp_path), "a.hostile", "kill-parent")
    code, report = _scan(path, tmp_path)
    assert code == 1
    assert any(i["severity"] == "critical" for i in report["issues"]), report["issues"]


def _start(path: str, tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, CLI, "scan", path, "-f", "json", "--no-progress", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(tmp_path),
    )


def _started(marker: Path, proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """Wait for the slow scan to start; the CLI's descendants at that moment."""
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        assert time.monotonic() < deadline, "the scan never started"
        time.sleep(0.05)
    return list(psutil.Process(proc.pid).children(recursive=True))


def _gone(processes: list[psutil.Process]) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def test_one_worker_and_no_fork_server(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    path = write_hostile(str(tmp_path), "a.hostile", "mark-sleep", str(marker))
    proc = _start(path, tmp_path, "--file-timeout", "60")
    try:
        descendants = _started(marker, proc)
        assert len(descendants) == 1
        assert descendants[0].ppid() == proc.pid
    finally:
        proc.kill()
        proc.communicate()
    assert _gone(descendants)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_writes_the_report_with_what_was_found(
    tmp_path: Path, sig: signal.Signals
) -> None:
    marker = tmp_path / "started"
    path = write_hostile(str(tmp_path), "a.hostile", "critical-then-tmp-then-sleep", str(marker))
    proc = _start(path, tmp_path)
    workers = _started(marker, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    # (the whole report on failure: this has failed once in a while under load, cause unknown)
    shown = f"exit {proc.returncode}\nstderr: {err.decode()[-2000:]}\nstdout: {out.decode()[:4000]}"
    assert proc.returncode == 1, shown  # the planted CRITICAL
    report = json.loads(out)
    (entry,) = report["files"]
    assert entry["status"] == "inconclusive"
    assert f"Interrupted by {sig.name}" in entry["reason"]
    assert f"Interrupted by {sig.name}" in report["summary"]["interrupted"]
    assert [i["rule"] for i in report["issues"] if i["severity"] == "critical"] == ["TEST-PLANTED"]
    assert _gone(workers), [p.pid for p in workers if p.is_running()]
    assert _temp_left(tmp_path) == []


def test_the_run_deadline_stops_the_one_file(tmp_path: Path) -> None:
    path = write_hostile(str(tmp_path), "a.hostile", "sleep", "3600")
    started = time.monotonic()
    code, report = _scan(path, tmp_path, "--timeout", "2")
    assert time.monotonic() - started < 60
    assert code == 2
    (entry,) = report["files"]
    assert entry["status"] == "inconclusive"
    assert "run deadline reached" in entry["reason"]
    assert "Scan timeout after 2 seconds (whole run)" in report["summary"]["interrupted"]
    _, engine_report = _scan(path, tmp_path, "--timeout", "2", engine=True)
    assert _verdict(report) == _verdict(engine_report)


def test_the_worker_dies_with_the_cli(tmp_path: Path) -> None:
    """SIGKILL leaves the CLI no chance to clean up: the worker still ends with it."""
    marker = tmp_path / "started"
    path = write_hostile(str(tmp_path), "a.hostile", "mark-sleep", str(marker))
    proc = _start(path, tmp_path)
    workers = _started(marker, proc)
    assert workers
    proc.kill()
    proc.communicate(timeout=30)
    assert _gone(workers)
