"""Escaping paths and links, bombs, entry counts and nesting depth: the right finding, and the
scan ends (bounded memory and a generous deadline, never a hang)."""

from __future__ import annotations

import gc
import io
import os
import stat
import tarfile
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import py7zr
import pytest

from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import containers as crules
from tests.containers._container_corpus import Member, raw_zip, rules_of, scan, tar_bytes


def _tar_with(*infos: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for info, data in infos:
            info.size = len(data) if info.isfile() else 0
            tf.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buf.getvalue()


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, b""


@pytest.mark.parametrize(
    ("filename", "member"),
    [
        ("dotdot.zip", "../../home/user/.bashrc"),
        ("absolute.zip", "/etc/cron.d/job"),
        ("drive.zip", "C:\\Windows\\evil.dll"),
        ("backslash.zip", "models\\..\\..\\evil.py"),
    ],
)
def test_zip_path_traversal_is_critical(tmp_path: Path, filename: str, member: str) -> None:
    path = tmp_path / filename
    path.write_bytes(raw_zip([Member("ok/readme.txt", b"hi"), Member(member, b"x = 1\n")]))
    result = scan(path)
    hits = [i for i in result.issues if i.rule == crules.PATH_TRAVERSAL]
    assert hits and hits[0].severity is IssueSeverity.CRITICAL
    assert hits[0].details["member"] == member


def test_tar_path_traversal_is_critical(tmp_path: Path) -> None:
    path = tmp_path / "evil.tar"
    path.write_bytes(tar_bytes([("../../../tmp/owned.sh", b"echo\n"), ("ok.txt", b"hi")]))
    assert crules.PATH_TRAVERSAL in rules_of(scan(path))


def test_inner_dotdot_that_stays_inside_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "fine.zip"
    path.write_bytes(raw_zip([Member("a/b/../c.txt", b"hi")]))
    assert crules.PATH_TRAVERSAL not in rules_of(scan(path))


@pytest.mark.parametrize(
    ("name", "target", "kind"),
    [
        ("model/config.json", "/etc/passwd", tarfile.SYMTYPE),
        ("model/weights.bin", "../../../../root/.ssh/id_rsa", tarfile.SYMTYPE),
        ("model/hard", "../outside", tarfile.LNKTYPE),
        ("hard_abs", "/etc/shadow", tarfile.LNKTYPE),
    ],
)
def test_tar_link_escape_is_critical(tmp_path: Path, name: str, target: str, kind: bytes) -> None:
    path = tmp_path / "links.tar"
    path.write_bytes(_tar_with(_link(name, target, kind)))
    result = scan(path)
    hits = [i for i in result.issues if i.rule == crules.LINK_ESCAPE]
    assert hits and hits[0].severity is IssueSeverity.CRITICAL


def test_tar_link_inside_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "links.tar"
    data = b"hi"
    info = tarfile.TarInfo("model/a.txt")
    path.write_bytes(_tar_with((info, data), _link("model/b.txt", "a.txt", tarfile.SYMTYPE)))
    assert crules.LINK_ESCAPE not in rules_of(scan(path))


def test_zip_symlink_escape_is_critical(tmp_path: Path) -> None:
    path = tmp_path / "link.zip"
    mode = (stat.S_IFLNK | 0o777) << 16
    path.write_bytes(
        raw_zip([Member("model/cfg", b"../../../etc/passwd", external_attr=mode, create_system=3)])
    )
    assert crules.LINK_ESCAPE in rules_of(scan(path))


def test_tar_device_file_is_warned(tmp_path: Path) -> None:
    info = tarfile.TarInfo("dev/mem")
    info.type = tarfile.CHRTYPE
    path = tmp_path / "dev.tar"
    path.write_bytes(_tar_with((info, b"")))
    assert crules.SPECIAL_FILE in rules_of(scan(path))


def _zeros_deflate(size: int, wbits: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, wbits)
    chunk = b"\x00" * (1 << 20)
    out = [comp.compress(chunk) for _ in range(size >> 20)]
    return b"".join(out) + comp.flush()


def _bounded(path: Path, **config: object) -> tuple[set[str], FileStatus, float]:
    start = time.monotonic()
    result = scan(path, **config)
    return rules_of(result), result.status, time.monotonic() - start


def test_gzip_bomb_stops_on_ratio(tmp_path: Path) -> None:
    path = tmp_path / "bomb.gz"
    path.write_bytes(_zeros_deflate(200 << 20, 31))
    found, status, elapsed = _bounded(path)
    assert crules.DECOMPRESSION_BOMB in found
    assert status is FileStatus.INCONCLUSIVE
    assert elapsed < 60


def test_zip_bomb_member_stops_on_ratio(tmp_path: Path) -> None:
    body = _zeros_deflate(128 << 20, -15)
    import struct

    # A deflated member whose central entry declares a tiny size: only the stream tells.
    member = Member("zeros.bin", b"")
    data = raw_zip([member])
    local_end = 30 + len(b"zeros.bin")
    cd_start = data.index(b"PK\x01\x02")
    local = bytearray(data[:local_end])
    central = bytearray(data[cd_start:])
    struct.pack_into("<H", local, 8, 8)
    struct.pack_into("<L", local, 18, len(body))
    struct.pack_into("<H", central, 10, 8)
    struct.pack_into("<L", central, 20, len(body))
    eocd = central.index(b"PK\x05\x06")
    struct.pack_into("<L", central, eocd + 16, len(local) + len(body))
    path = tmp_path / "bomb.zip"
    path.write_bytes(bytes(local) + body + bytes(central))
    found, status, elapsed = _bounded(path)
    assert crules.DECOMPRESSION_BOMB in found
    assert status is FileStatus.INCONCLUSIVE
    assert elapsed < 60


def test_expanded_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.tar.gz"
    path.write_bytes(tar_bytes([(f"f{i}.bin", bytes(range(256)) * 4096) for i in range(8)], "w:gz"))
    found, status, _ = _bounded(path, max_expanded_size=3 << 20)
    assert crules.DECOMPRESSION_BOMB in found
    assert status is FileStatus.INCONCLUSIVE


def test_declared_zip_size_over_budget(tmp_path: Path) -> None:
    path = tmp_path / "declared.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.bin", b"\x00" * (4 << 20))
    found, status, _ = _bounded(path, max_expanded_size=1 << 20)
    assert crules.DECOMPRESSION_BOMB in found
    assert status is FileStatus.INCONCLUSIVE


