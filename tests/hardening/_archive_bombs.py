"""Archive bombs that defeat a budget kept per container: each level or member is modest,
the total is not. Built by streaming; never extracted by the builders themselves.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from collections.abc import Iterator

MB = 1 << 20


def _zeros(total: int, chunk: int = 4 * MB) -> Iterator[bytes]:
    block = bytes(chunk)
    left = total
    while left > 0:
        yield block[: min(chunk, left)]
        left -= chunk


def _deflated_zeros_zip(names: list[str], size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in names:
            with zf.open(name, "w", force_zip64=size >= 2**31) as member:
                for chunk in _zeros(size):
                    member.write(chunk)
    return buf.getvalue()


def nested_fanout_zip(
    path: str, *, levels: int = 3, fanout: int = 8, leaf: int = MB, first: bytes | None = None
) -> None:
    """42.zip-style: `levels` levels of `fanout` zips, the last holding `fanout` members of
    `leaf` zeros each (fanout**levels * leaf bytes in all). `first`, when given, is written
    as the top level's first member (`evil.pkl`), so its findings must survive the bomb."""
    data = _deflated_zeros_zip([f"{i}.bin" for i in range(fanout)], leaf)
    for level in range(levels - 1):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            if first is not None and level == levels - 2:
                zf.writestr("evil.pkl", first)
            for i in range(fanout):
                zf.writestr(f"{i}.zip", data)
        data = buf.getvalue()
    with open(path, "wb") as f:
        f.write(data)


def keras_of_zeros(path: str, *, members: int = 8, size: int = 1 << 30) -> None:
    """A .keras whose weights members are each `size` bytes of zeros, deflated."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("metadata.json", '{"keras_version": "3.5.0"}')
        zf.writestr("config.json", '{"class_name": "Sequential", "config": {"layers": []}}')
        for i in range(members):
            with zf.open(f"model{i}.weights.h5", "w", force_zip64=True) as member:
                for chunk in _zeros(size):
                    member.write(chunk)


def overlapping_zip(path: str, *, count: int = 2000, size: int = 16 * MB) -> None:
    """`count` central-directory entries all pointing at one deflated member of zeros."""
    raw = _deflated_zeros_zip(["a.bin"], size)
    cd_start = raw.rfind(b"PK\x01\x02")
    eocd = raw.rfind(b"PK\x05\x06")
    entry = raw[cd_start:eocd]
    name_len = struct.unpack_from("<H", entry, 28)[0]
    entries = b"".join(
        entry[:46] + f"{i:0{name_len}d}"[-name_len:].encode() + entry[46 + name_len :]
        for i in range(count)
    )
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, len(entries), cd_start, 0)
    with open(path, "wb") as f:
        f.write(raw[:cd_start] + entries + end)


def _octal(value: int, width: int) -> bytes:
    return f"{value:0{width - 1}o}".encode() + b"\0"


def gnu_sparse_tar(path: str, *, announced: int = 6 << 30, data: bytes = b"x" * 512) -> None:
    """A GNU sparse ('S') member: `data` at offset 0, then a hole up to `announced` bytes.
    The archive is a few KB; extracting the member naively writes `announced` bytes."""
    stored = len(data) + (-len(data)) % 512
    header = bytearray(512)
    header[0:100] = b"weights.pkl".ljust(100, b"\0")
    header[100:108] = _octal(0o644, 8)
    header[108:116] = _octal(0, 8)
    header[116:124] = _octal(0, 8)
    header[124:136] = _octal(stored, 12)
    header[136:148] = _octal(0, 12)
    header[156:157] = b"S"
    header[257:265] = b"ustar  \0"
    header[386:398] = _octal(0, 12)
    header[398:410] = _octal(len(data), 12)
    header[482] = 0
    header[483:495] = _octal(announced, 12)
    header[148:156] = b" " * 8
    header[148:156] = f"{sum(header):06o}".encode() + b"\0 "
    with open(path, "wb") as f:
        f.write(bytes(header) + data.ljust(stored, b"\0") + bytes(1024))


def nested_torch_in_npz(path: str, *, size: int = 256 * MB) -> None:
    """An .npz whose member is a zip (torch-like) holding a deflated pickle of zeros."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("archive/data.pkl", "w", force_zip64=True) as member:
            member.write(b"\x80\x04\x8e" + struct.pack("<Q", size))
            for chunk in _zeros(size):
                member.write(chunk)
            member.write(b"\x94.")
        zf.writestr("archive/version", "3\n")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inner.pt", inner.getvalue())


def build_archive_bombs(folder: str) -> dict[str, str]:
    """The full-size set of issue 11 (42 KB-class nesting, 8 x 1 GiB .keras, 6 GiB sparse
    tar...), for the benchmark; tests use smaller ones."""
    paths = {
        "42.zip": (nested_fanout_zip, {"levels": 5, "fanout": 16, "leaf": 64 * MB}),
        "zeros.keras": (keras_of_zeros, {}),
        "sparse.tar": (gnu_sparse_tar, {}),
        "overlap.keras": (overlapping_zip, {}),
        "nested.npz": (nested_torch_in_npz, {}),
    }
    out = {}
    for name, (build, kwargs) in paths.items():
        target = os.path.join(folder, name)
        build(target, **kwargs)  # type: ignore[operator]
        out[name] = target
    return out
