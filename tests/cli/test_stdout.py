"""The report on stdout arrives whole, however slowly the reader drains the pipe.

With PYTHONUNBUFFERED=1 (common in containers) `sys.stdout.buffer` is the raw file, whose
`write` may take only part of the data (a full pipe, a signal): a report cut at 64 KiB
with exit code 1 and nothing on stderr was the result.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

CLEAN_PICKLE = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s."


def _queued(fd: int) -> int:
    """Bytes waiting in the pipe."""
    buf = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return int.from_bytes(buf, sys.byteorder)


def _scan_600_files(tmp_path: Path, unbuffered: str) -> subprocess.Popen[bytes]:
    """A JSON report far larger than a pipe holds, written to our stdout pipe."""
    for index in range(600):
        (tmp_path / f"model{index:04d}.pkl").write_bytes(CLEAN_PICKLE)
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    return subprocess.Popen(
        [sys.executable, "-m", "modelaudit", "scan", "--no-progress", "-f", "json", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_a_report_larger_than_the_pipe_arrives_whole(tmp_path: Path, unbuffered: str) -> None:
    proc = _scan_600_files(tmp_path, unbuffered)
    assert proc.stdout is not None
    try:
        # Read nothing until the pipe is full (the writer then waits on it) or the scan ended.
        end = time.monotonic() + 300
        while _queued(proc.stdout.fileno()) < 65536 and proc.poll() is None:
            assert time.monotonic() < end, "timed out waiting for the pipe to fill"
            time.sleep(0.05)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    report = json.loads(out)
    assert len(report["files"]) == 600


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_a_report_survives_the_writer_being_stopped_mid_write(
    tmp_path: Path, unbuffered: str
) -> None:
    """A process stopped and continued while blocked on a full pipe (job control, a debugger
    attaching, a frozen container) gets a short count back from write(2): 131,072 bytes
    was all a `--cluster` report delivered once, exit 1, nothing on stderr, when one raw
    write was taken as the whole. Every stop here happens while the writer waits on the pipe."""
    proc = _scan_600_files(tmp_path, unbuffered)
    assert proc.stdout is not None
    received = []
    try:
        end = time.monotonic() + 300
        for _ in range(3):
            while _queued(proc.stdout.fileno()) < 65536 and proc.poll() is None:
                assert time.monotonic() < end, "timed out waiting for the pipe to fill"
                time.sleep(0.05)
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGSTOP)
            proc.send_signal(signal.SIGCONT)
            received.append(os.read(proc.stdout.fileno(), 65536))
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    report = json.loads(b"".join([*received, out]))
    assert len(report["files"]) == 600
