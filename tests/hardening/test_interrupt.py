"""SIGINT, SIGTERM and the run deadline keep every finished result and list the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest

from modelaudit.output import write as _write_atomic
from tests.hardening._hardening_util import write_hostile

CLI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_hostile_cli.py")


def _folder(tmp_path) -> tuple[str, str]:
    folder = tmp_path / "models"
    folder.mkdir()
    marker = str(tmp_path / "slow-started")
    for i in range(3):
        write_hostile(str(folder), f"a-clean{i}.hostile", "clean")
    write_hostile(str(folder), "m-slow.hostile", "mark-sleep", marker)
    for i in range(4):
        write_hostile(str(folder), f"z-later{i}.hostile", "clean")
    return str(folder), marker


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, CLI, "scan", *args, "--no-progress", "-j", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for(path: str, proc: subprocess.Popen[bytes]) -> set[int]:
    """Wait until the slow scan started; returns the worker pids alive at that moment."""
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        assert time.monotonic() < deadline, "slow scan never started"
        time.sleep(0.05)
    return {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}


def _gone(pids: set[int]) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and _not_zombie(p)]
        if not alive:
            return True
        time.sleep(0.1)
    return False


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _check_partial_report(report: dict, reason: str, summary: str | None = None) -> None:
    files = {os.path.basename(f["path"]): f for f in report["files"]}
    assert len(files) == 8, sorted(files)
    for i in range(3):
        assert files[f"a-clean{i}.hostile"]["status"] == "complete"
    assert files["m-slow.hostile"]["status"] == "inconclusive"
    assert reason in files["m-slow.hostile"]["reason"]
    for i in range(4):
        entry = files[f"z-later{i}.hostile"]
        assert entry["status"] == "inconclusive"
        assert reason in entry["reason"]
    assert (summary or reason) in report["summary"]["interrupted"]
    assert report["summary"]["exit_code"] == 2


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_writes_the_partial_report(tmp_path, sig: signal.Signals) -> None:
    folder, marker = _folder(tmp_path)
    out = str(tmp_path / "report.json")
    proc = _start([folder, "-f", "json", "-o", out])
    workers = _wait_for(marker, proc)
    assert workers
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err.decode()
    with open(out, encoding="utf-8") as f:
        _check_partial_report(json.load(f), f"Interrupted by {sig.name}")
    assert _gone(workers)
    assert [n for n in os.listdir(tmp_path) if n.startswith(".modelaudit-")] == []


def test_sigint_report_on_stdout(tmp_path) -> None:
    folder, marker = _folder(tmp_path)
    proc = _start([folder, "-f", "json"])
    workers = _wait_for(marker, proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    _check_partial_report(json.loads(out), "Interrupted by SIGINT")
    assert _gone(workers)


def test_run_deadline_lists_unstarted_files(tmp_path) -> None:
    folder, marker = _folder(tmp_path)
    proc = _start([folder, "-f", "json", "--timeout", "3"])
    workers = _wait_for(marker, proc)
    out, err = proc.communicate(timeout=60)
    assert _gone(workers)
    assert proc.returncode == 2, err.decode()
    report = json.loads(out)
    _check_partial_report(report, "run deadline reached", "Scan timeout after 3 seconds")
    later = [f for f in report["files"] if "z-later" in f["path"]]
    assert all("not started" in f["reason"] for f in later)


def test_second_sigint_exits_at_once(tmp_path) -> None:
    """A second Ctrl-C while a large partial report is being assembled or written exits
    without it. The report goes to a FIFO nobody reads, so its writing blocks for as long
    as it takes the second signal to come (a regular file could be written before it)."""
    folder, marker = _folder(tmp_path)
    for i in range(20000):
        open(os.path.join(folder, f"zz-many{i:05d}.bin"), "wb").close()
    out = str(tmp_path / "report.json")
    os.mkfifo(out)
    proc = _start([folder, "-f", "json", "-o", out])
    workers = _wait_for(marker, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode in (128 + signal.SIGINT, 130), err.decode()
    assert b"again" in err or b"interrupted" in err
    assert _gone(workers)


_AFTER_THE_SCAN = """
import os, signal, sys, time
import anyio
from modelaudit.config import ScanConfig
from modelaudit.engine.scanner import run_scan

