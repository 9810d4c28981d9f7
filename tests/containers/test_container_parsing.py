"""The building blocks on their own: zip directory reader, bounded decompressor, npy header."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from modelaudit.formats import Format, sniff, sniff_head
from modelaudit.formats.npy import NpyError, read_header
from modelaudit.formats.zipdir import ZipFormatError, read_directory
from modelaudit.scanners.containers.compressed_scanner import inner_name
from modelaudit.scanners.containers.decompress import open_stream
from modelaudit.scanners.containers.members import link_escape, path_escape
from modelaudit.scanners.containers.zip_members import crc_matches, open_member
from tests.containers._container_corpus import (
    Member,
    npy_bytes,
    raw_zip,
    two_directory_zip,
    zip64_split_end,
)


def _directory(data: bytes):  # type: ignore[no-untyped-def]
    return read_directory(io.BytesIO(data), len(data))


def test_directory_lists_duplicates_and_reads_each() -> None:
    data = raw_zip([Member("a/data.pkl", b"first"), Member("a/data.pkl", b"second", method=8)])
    directory = _directory(data)
    assert [e.name for e in directory.entries] == ["a/data.pkl", "a/data.pkl"]
    assert any("duplicate" in a for a in directory.anomalies)
    f = io.BytesIO(data)
    contents = [open_member(f, e, limit=1 << 20)[0].read() for e in directory.entries]
    assert contents == [b"first", b"second"]


def test_name_mismatch_and_bad_crc_are_visible() -> None:
    data = raw_zip([Member("x/data.pkl", b"payload", local_name="x/other", crc=1)])
    f = io.BytesIO(data)
    (entry,) = _directory(data).entries
    stream, _raw, anomaly = open_member(f, entry, limit=100)
    assert stream.read() == b"payload"
    assert anomaly and "x/other" in anomaly
    assert crc_matches(f, entry, 100) is False


def test_prepended_data_is_handled_like_zipfile() -> None:
    data = raw_zip([Member("m.txt", b"hello")], prefix=b"JUNK" * 100)
    (entry,) = _directory(data).entries
    assert open_member(io.BytesIO(data), entry, limit=100)[0].read() == b"hello"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("m.txt") == b"hello"


def test_both_directories_of_a_shifted_zip_are_read() -> None:
    data = two_directory_zip("a/data.pkl", b"TORCH-SEES-THIS", b"ZIPFILE-SEES")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("a/data.pkl") == b"ZIPFILE-SEES"
    directory = _directory(data)
    f = io.BytesIO(data)
    contents = {open_member(f, e, limit=100)[0].read() for e in directory.entries}
    assert contents == {b"TORCH-SEES-THIS", b"ZIPFILE-SEES"}
    assert any("second central directory" in a for a in directory.anomalies)


def test_zip64_end_record_zipfile_reads_is_read_beside_the_one_the_locator_names() -> None:
    data = zip64_split_end(
        [Member("a/data.pkl", b"TORCH-SEES")], [Member("b.pkl", b"ZIPFILE-SEES")]
    )
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["b.pkl"]
        assert zf.read("b.pkl") == b"ZIPFILE-SEES"
    directory = _directory(data)
    assert directory.names == ["b.pkl", "a/data.pkl"]
    assert directory.primary == 1
    f = io.BytesIO(data)
    contents = [open_member(f, e, limit=100)[0].read() for e in directory.entries]
    assert contents == [b"ZIPFILE-SEES", b"TORCH-SEES"]
    assert any("zip64 locator" in a for a in directory.anomalies)


@pytest.mark.parametrize(
    "method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
)
def test_every_zipfile_method_is_decoded(method: int) -> None:
    buf = io.BytesIO()
    payload = bytes(range(256)) * 300
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        zf.writestr("m.bin", payload)
    data = buf.getvalue()
    (entry,) = _directory(data).entries
    stream, raw, _ = open_member(io.BytesIO(data), entry, limit=1 << 20)
    assert stream.read() == payload
    assert raw is None or raw.clean_end


def test_zip64_directory() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", allowZip64=True) as zf:
        with zf.open("big.bin", "w", force_zip64=True) as out:
            out.write(b"abc")
        zf.writestr("small.txt", b"x")
    data = buf.getvalue()
    directory = _directory(data)
    assert directory.names == ["big.bin", "small.txt"]
    assert open_member(io.BytesIO(data), directory.entries[0], limit=10)[0].read() == b"abc"


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04" + b"\x00" * 40, b"not a zip at all" * 10])
def test_unreadable_directory_raises(data: bytes) -> None:
    with pytest.raises(ZipFormatError):
        _directory(data)


@pytest.mark.parametrize(
    ("kind", "compress"),
    [
        ("gzip", gzip.compress),
        ("zlib", zlib.compress),
        ("bzip2", bz2.compress),
        ("xz", lzma.compress),
        ("lzma", lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE)),
    ],
)
def test_decompressor_round_trip_and_concatenation(kind: str, compress) -> None:  # type: ignore[no-untyped-def]
    data = bytes(range(256)) * 1000
    blob = compress(data) + (compress(b"tail") if kind not in ("lzma",) else b"")
    raw, stream = open_stream(io.BytesIO(blob), kind, limit=1 << 24)
    out = stream.read()
    assert out.startswith(data)
    assert raw.clean_end
    if kind != "lzma":
        assert out.endswith(b"tail")


def test_lz4_frames() -> None:
    import lz4.frame

    blob = lz4.frame.compress(b"a" * 5000) + lz4.frame.compress(b"b")
    _raw, stream = open_stream(io.BytesIO(blob), "lz4", limit=1 << 20)
    assert stream.read() == b"a" * 5000 + b"b"


def _lz4_skippable(data: bytes) -> bytes:
    return struct.pack("<II", 0x184D2A5F, len(data)) + data


def test_lz4_reads_on_past_a_skippable_frame_as_lz4_frame_file_does() -> None:
    """joblib reads `.lz4` through `LZ4FrameFile`, whose `_compression.DecompressReader`
    starts a new decompressor on whatever follows a frame; a skippable frame is a frame
    to `LZ4FrameDecompressor`. The reader stopped there and called the rest trailing."""
    import lz4.frame

    blob = lz4.frame.compress(b"a" * 5000) + _lz4_skippable(b"x") + lz4.frame.compress(b"b")
    raw, stream = open_stream(io.BytesIO(blob), "lz4", limit=1 << 20)
    assert stream.read() == b"a" * 5000 + b"b"
    assert raw.clean_end and not raw.trailing
    raw, stream = open_stream(
        io.BytesIO(lz4.frame.compress(b"a") + _lz4_skippable(b"")), "lz4", limit=1 << 20
    )
    assert stream.read() == b"a"
    assert raw.clean_end and not raw.trailing


def test_next_member_whose_magic_straddles_a_read_chunk_is_read() -> None:
    """A gzip member ending one byte before a 1 MiB read boundary left one byte of the next
    member's magic in hand: the magic test failed and the rest was dropped as trailing."""
    from modelaudit.scanners.containers.decompress import CHUNK

    n = CHUNK - 2000
    while len(gzip.compress(b"A" * n, compresslevel=0, mtime=0)) < CHUNK - 1:
        n += 1
    first = gzip.compress(b"A" * n, compresslevel=0, mtime=0)
    assert len(first) == CHUNK - 1
    raw, stream = open_stream(io.BytesIO(first + gzip.compress(b"tail")), "gzip", limit=1 << 30)
    assert stream.read().endswith(b"tail")
    assert not raw.trailing


