"""Positional reads and writes where the platform has no `os.pread`/`os.pwrite` (Windows)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from modelaudit.engine import positional

_CHUNK = 64 * 1024


@pytest.mark.parametrize("platform", ["posix", "no-positional"])
def test_threads_writing_one_descriptor_land_at_their_offsets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    if platform == "no-positional":
        monkeypatch.delattr(os, "pwrite", raising=False)
        monkeypatch.delattr(os, "pread", raising=False)
    path = tmp_path / "spool"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        chunks = [bytes([i]) * _CHUNK for i in range(64)]

        def write(indexes: range) -> None:
            for i in indexes:
                positional.write_all_at(fd, memoryview(chunks[i]), i * _CHUNK)

        threads = [threading.Thread(target=write, args=(range(k, 64, 4),)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert path.read_bytes() == b"".join(chunks)
        assert positional.read_at(fd, 3, 5 * _CHUNK - 1) == b"\x04\x05\x05"
        assert positional.read_at(fd, 10, 64 * _CHUNK - 2) == b"\x3f\x3f"
    finally:
        os.close(fd)
