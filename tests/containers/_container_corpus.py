"""Builders for container test files: raw zips with controlled defects, payload pickles,
legacy torch layouts, npy headers. Payloads are built from opcode bytes or `pickle.dumps` of
objects with a custom `__reduce__`; nothing here ever loads a pickle."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import struct
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch
from modelaudit.findings import IssueSeverity, ScanResult

JOBLIB_COMPRESSORS = ["zlib", "gzip", "bz2", "lzma", "xz", "lz4"]


def scan(path: str | Path, **overrides: Any) -> ScanResult:
    config = ScanConfig().scanner_config()
    config.update(overrides)
    return dispatch.scan_path(str(path), config, explicit=True)


def criticals(result: ScanResult) -> list[str]:
    return [i.message for i in result.issues if i.severity is IssueSeverity.CRITICAL]


def rules_of(result: ScanResult) -> set[str]:
    return {i.rule for i in result.issues if i.rule}


PROTO0_PAYLOAD = b"cos\nsystem\n(S'echo pwned'\ntR."


class Evil:
    """Pickles as a call to os.system; only ever dumped, never loaded."""

    def __init__(self, cmd: str = "echo pwned") -> None:
        self.cmd = cmd

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.cmd,))


def payload(protocol: int = 2) -> bytes:
    if protocol == 0:
        return PROTO0_PAYLOAD
    return pickle.dumps(Evil(), protocol=protocol)


def eval_pickle(expr: str) -> bytes:
    """A protocol-2 pickle that calls builtins.eval(expr)."""
    arg = expr.encode()
    return b"\x80\x02cbuiltins\neval\nX" + struct.pack("<I", len(arg)) + arg + b"\x85R."


@dataclass
class Member:
    name: str
    data: bytes
    method: int = 0
    local_name: str | None = None
    crc: int | None = None
    flags: int = 0
    external_attr: int = 0
    create_system: int = 0
    #: The bytes stored for the member when they are not `data` itself (encrypted data).
    stored: bytes | None = None


def raw_zip(members: list[Member], prefix: bytes = b"") -> bytes:
    """A zip written byte by byte so tests control duplicates, CRCs, flags and names."""
    out = io.BytesIO()
    out.write(prefix)
    central = io.BytesIO()
    for m in members:
        body = m.data if m.stored is None else m.stored
        if m.method == 8 and m.stored is None:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            body = c.compress(m.data) + c.flush()
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        name = m.name.encode()
        lname = (m.local_name if m.local_name is not None else m.name).encode()
        offset = out.tell() - len(prefix)
        out.write(
            struct.pack(
                "<4sHHHHHLLLHH",
                b"PK\x03\x04",
                20,
                m.flags,
                m.method,
                0,
                0x21,
                crc,
                len(body),
                len(m.data),
                len(lname),
                0,
            )
        )
        out.write(lname + body)
        central.write(
            struct.pack(
                "<4sHHHHHHLLLHHHHHLL",
                b"PK\x01\x02",
                (m.create_system << 8) | 20,
                20,
                m.flags,
                m.method,
                0,
                0x21,
                crc,
                len(body),
                len(m.data),
                len(name),
                0,
                0,
                0,
                0,
                m.external_attr,
                offset,
            )
        )
        central.write(name)
    cd = central.getvalue()
    cd_offset = out.tell() - len(prefix)
    out.write(cd)
    out.write(
        struct.pack(
            "<4sHHHHLLH", b"PK\x05\x06", 0, 0, len(members), len(members), len(cd), cd_offset, 0
        )
    )
    return out.getvalue()


def zip64_split_end(torch_members: list[Member], zipfile_members: list[Member]) -> bytes:
    """A zip whose zip64 locator names one end record (read by torch's miniz) while the record
    right before the locator, which Python's zipfile reads whatever the locator says,
    describes another central directory."""
    whole = raw_zip(torch_members + zipfile_members)
    eocd = whole.rindex(b"PK\x05\x06")
    (cd_offset,) = struct.unpack_from("<L", whole, eocd + 16)
    cd, pos = whole[cd_offset:eocd], 0
    for _ in torch_members:
        pos += 46 + struct.unpack_from("<H", cd, pos + 28)[0]
    out = io.BytesIO()
    out.write(whole[:cd_offset] + cd[:pos])

    def zip64_end(count: int, size: int, offset: int) -> bytes:
        return struct.pack(
            "<4sQHHLLQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset
        )

    torch_end = out.tell()
    out.write(zip64_end(len(torch_members), pos, cd_offset))
    zipfile_cd = out.tell()
    out.write(cd[pos:])
    out.write(zip64_end(len(zipfile_members), len(cd) - pos, zipfile_cd))
    out.write(struct.pack("<4sLQL", b"PK\x06\x07", 0, torch_end, 1))
    out.write(
        struct.pack(
            "<4sHHHHLLH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, ~0 & 0xFFFFFFFF, ~0 & 0xFFFFFFFF, 0
        )
    )
    return out.getvalue()


def zipcrypto(data: bytes, password: bytes, crc: int, seed: int = 7) -> bytes:
    """`data` encrypted with traditional PKWARE encryption (what `zip -e` writes): a
    12-byte header whose last byte is the CRC's high byte, then the scrambled bytes."""
    keys = [0x12345678, 0x23456789, 0x34567890]

    def update(b: int) -> None:
        keys[0] = _crc32_step(keys[0], b)
        keys[1] = (keys[1] + (keys[0] & 0xFF)) & 0xFFFFFFFF
        keys[1] = (keys[1] * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = _crc32_step(keys[2], keys[1] >> 24)

    for b in password:
        update(b)
    header = bytes((seed * 31 + i * 17) & 0xFF for i in range(11)) + bytes([crc >> 24])
    out = bytearray()
    for b in header + data:
        k = keys[2] | 2
        out.append(b ^ (((k * (k ^ 1)) >> 8) & 0xFF))
        update(b)
    return bytes(out)


def _crc32_step(c: int, b: int) -> int:
    """One byte of the raw (unconditioned) CRC-32 update PKWARE encryption uses."""
    c ^= b
    for _ in range(8):
        c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
    return c


def zip_members(path: str) -> list[Member]:
    """The members of a real zip (read as bytes, never interpreted)."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        return [Member(i.filename, zf.read(i.filename)) for i in zf.infolist()]


def split_pickles(data: bytes, count: int) -> tuple[list[bytes], bytes]:
    """The first `count` pickles of a stacked stream and the bytes after them."""
    parts: list[bytes] = []
    pos = 0
    for _ in range(count):
        end = pos
        for op, _arg, at in pickletools.genops(io.BytesIO(data[pos:])):
            if op.name == "STOP" and at is not None:
                end = pos + at + 1
                break
        parts.append(data[pos:end])
        pos = end
    return parts, data[pos:]


def npy_bytes(descr: object, shape: tuple[int, ...], data: bytes) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    pad = 64 - (10 + len(header) + 1) % 64
    header += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def _int_pickle(n: int) -> bytes:
    return b"\x80\x02J" + struct.pack("<i", n) + b"."


def legacy_tar(
    pickle_member: bytes | None = None,
    sys_info: bytes | None = None,
    storages_count: bytes | None = None,
    tensor_args: bytes | None = None,
) -> bytes:
    """PyTorch's legacy tar checkpoint layout: one float storage of 4 elements, one tensor."""
    args = b"\x80\x02X\x01\x00\x00\x000X\x03\x00\x00\x00cpuctorch\nFloatStorage\n\x87."
    storages = (
        (storages_count or _int_pickle(1))
        + args
        + struct.pack("<q", 4)
        + b"\x00" * 16
        + pickle.dumps([], protocol=2)
    )
    tensor_args = (
        tensor_args or b"\x80\x02X\x01\x00\x00\x001X\x01\x00\x00\x000ctorch\nFloatTensor\n\x87."
    )
    tensors = (
        _int_pickle(1)
        + tensor_args
        + struct.pack("<ii", 1, 0)
        + struct.pack("<q", 4)
        + struct.pack("<q", 1)
        + struct.pack("<q", 0)
    )
    main = pickle_member or pickle.dumps({"weight": 1}, protocol=2)
    info = sys_info or pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in (
            ("sys_info", info),
            ("pickle", main),
            ("tensors", tensors),
            ("storages", storages),
        ):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def tar_bytes(members: list[tuple[str, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:  # type: ignore[call-overload]
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def two_directory_zip(name: str, torch_view: bytes, zipfile_view: bytes) -> bytes:
    """One member of the same name in each of `two_directories`' views."""
    return two_directories([(name, torch_view)], [(name, zipfile_view)])


def two_directories(
    torch_view: list[tuple[str, bytes]], zipfile_view: list[tuple[str, bytes]]
) -> bytes:
    """A zip with two central directories: the end record's raw offset (read by miniz, so by
    torch) points at the first, zipfile's prepended-data adjustment lands on the second.

    The first directory must not be longer than the second (the end record's size covers
    it) and its members' bytes not shorter (the second's shifted offsets stay positive):
    the same names with data at least as long do."""

    def local(name: bytes, data: bytes) -> bytes:
        head = struct.pack(
            "<4sHHHHHLLLHH", b"PK\x03\x04", 20, 0, 0, 0, 0x21, zlib.crc32(data),
            len(data), len(data), len(name), 0,
        )  # fmt: skip
        return head + name + data

    def central(name: bytes, data: bytes, offset: int) -> bytes:
        head = struct.pack(
            "<4sHHHHHHLLLHHHHHLL", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, zlib.crc32(data),
            len(data), len(data), len(name), 0, 0, 0, 0, 0, offset,
        )  # fmt: skip
        return head + name

    first, cd1 = b"", b""
    for name, data in torch_view:
        cd1 += central(name.encode(), data, len(first))
        first += local(name.encode(), data)
    seconds = [local(name.encode(), data) for name, data in zipfile_view]
    start = len(first) + len(cd1)
    concat = start + sum(map(len, seconds)) - len(first)
    assert start >= concat, "the first view's members must not be shorter"
    cd2, at = b"", start
    for (name, data), block in zip(zipfile_view, seconds, strict=True):
        cd2 += central(name.encode(), data, at - concat)
        at += len(block)
    assert len(cd1) <= len(cd2), "the first directory must not be longer"
    count = len(zipfile_view)
    eocd = struct.pack("<4sHHHHLLH", b"PK\x05\x06", 0, 0, count, count, len(cd2), len(first), 0)
    return first + cd1 + b"".join(seconds) + cd2 + eocd
