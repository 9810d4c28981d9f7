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


def test_memo_index_bombs_are_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    """The C unpickler's memo table cannot grow to the index (the load budget stops it): the
    stream is read again with a dict for a memo, to its end, and the index is the finding."""
    (tmp_path / "memo.pkl").write_bytes(MEMO_BOMB)
    (tmp_path / "fuzz.joblib").write_bytes(FUZZ_JOBLIB)
    (tmp_path / "ok.pkl").write_bytes(b"\x80\x02}q\x00.")
    report = anyio.run(run_scan, [str(tmp_path)], ScanConfig(jobs=2, file_timeout=60))
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["ok.pkl"].status is FileStatus.COMPLETE
    memo = by_name["memo.pkl"]
    assert memo.status is FileStatus.COMPLETE, memo.status_reason
    (bomb,) = [i for i in memo.issues if i.rule == "MA1012"]
    assert bomb.details["memo_index"] == 1 << 28
    assert by_name["fuzz.joblib"].status is not FileStatus.COMPLETE
    assert "Scan timeout" not in (by_name["fuzz.joblib"].status_reason or "")


_SYSTEM_CALL = b"cos\nsystem\nX\x02\x00\x00\x00id\x85R."


@pytest.mark.parametrize(
    "put",
    [b"r" + (0x7FFF0000).to_bytes(4, "little"), b"p2147418112\n"],
    ids=["LONG_BINPUT", "PUT"],
)
def test_a_call_after_a_memo_index_bomb_is_still_judged(tmp_path: Path, put: bytes) -> None:
    """A loader with the memory (32 GiB) stores the value and runs the call after it; the
    C unpickler under the load budget fails at the PUT, which reported only "out of memory"."""
    (tmp_path / "m.pkl").write_bytes(b"\x80\x02}" + put + b"0" + _SYSTEM_CALL)
    report = anyio.run(run_scan, [str(tmp_path)], ScanConfig(jobs=1, file_timeout=60))
    (found,) = report.files
    rules = {i.rule for i in found.issues}
    assert {"MA1001", "MA1002", "MA1012"} <= rules, [i.message for i in found.issues]
    assert found.status is FileStatus.COMPLETE


def test_honest_memo_indexes_are_not_huge() -> None:
    """Python writes LONG_BINPUT past 255 entries and text PUT at protocol 0; an index is
    always below its offset, however many entries (past the 2**20 floor too)."""
    import pickle

    from modelaudit.scanners.pickle.hashcost import MEMO_INDEX_FLOOR, huge_memo_put

    many: list[list[int]] = [[] for _ in range(MEMO_INDEX_FLOOR + 10)]
    assert huge_memo_put(pickle.dumps(many, protocol=2)) is None
    assert huge_memo_put(pickle.dumps(many[:1000], protocol=0)) is None
    assert huge_memo_put(b"(lp" + str(MEMO_INDEX_FLOOR).encode() + b"\n.") == (2, MEMO_INDEX_FLOOR)
    assert huge_memo_put(MEMO_BOMB) == (3, 1 << 28)


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


def test_a_call_after_a_memo_index_bomb_in_joblib_array_bytes_is_judged(tmp_path: Path) -> None:
    """joblib skips the array bytes; pickle.load runs them as opcodes (the plain reading of a
    joblib file), and there a huge memo index stopped the C reading before the call."""
    from tests.pickle._pickle_corpus import call, sg
    from tests.pickle.test_scanner import _joblib_array_stream

    payload = b"Nr" + (0x7FFF0000).to_bytes(4, "little") + b"0" + call(sg("os", "system"), "id")
    (tmp_path / "poly.joblib").write_bytes(_joblib_array_stream(payload + b"."))
    report = anyio.run(run_scan, [str(tmp_path)], ScanConfig(jobs=1, file_timeout=60))
    (found,) = report.files
    calls = [i for i in found.issues if i.message == "Call to os.system('id')"]
    assert calls and calls[0].details.get("interpretation") == "pickle.load", found.issues


def _deflated_torch_zip(pickle_bytes: bytes) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", pickle_bytes)
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


