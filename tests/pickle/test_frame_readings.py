"""FRAME straddles: a pickle that `pickle.load(file)` and `pickle.loads(bytes)` read differently.

The C unpickler reads a frame it does not already hold with one `read(n)`; an opcode whose
argument runs past that buffer loses the rest of it and reads the argument after the frame.
`pickle.loads` reads straight on. Hostile samples are assembled by hand here; benign ones are
written by the real picklers. Nothing is ever loaded: the engine's own stubs stand in for
every import in the reader-equivalence checks.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import pickle
import random
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from modelaudit.findings import ScanResult
from modelaudit.rules import pickle as R
from modelaudit.scanners.pickle.emulate import CUnpickler, run
from modelaudit.scanners.pickle.reader import Reader
from modelaudit.scanners.pickle.stubs import Session
from tests.pickle._pickle_corpus import Unseekable, critical, s, scan, sg

PAYLOAD = sg("os", "system") + s("id") + b"\x85R"


def _frame_header(length: int) -> bytes:
    return b"\x95" + struct.pack("<Q", length)


def hidden_in_file_reading(frame_len: int, form: str = "stack_global") -> bytes:
    """A frame whose last two bytes are BINBYTES and one byte of its length.

    Read from a file, the length is the 4 bytes after the frame (0: empty bytes) and the
    payload after them runs; read as bytes, the length is that byte plus 3 zeros and the
    payload is the content of the bytes object. Both end with `{}`.
    """
    body = PAYLOAD if form == "stack_global" else b"cos\nsystem\n" + s("id") + b"\x85R"
    hidden = body + b"0"
    filler = (b"N0" * frame_len)[: frame_len - 2]
    return (
        b"\x80\x05"
        + _frame_header(frame_len)
        + filler
        + b"B"
        + bytes([1 + len(hidden)])
        + b"\x00\x00\x00\x00"
        + hidden
        + b"0}."
    )


def hidden_in_bytes_reading() -> bytes:
    """The reverse: `pickle.loads` runs the payload, a file reading swallows it as data.

    The frame ends with BINBYTES and two bytes of its length. As bytes, the length is those
    two zeros and the two zeros after the frame (empty bytes), and the payload runs; from a
    file, the length is the four bytes after the frame, which reach into the payload.
    """
    frame = b"N0" * 8 + b"B\x00\x00"
    return b"\x80\x05" + _frame_header(len(frame)) + frame + b"\x00\x00" + PAYLOAD + b"0}."


def _rules(result: ScanResult) -> set[str]:
    return {i.rule for i in result.issues if i.rule}


@pytest.mark.parametrize("frame_len", [2, 16, 4095, 8192, 20000])
@pytest.mark.parametrize("form", ["stack_global", "global"])
def test_payload_only_a_file_reading_runs_is_critical(frame_len: int, form: str) -> None:
    result, _ = scan(hidden_in_file_reading(frame_len, form))
    assert R.FRAME_STRADDLE in _rules(result)
    assert any("os.system" in m for m in critical(result))
    straddle = next(i for i in result.issues if i.rule == R.FRAME_STRADDLE)
    readings = straddle.details["readings"]
    assert readings["pickle.loads(bytes)"]["imports"] == []
    assert "os.system" in readings["file object without peek (torch.load, io.BytesIO)"]["imports"]


def test_payload_only_the_bytes_reading_runs_is_critical() -> None:
    result, _ = scan(hidden_in_bytes_reading())
    assert R.FRAME_STRADDLE in _rules(result)
    found = [i for i in result.issues if "os.system" in i.message]
    assert found and all(i.details.get("interpretation") for i in found)
    assert {i.details["interpretation"] for i in found} >= {"pickle.loads(bytes)"}


def test_nested_frame_running_past_its_frame() -> None:
    inner = b"N0" + PAYLOAD + b"0"
    outer = b"N0N0" + _frame_header(len(inner))
    data = b"\x80\x05" + _frame_header(len(outer)) + outer + inner + b"}."
    # a frame that announces exactly its contents and is nested: both readings agree
    result, _ = scan(data)
    assert R.FRAME_STRADDLE not in _rules(result)
    assert critical(result)
    # the nested header straddles the outer frame's end: its length is read after it
    cut = b"N0N0\x95" + struct.pack("<Q", len(inner))[:3]
    data = b"\x80\x05" + _frame_header(len(cut)) + cut + struct.pack("<Q", len(inner))[3:]
    data += inner + b"}."
    result, _ = scan(data)
    assert R.FRAME_STRADDLE in _rules(result)
    assert any("os.system" in m for m in critical(result))


def test_text_line_straddling_a_frame() -> None:
    """A protocol-0 GLOBAL line split by the frame end: the file reading drops its start."""
    frame = b"N0cposix\nsys"
    data = b"\x80\x05" + _frame_header(len(frame)) + frame + b"tem\n" + s("id") + b"\x85R0}."
    result, _ = scan(data)
    assert R.FRAME_STRADDLE in _rules(result)
    assert critical(result)


def test_unseekable_source_is_read_again_from_its_record() -> None:
    from modelaudit.engine.dispatch import make_context
    from modelaudit.scanners.pickle import scan_pickle_stream

    result = ScanResult(scanner_name="pickle")
    stream: BinaryIO = io.BufferedReader(Unseekable(hidden_in_file_reading(16)))
    scan_pickle_stream(stream, result, location=lambda p: "x", ctx=make_context("x", {}))
    straddle = [i for i in result.issues if i.rule == R.FRAME_STRADDLE]
    assert straddle and "error" not in straddle[0].details["readings"].get("other readings", {})


@pytest.fixture
def torch_zip(tmp_path: Path) -> Path:
    import torch

    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(4)}, path)
    return path


def test_straddle_inside_torch_zip(torch_zip: Path, tmp_path: Path) -> None:
    from tests.containers._container_corpus import scan as scan_file

    out = tmp_path / "evil.pt"
    with zipfile.ZipFile(torch_zip) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data.pkl"):
                data = hidden_in_file_reading(16)
            dst.writestr(info, data)
    result = scan_file(out)
    assert R.FRAME_STRADDLE in _rules(result)
    assert any("os.system" in m for m in critical(result))


def test_straddle_inside_gzip_read_by_python_unpickler(tmp_path: Path) -> None:
    from tests.containers._container_corpus import scan as scan_file

    path = tmp_path / "model.pkl.gz"
    path.write_bytes(gzip.compress(hidden_in_file_reading(16)))
    result = scan_file(path)
    assert R.FRAME_STRADDLE in _rules(result)
    assert any("os.system" in m for m in critical(result))


# ---- benign: what the real picklers write never straddles


def _benign_objects() -> list[tuple[str, Any]]:
    import numpy as np

    return [
        ("big-str", {"text": "x" * 200_000, "n": list(range(100))}),
        ("big-bytes", {"blob": b"\x95" * 150_000, "ba": bytearray(b"\x95\x00" * 70_000)}),
        ("many-small", [{"id": i, "v": i * 0.5, "s": f"k{i}"} for i in range(30_000)]),
        ("numpy", {"a": np.arange(50_000, dtype=np.int64), "b": np.full(9, 0x95, np.uint8)}),
        ("frame-bytes", [struct.pack("<Q", 149) * 3 for _ in range(1000)]),
    ]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("pickler", ["c", "python"])
def test_real_picklers_never_straddle(protocol: int, pickler: str) -> None:
    for name, obj in _benign_objects():
        if pickler == "c":
            data = pickle.dumps(obj, protocol=protocol)
        else:
            buf = io.BytesIO()
            pickle._Pickler(buf, protocol=protocol).dump(obj)  # type: ignore[attr-defined]
            data = buf.getvalue()
        reader = Reader(io.BytesIO(data))
        session = Session(ScanResult(scanner_name="t"), lambda p: "", protocol)
        run(CUnpickler(reader, session), session, lambda n: contextlib.nullcontext())
        assert reader.straddle is None, name
        assert reader.pos == len(data), name
        result, _ = scan(data)
        assert R.FRAME_STRADDLE not in _rules(result), name


def test_real_torch_saves_are_quiet(tmp_path: Path) -> None:
    import torch

    from tests.containers._container_corpus import scan as scan_file

    for legacy in (False, True):
        path = tmp_path / f"m{legacy}.pt"
        state = {"w": torch.randn(300, 300), "name": "y" * 100_000}
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)
        result = scan_file(path)
        assert not result.issues or all(i.severity.value == "info" for i in result.issues)


# ---- our reader is read exactly as io.BytesIO is (the file object torch.load uses)


def _reading(source: Any) -> tuple[list[str], int, str | None, int]:
    session = Session(ScanResult(scanner_name="t"), lambda p: "", 5, joblib=True)
    error = None
    try:
        run(CUnpickler(source, session, size=1 << 20), session, lambda n: contextlib.nullcontext())
    except Exception as exc:
        error = type(exc).__name__
    return (
        session.globals,
        session.n_calls,
        error,
        source.tell() if hasattr(source, "tell") else source.pos,
    )


def _mutations(seed: int) -> list[bytes]:
    """Real framed pickles with FRAME opcodes of random lengths spliced in at random places."""
    rng = random.Random(seed)
    base = pickle.dumps([{"k": i, "s": "v" * (i % 7), "f": i / 3} for i in range(40)], protocol=4)
    out = []
    for _ in range(300):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(2, len(data))
            data[at:at] = _frame_header(rng.randint(0, 40))
        out.append(bytes(data))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_reader_reads_exactly_as_bytesio(seed: int) -> None:
    for data in _mutations(seed):
        reader = Reader(io.BytesIO(data))
        expected = _reading(io.BytesIO(data))
        got = _reading(reader)
        assert got[:3] == expected[:3]
        if expected[2] is None:
            assert got[3] == expected[3]
