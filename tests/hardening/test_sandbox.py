"""The worker audit hook refuses and reports process, native-code, network and unpickle attempts."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from modelaudit import rules
from modelaudit.core import scan_report
from modelaudit.engine import sandbox
from modelaudit.findings import FileStatus, IssueSeverity
from tests.hardening._hardening_util import write_hostile

REFUSALS = {
    "popen": "subprocess.Popen",
    "system": "os.system",
    "posix_spawn": "os.posix_spawn",
    "fork": "os.fork",
    "exec": "os.exec",
    "pty": "pty.spawn",
    "spawnv": "os.fork",
    "kill-parent": "os.kill",
    "unpickle": "pickle.find_class",
    "ctypes": "ctypes.dlopen",
    "resolve": "socket.getaddrinfo",
}


class _Listener:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def refused_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, int]:
    from modelaudit.scanners import SCANNER_REGISTRY
    from tests.hardening._hostile_scanners import HostileScanner

    folder = str(tmp_path_factory.mktemp("refused"))
    sentinels = str(tmp_path_factory.mktemp("sentinels"))
    for command in REFUSALS:
        write_hostile(folder, f"{command}.hostile", command, os.path.join(sentinels, command))
    # A host name, not a path: Python encodes it (IDNA, labels of 63 characters at most)
    # before the audit event, so a long TMPDIR would fail the lookup before the hook sees it.
    write_hostile(folder, "resolve.hostile", "resolve", "sandbox-probe.invalid")
    write_hostile(folder, "swallow.hostile", "swallow-popen", os.path.join(sentinels, "swallow"))
    write_hostile(folder, "zz-clean-after.hostile", "clean")
    listener = _Listener()
    write_hostile(folder, "connect.hostile", "connect", f"127.0.0.1:{listener.port}")
    SCANNER_REGISTRY.insert(0, HostileScanner)
    try:
        report = scan_report(folder, jobs=1, timeout=60)
    finally:
        SCANNER_REGISTRY.remove(HostileScanner)
        listener.close()
    files = {os.path.basename(f.path): f for f in report.files}
    return files, sentinels, listener.accepted


@pytest.mark.parametrize("command", sorted(REFUSALS))
def test_refused_action_is_a_critical_finding(refused_run: tuple, command: str) -> None:
    files, sentinels, _ = refused_run
    fr = files[f"{command}.hostile"]
    hits = [i for i in fr.issues if i.rule == rules.SANDBOX_VIOLATION]
    assert hits, fr.issues
    assert all(i.severity is IssueSeverity.CRITICAL and i.why for i in hits)
    assert hits[0].details["event"] == REFUSALS[command]
    assert not os.path.exists(os.path.join(sentinels, command))


def test_connection_is_refused_before_it_reaches_the_network(refused_run: tuple) -> None:
    files, _, accepted = refused_run
    fr = files["connect.hostile"]
    assert any(i.rule == rules.SANDBOX_VIOLATION for i in fr.issues)
    assert accepted == 0


def test_swallowed_refusal_still_reaches_the_report(refused_run: tuple) -> None:
    files, sentinels, _ = refused_run
    fr = files["swallow.hostile"]
    assert fr.status is FileStatus.COMPLETE
    assert [i.details["event"] for i in fr.issues if i.rule == rules.SANDBOX_VIOLATION] == [
        "subprocess.Popen"
    ]
    assert not os.path.exists(os.path.join(sentinels, "swallow"))


def test_hook_is_idle_between_scans_of_the_same_worker(refused_run: tuple) -> None:
    files, _, _ = refused_run
    fr = files["zz-clean-after.hostile"]
    assert fr.status is FileStatus.COMPLETE
    assert fr.issues == []


def test_legitimate_files_trip_nothing(seeds: dict[str, str]) -> None:
    """No seed of any format makes a real scanner trip the hook (no false CRITICALs)."""
    folder = os.path.dirname(next(iter(seeds.values())))
    report = scan_report(folder, jobs=2, timeout=120)
    assert len(report.files) == len(seeds)
    tripped = [(f.path, i.message) for f in report.files for i in f.issues]
    tripped = [t for t in tripped if "Scanning tried" in t[1]]
    assert tripped == []


def test_in_process_scans_leave_the_parent_unhooked(tmp_path, hostile) -> None:
    write_hostile(str(tmp_path), "a.hostile", "clean")
    report = scan_report(str(tmp_path), use_processes=False)
    assert report.files[0].status is FileStatus.COMPLETE
    assert not sandbox._installed
    import subprocess

    assert subprocess.run(["true"], check=False).returncode == 0