def test_entry_count_limit(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    path.write_bytes(raw_zip([Member(f"f{i}.txt", b"x") for i in range(50)]))
    found, status, _ = _bounded(path, max_archive_entries=10)
    assert crules.TOO_MANY_ENTRIES in found
    assert status is FileStatus.INCONCLUSIVE


def test_depth_limit(tmp_path: Path) -> None:
    data = b"plain"
    for level in range(6):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(f"level{level}.zip" if level else "leaf.txt", data)
        data = buf.getvalue()
    path = tmp_path / "deep.zip"
    path.write_bytes(data)
    found, status, _ = _bounded(path, max_depth=3)
    assert crules.DEPTH_LIMIT in found
    assert status is FileStatus.INCONCLUSIVE
    found, status, _ = _bounded(path, max_depth=10)
    assert crules.DEPTH_LIMIT not in found


def test_no_temp_files_left_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    path = tmp_path / "x.tar.gz"
    path.write_bytes(tar_bytes([("a.json", b"{}"), ("b/c.npy", b"x")], "w:gz"))
    scan(path)
    assert list(spool.iterdir()) == []


def test_overlapping_entries_are_reported_and_bounded(tmp_path: Path) -> None:
    """Fifield-style bomb: many central entries share one highly compressed kernel."""
    import struct

    kernel = _zeros_deflate(4 << 20, -15)
    name = b"k.bin"
    local = struct.pack(
        "<4sHHHHHLLLHH", b"PK\x03\x04", 20, 0, 8, 0, 0x21, 0, len(kernel), 4 << 20, len(name), 0
    )
    body = local + name + kernel
    central = b""
    count = 400
    for i in range(count):
        member = f"m{i:04d}.bin".encode()
        central += struct.pack(
            "<4sHHHHHHLLLHHHHHLL",
            b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, 0, len(kernel), 4 << 20,
            len(member), 0, 0, 0, 0, 0, 0,
        ) + member  # fmt: skip
    eocd = struct.pack("<4sHHHHLLH", b"PK\x05\x06", 0, 0, count, count, len(central), len(body), 0)
    path = tmp_path / "overlap.zip"
    path.write_bytes(body + central + eocd)
    found, status, elapsed = _bounded(path)
    assert crules.ZIP_ANOMALY in found
    assert crules.DECOMPRESSION_BOMB in found
    assert status is FileStatus.INCONCLUSIVE
    assert elapsed < 120


def test_a_corrupt_7z_member_leaves_no_file_open(tmp_path: Path) -> None:
    """py7zr raises mid-member (CRC error): the member's spool file is closed all the same."""
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        archive.writestr(os.urandom(200_000) + b"A" * 400_000, "a.bin")
    data = bytearray(buf.getvalue())
    for i in range(5000, 5064):
        data[i] ^= 0xFF
    path = tmp_path / "bad.7z"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = scan(path)
        gc.collect()
    assert result.status is FileStatus.INCONCLUSIVE
    assert "7z" in (result.status_reason or "")
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