report = anyio.run(lambda: run_scan([sys.argv[1]], ScanConfig(), handle_signals=True))
print(len(report.files), flush=True)
# (the CLI assembling the report: two signals, as an impatient Ctrl-C twice)
os.kill(os.getpid(), signal.SIGINT)
time.sleep(0.2)
os.kill(os.getpid(), signal.SIGINT)
time.sleep(5)
print("still running", flush=True)
"""


def test_signals_keep_their_meaning_as_soon_as_the_scan_lets_go_of_them(tmp_path) -> None:
    """Between the scan's end and the report phase a signal was Python's KeyboardInterrupt
    (what the engine's signal watcher hands back), which a weakref callback swallows: a
    second Ctrl-C then went unheard and the report was written. From the watcher's end a
    first signal lets the report be written and a second exits at once."""
    model = tmp_path / "model.pkl"
    model.write_bytes(b"\x80\x04K\x01.")
    proc = subprocess.run(
        [sys.executable, "-c", _AFTER_THE_SCAN, str(model)],
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.dirname(CLI)))},
    )
    assert proc.stdout.decode().split() == ["1"], proc.stderr.decode()
    assert proc.returncode == 128 + signal.SIGINT, proc.stderr.decode()
    assert b"SIGINT again, exiting without a report" in proc.stderr


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path) -> None:
    target = str(tmp_path / "report.json")
    _write_atomic(target, b'{"old": true}')
    _write_atomic(target, b'{"new": true}')
    with open(target, "rb") as f:
        assert f.read() == b'{"new": true}'

    with pytest.raises(TypeError):
        _write_atomic(target, "not bytes")  # type: ignore[arg-type]
    with open(target, "rb") as f:
        assert f.read() == b'{"new": true}'
    assert sorted(os.listdir(tmp_path)) == ["report.json"]


class _SlowHandler(BaseHTTPRequestHandler):
    """Serves a 4 MB file in 16 KB pieces, one every 0.2 s, honouring Range requests."""

    SIZE = 4 << 20

    def _range(self) -> tuple[int, int]:
        spec = self.headers.get("Range", "")
        if spec.startswith("bytes="):
            first, _, last = spec[6:].partition("-")
            start = int(first or 0)
            end = min(int(last) + 1 if last else self.SIZE, self.SIZE)
            return start, end
        return 0, self.SIZE

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(self.SIZE))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", '"slow"')
        self.end_headers()

    def do_GET(self) -> None:
        start, end = self._range()
        partial = "Range" in self.headers
        self.send_response(206 if partial else 200)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", '"slow"')
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{self.SIZE}")
        self.end_headers()
        try:
            for pos in range(start, end, 16384):
                self.wfile.write(b"\x00" * min(16384, end - pos))
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            return

    def log_message(self, format: str, *args: object) -> None:
        return


def test_sigint_during_a_download_keeps_no_spool(tmp_path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    spool_root = tmp_path / "tmp"
    spool_root.mkdir()
    url = f"http://127.0.0.1:{server.server_address[1]}/weights/model.bin"
    try:
        proc = subprocess.Popen(
            [sys.executable, CLI, "scan", url, "-f", "json", "--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "TMPDIR": str(spool_root)},
        )
        deadline = time.monotonic() + 60
        while not any(n.startswith("modelaudit-") for n in os.listdir(spool_root)):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            assert time.monotonic() < deadline, "download never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 2, err.decode()
    report = json.loads(out)
    assert [(f["path"], f["status"]) for f in report["files"]] == [(url, "inconclusive")]
    assert "Interrupted by SIGINT" in report["files"][0]["reason"]
    assert [n for n in os.listdir(spool_root) if n.startswith("modelaudit-")] == []
