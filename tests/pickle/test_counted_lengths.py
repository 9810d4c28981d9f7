"""A counted argument announcing more bytes than the stream holds is never allocated.

The C unpickler allocates what BINBYTES8 / BYTEARRAY8 announce before it reads a byte, and on
CPython 3.11 a BYTEARRAY8 allocation that fails under the worker's memory limit printed a stray
"SystemError: deallocated bytearray object has exported buffers" (the failed object is freed
with an uninitialised export count). The engine stops the load before such an opcode: the file
is inconclusive (truncated), nothing is allocated, nothing is printed.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from tests.pickle._pickle_corpus import scan

HUGE = 6 << 30


def _counted(opcode: bytes, width: int, announced: int, proto: int = 5) -> bytes:
    return b"\x80" + bytes([proto]) + opcode + announced.to_bytes(width, "little") + b"abc"


HOSTILE = {
    "BYTEARRAY8": _counted(pickle.BYTEARRAY8, 8, HUGE),
    "BINBYTES8": _counted(pickle.BINBYTES8, 8, HUGE, 4),
    "BINUNICODE8": _counted(pickle.BINUNICODE8, 8, HUGE, 4),
    "BINBYTES": _counted(pickle.BINBYTES, 4, (1 << 32) - 1, 3),
    "in a frame": b"\x80\x05\x95"
    + struct.pack("<Q", 12)
    + pickle.BYTEARRAY8
    + struct.pack("<Q", 512 << 20)
    + b"abc",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_length_past_the_end_is_truncated_without_allocating_it(name: str) -> None:
    tracemalloc.start()
    try:
        result, info = scan(HOSTILE[name])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, peak
    assert not info.complete
    reason = result.status_reason or ""
    assert "announces" in reason and "truncated" in reason, reason


def test_the_python_unpickler_checks_bytearray8_too() -> None:
    """joblib files (and the C-like fallback) load with `pickle._Unpickler`; past the head
    the walk covers, its BYTEARRAY8 is checked before it allocates."""
    padding = pickle.SHORT_BINBYTES + b"\xff" + b"p" * 255 + pickle.POP
    data = b"\x80\x05" + padding * 1200 + pickle.BYTEARRAY8 + struct.pack("<Q", HUGE) + b"abc"
    assert len(data) > 256 << 10
    tracemalloc.start()
    try:
        result, info = scan(data, joblib=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, peak
    assert not info.complete
    assert "BYTEARRAY8 announces" in (result.status_reason or ""), result.status_reason


def test_honest_counted_arguments_still_load() -> None:
    value = [bytearray(b"x" * 300_000), b"y" * 300_000, "z" * 300_000]
    for proto in (4, 5):
        result, info = scan(pickle.dumps(value, protocol=proto))
        assert info.complete, result.to_dict()
        assert not result.issues


def test_no_stray_system_error_under_the_worker_memory_limit(tmp_path: Path) -> None:
    for name, data in HOSTILE.items():
        (tmp_path / f"{name.replace(' ', '_')}.pkl").write_bytes(data)
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "modelaudit", "scan", "--no-progress", "-f", "json"),
            *("--memory-limit", "1GB", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 2, proc.stderr
    assert "SystemError" not in proc.stderr, proc.stderr
    assert "exported buffers" not in proc.stderr
