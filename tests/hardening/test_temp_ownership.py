"""The parent owns every file's temp folder: a worker killed mid-extraction (its file's
deadline, or the run stopped by SIGINT) leaves nothing behind in TMPDIR."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

MB = 1 << 20


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def _big_tar(path: Path, size: int = 1536 * MB) -> None:
    """Uncompressed (ratio 1, within every budget) but slow to extract."""
    with tarfile.open(path, "w") as tf:
        for name in ("a.bin", "b.bin"):
            info = tarfile.TarInfo(name)
            info.size = size
            tf.addfile(info, io.BufferedReader(_Zeros(size), 4 * MB))  # type: ignore[type-var]


def _files_under(folder: Path) -> list[str]:
    return [os.path.join(b, n) for b, _d, names in os.walk(folder) for n in names]


def _cli(target: Path, tmp: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    cmd = [sys.executable, "-m", "modelaudit", "scan", str(target), "--no-progress", "-j", "1"]
    return subprocess.Popen([*cmd, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_extraction(tmp: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if any(os.path.getsize(p) > MB for p in _files_under(tmp) if os.path.exists(p)):
            return
        time.sleep(0.05)
    pytest.fail("the member never started to be extracted")


@pytest.fixture(scope="module")
def big_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.tar"
    _big_tar(path)
    return path


def test_worker_killed_at_its_deadline_leaves_no_temp_files(tmp_path: Path, big_tar: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = _cli(big_tar, tmp, "--file-timeout", "4")
    _wait_for_extraction(tmp, proc)
    proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert _files_under(tmp) == []


def test_sigint_mid_extraction_leaves_no_temp_files(tmp_path: Path, big_tar: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = _cli(big_tar, tmp)
    _wait_for_extraction(tmp, proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert _files_under(tmp) == []