@pytest.mark.parametrize(
    "index",
    # 32 GiB of memo; 2.6 GiB, under the budget of a stream taken as 256 MiB, which it filled
    [0x7FFF0000, 172_708_468],
    ids=["32GiB", "2.6GiB"],
)
def test_a_memo_index_bomb_in_a_deflated_member_is_read_again(tmp_path: Path, index: int) -> None:
    """A pickle read through a decoder (a deflated zip member) cannot be sought back to its
    start: the bytes the reader recorded are read again, so the call
    after the bomb is judged (before, "Malformed pickle stream: memo" and nothing else),
    and the stream's size is what was read, not 256 MiB (whose load budget let the C
    unpickler build a 2.6 GiB memo table). A SHORT_BINBYTES of a FRAME byte keeps the
    stream off the in-memory path."""
    stream = b"\x80\x02}r" + index.to_bytes(4, "little") + b"0" + b"C\x01\x950" + _SYSTEM_CALL
    (tmp_path / "model.pt").write_bytes(_deflated_torch_zip(stream))
    report = anyio.run(run_scan, [str(tmp_path)], ScanConfig(jobs=1, file_timeout=60))
    (found,) = report.files
    rules = {i.rule for i in found.issues}
    assert {"MA1001", "MA1002", "MA1012"} <= rules, [i.message for i in found.issues]
    assert found.status is FileStatus.COMPLETE, found.status_reason


def test_an_unseekable_source_read_to_its_end_is_sized_by_what_it_held() -> None:
    """The load budget grows with the source's size; a source with no size to ask (a zip
    member through its decoder) was taken as 256 MiB even when every byte was in."""
    from modelaudit.scanners.pickle.emulate import source_size
    from tests.pickle._pickle_corpus import Unseekable

    data = b"\x80\x02}q\x00." * 100
    reader = Reader(io.BufferedReader(Unseekable(data)))
    reader.look(1 << 20)
    assert reader.eof
    assert source_size(reader) == len(data)


def test_a_memo_index_bomb_in_a_compressed_pickle_is_reported(tmp_path: Path) -> None:
    """A `.pkl.gz` is read by the pure-Python unpickler (its dict holds any index), but
    `pandas.read_pickle` or `pickle.load(gzip.open(...))` sizes the C unpickler's table to
    the index: the bomb is a WARNING there too, beside the call after it."""
    import gzip

    put = b"r" + (0x7FFF0000).to_bytes(4, "little")
    (tmp_path / "frame.pkl.gz").write_bytes(gzip.compress(b"\x80\x02}" + put + b"0" + _SYSTEM_CALL))
    report = anyio.run(run_scan, [str(tmp_path)], ScanConfig(jobs=1, file_timeout=60))
    (found,) = report.files
    (bomb,) = [i for i in found.issues if i.rule == "MA1012"]
    assert bomb.details["memo_index"] == 0x7FFF0000
    assert {"MA1001", "MA1002"} <= {i.rule for i in found.issues}


@pytest.mark.parametrize(
    "put",
    [b"r" + (42_767_474).to_bytes(4, "little"), b"p42767474\n"],
    ids=["LONG_BINPUT", "PUT"],
)
def test_a_memo_index_the_load_budget_would_let_through_is_named_before_the_load(
    put: bytes,
) -> None:
    """Found by atheris: index 42,767,474 (a 0.6 GiB table) fits a small stream's load
    budget (768 MiB), so the C unpickler zeroed it, for a second and more of page faults per
    reading, and the bomb was never named. The walk before the load finds it (in process too,
    where no budget applies) and the stream goes to the dict memo straight away."""
    from modelaudit.engine import dispatch

    data = b"\x80\x02}" + put + b"0" + _SYSTEM_CALL
    result = dispatch.scan_member(data, "m.pkl", depth=0, config=ScanConfig().scanner_config())
    rules = {i.rule for i in result.issues}
    assert {"MA1001", "MA1002", "MA1012"} <= rules, [i.message for i in result.issues]
    (bomb,) = [i for i in result.issues if i.rule == "MA1012"]
    assert bomb.details["memo_index"] == 42_767_474


def test_pure_python_readings_say_invalid_load_key_as_the_c_unpickler_does() -> None:
    """pickle.py's loop raises KeyError for a byte that is no opcode ("KeyError: 102")."""
    session = Session(ScanResult(scanner_name="t"), lambda p: "", 4)
    unpickler = PyUnpickler(Reader(io.BytesIO(b"\x80\x04K\x01f")), session, c_like=True)
    with pytest.raises(Exception, match=r"invalid load key, 'f'\."):
        run(unpickler, session, lambda n: contextlib.nullcontext())


def test_strings_full_of_r_bytes_are_walked_not_cut() -> None:
    """Any 'r' followed by four bytes could be a LONG_BINPUT until the walk says otherwise:
    text-heavy pickles are walked, find no PUT, and load as before."""
    import pickle

    from modelaudit.scanners.pickle.hashcost import first_stop

    names = [f"transformer.h.{i}.running_var.weight" for i in range(3000)]
    data = pickle.dumps({n: (i, i) for i, n in enumerate(names)}, protocol=4)
    assert first_stop(data, len(data), memo=True) is None