def test_decompressor_limits_and_corruption() -> None:
    blob = gzip.compress(b"\x00" * (1 << 20))
    raw, stream = open_stream(io.BytesIO(blob), "gzip", limit=1000)
    assert len(stream.read()) <= 1000
    assert raw.limit_hit and "limit" in raw.limit_hit
    raw, stream = open_stream(io.BytesIO(blob), "gzip", limit=1 << 30, max_ratio=10, ratio_floor=0)
    stream.read()
    assert raw.limit_hit and "ratio" in raw.limit_hit
    raw, stream = open_stream(io.BytesIO(blob[: len(blob) // 2]), "gzip", limit=1 << 30)
    stream.read()
    assert raw.truncated and not raw.clean_end
    raw, stream = open_stream(io.BytesIO(blob[:10] + b"\xff" * 50), "gzip", limit=1 << 30)
    stream.read()
    assert raw.error


def test_npy_header_parsing() -> None:
    header = read_header(io.BytesIO(npy_bytes("<f4", (3, 4), b"\x00" * 48)))
    assert (header.shape, header.itemsize, header.has_object) == ((3, 4), 4, False)
    assert header.data_size == 48
    header = read_header(io.BytesIO(npy_bytes("|O", (2,), b"")))
    assert header.has_object
    structured = npy_bytes([("a", "<i4"), ("b", "|O", (2,))], (1,), b"")
    assert read_header(io.BytesIO(structured)).has_object
    for bad in (b"\x93NUMPY\x09\x00", b"\x93NUMPY\x01\x00\xff\xff", npy_bytes("<zz", (1,), b"")):
        with pytest.raises(NpyError):
            read_header(io.BytesIO(bad))
    hostile = b"\x93NUMPY\x01\x00" + struct.pack("<H", 30) + b"__import__('os').system('x')  \n"
    with pytest.raises(NpyError):
        read_header(io.BytesIO(hostile))


@pytest.mark.parametrize(
    ("name", "escapes"),
    [
        ("a/b.txt", False),
        ("a/../b.txt", False),
        ("./a", False),
        ("../a", True),
        ("a/../../b", True),
        ("/etc/passwd", True),
        ("\\\\server\\share", True),
        ("C:/x", True),
        ("c:x", True),
        ("a\\..\\..\\x", True),
    ],
)
def test_path_escape(name: str, escapes: bool) -> None:
    assert bool(path_escape(name)) is escapes


def test_link_escape() -> None:
    assert link_escape("a/b/link", "../c", hard=False) is None
    assert link_escape("a/link", "../../c", hard=False)
    assert link_escape("a/b/link", "../c", hard=True)
    assert link_escape("x", "/etc/passwd", hard=False)


def test_old_joblib_zfile_is_sniffed_and_names_are_unwrapped() -> None:
    assert sniff_head(b"ZF0x1f               x\x9c", "m.pkl") == Format.ZLIB
    assert inner_name("dir/model.pkl.gz") == "model.pkl"
    assert inner_name("a.tgz") == "a.tar"
    assert inner_name("model.joblib") == "model.joblib"


def test_sniff_gate_lets_through_every_head_a_signature_check_matches() -> None:
    """`sniff_head` skips the signature checks when the first byte starts none of them; a
    head one of them matches must never be skipped (every first byte, behind the tail of
    every signature and of the checks written out)."""
    tables = (*sniff._SIGNATURES_FIRST, *sniff._SIGNATURES_THEN)
    tails = {sig[1:] for sig, _ in tables} | {m[1:] for m in sniff._EXEC_MAGICS}
    tails |= {b"\x04" + b"\x00" * 300, b"Z\x90\x00", b"!/usr/bin/python\n", b"\x00" * 8}
    tar = bytearray(300)
    tar[257:262] = b"ustar"
    tflite = b"\x00\x00\x00TFL3" + b"\x00" * 8
    matched = 0
    for first in range(256):
        for tail in (*tails, bytes(tar[1:]), tflite[1:]):
            head = bytes([first]) + tail
            for name in ("", "model.bin", "run.py"):
                if sniff._by_magic(head, name) is not None:
                    matched += 1
                    assert sniff._may_have_magic(head), (head[:12], name)
    assert matched > len(tables) * 3


def test_containers_holding_nothing_say_so_under_a_rule(tmp_path: Path) -> None:
    """An empty compressed stream and a PyTorch zip without a pickle record were the only
    findings with no rule id (MA0000 in SARIF)."""
    from modelaudit.engine import dispatch
    from modelaudit.rules import containers as crules

    empty = tmp_path / "weights.pkl.gz"
    empty.write_bytes(gzip.compress(b""))
    torchy = tmp_path / "model.pt"
    with zipfile.ZipFile(torchy, "w") as z:
        z.writestr("model/version", "3\n")
        z.writestr("model/byteorder", "little")
        z.writestr("model/data/0", b"\0" * 16)
    for path in (empty, torchy):
        result = dispatch.scan_path(str(path), {}, explicit=True)
        assert [i.rule for i in result.issues] == [crules.CONTAINER_WITHOUT_CONTENT], (
            path.name,
            result.issues,
        )
