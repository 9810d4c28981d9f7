"""Memo-index bombs: a tiny pickle must not make a worker allocate gigabytes."""

from __future__ import annotations

import base64
import contextlib
import io
from pathlib import Path

import anyio
import pytest

from modelaudit.config import ScanConfig
from modelaudit.engine import run_scan
from modelaudit.findings import FileStatus, ScanResult
from modelaudit.scanners.pickle.emulate import PyUnpickler, run
from modelaudit.scanners.pickle.reader import Reader
from modelaudit.scanners.pickle.stubs import Session

# LONG_BINPUT with index 2**28: the C unpickler would size its memo table to match (4 GiB,
# under the worker's 8 GiB address-space limit, so only the per-load budget stops it).
MEMO_BOMB = b"\x80\x02}r\x00\x00\x00\x10."
# Found by atheris: a joblib-like file whose LONG_BINPUT index is 697602964.
FUZZ_JOBLIB = base64.b64decode(
    "gASV2gAAAAAAAAB9lIwEY29lZpSME2pvYmxpYi5udW1weV9waWNrbGWUjBFOdW1weUFycmF5V0pyYXBwZXKUk5Qp"
    "gZR9lCiMCHN1YmNsYXNzlIwFbnVtcHlLAQItZGFycmF5lJOUjAVzaGFwZZRLBoWUjAVvcmRlcpSMAUOUjAVkdHlw"
    "ZZRoCIwFZHR5cGWUk5SMAmY4lImIh5RSlChLA4wBPJROTk5K/////0r/////SwB0lGKMCmFsbG93X21tYf//////"
    "//////8AAAAAAAAAAAAAAAAAAPA/AAAAAAAAAEAAAAAAAAAIQAAAAAAADRBAAAAAAAAAFEBzLg=="
)


def test_memo_index_bombs_end_inconclusive_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "memo.pkl").write_bytes(MEMO_BOMB)
    (tmp_path / "fuzz.joblib").write_bytes(FUZZ_JOBLIB)
    (tmp_path / "ok.pkl").write_bytes(b"\x80\x02}q\x00.")
    report = anyio.run(run_scan, [str(tmp_path)], ScanConfig(jobs=2, file_timeout=60))
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["ok.pkl"].status is FileStatus.COMPLETE
    for name in ("memo.pkl", "fuzz.joblib"):
        assert by_name[name].status is not FileStatus.COMPLETE, name
        assert "Scan timeout" not in (by_name[name].status_reason or ""), name


_WRAPPER = b"\x8c\x13joblib.numpy_pickle\x94\x8c\x11NumpyArrayWrapper\x94\x93\x940"


def test_object_floods_are_stopped_by_the_load_budget_on_both_unpicklers(tmp_path: Path) -> None:
    """EMPTY_SET builds ~216 bytes of objects per byte of stream: 6 MB asks for ~1.3 GB, under
    the worker's address-space limit, so only the per-load budget (a multiple of the stream's
    size) stops it, on the C unpickler and on the pure-Python one that joblib layouts take."""
    flood = b"(" + b"\x8f" * 6_000_000 + b"l."
    (tmp_path / "sets.pkl").write_bytes(b"\x80\x04" + flood)
    (tmp_path / "sets.joblib").write_bytes(b"\x80\x04" + _WRAPPER + flood)
    report = anyio.run(run_scan, [str(tmp_path)], ScanConfig(jobs=2, file_timeout=300))
    by_name = {Path(f.path).name: f for f in report.files}
    for name in ("sets.pkl", "sets.joblib"):
        found = by_name[name]
        assert found.status is FileStatus.INCONCLUSIVE, (name, found.status, found.status_reason)
        messages = " ".join(i.message for i in found.issues)
        assert "out of memory while reading" in messages, (name, messages)


def test_a_failed_pure_python_load_lets_go_of_what_it_built() -> None:
    """The session keeps the joblib-layout unpickler for positions, so what a load that
    failed half-way built (out of memory: a gigabyte and more) outlived it, and the plain
    reading of the same file that follows (`_shadow_plain_load`) started on top of it: its
    budget, measured from there, reached past the worker's own limit (100 MB of empty dicts
    took the worker to 2.2 GB instead of the budget's 1.6 GB)."""
    stream = b"\x80\x04(" + b"}q\x01" * 50_000 + b"(" + b"]" * 1000  # no STOP: truncated
    session = Session(ScanResult(scanner_name="t"), lambda p: "", 4, joblib=True)
    unpickler = PyUnpickler(Reader(io.BytesIO(stream)), session)
    session.pos = lambda: unpickler.op_pos
    with pytest.raises(EOFError):
        run(unpickler, session, lambda n: contextlib.nullcontext())
    assert (unpickler.stack, unpickler.metastack, unpickler.memo) == ([], [], {})
    assert session.pos() > 0  # positions still answer
