"""Resource bombs per format: tiny files that expand, nest or count without bound.

Built by streaming (compressors fed chunk by chunk), so building them is cheap too.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator

MB = 1 << 20
#: Expanded size of each compression bomb; the scans run with a much smaller max_expanded_size.
BOMB_SIZE = 256 * MB


def _zeros(total: int, chunk: int = 4 * MB) -> Iterator[bytes]:
    block = bytes(chunk)
    left = total
    while left > 0:
        yield block[: min(chunk, left)]
        left -= chunk


def _pickle_of_zeros(total: int) -> Iterator[bytes]:
    """A protocol-4 pickle of one huge bytes object, as a stream."""
    yield b"\x80\x04\x8e" + struct.pack("<Q", total)
    yield from _zeros(total)
    yield b"\x94."


def _write_compressed(path: str, compressor: object, chunks: Iterator[bytes]) -> None:
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(compressor.compress(chunk))  # type: ignore[attr-defined]
        f.write(compressor.flush())  # type: ignore[attr-defined]


def zip_ratio(path: str) -> None:
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("weights.bin", "w", force_zip64=True) as member,
    ):
        for chunk in _zeros(BOMB_SIZE):
            member.write(chunk)


def zip_nested(path: str, levels: int = 12) -> None:
    data = pickle.dumps({"ok": 1})
    name = "model.pkl"
    for level in range(levels):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(name, data)
        data, name = buf.getvalue(), f"level{level}.zip"
    with open(path, "wb") as f:
        f.write(data)


def zip_many_entries(path: str, count: int = 30000) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(count):
            zf.writestr(f"e/{i}.txt", b"")


def zip_overlapping(path: str, count: int = 2000) -> None:
    """Many central-directory entries all pointing at one deflated member (overlap bomb)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.bin", bytes(4 * MB))
    raw = buf.getvalue()
    cd_start = raw.rfind(b"PK\x01\x02")
    eocd = raw.rfind(b"PK\x05\x06")
    entry = raw[cd_start:eocd]
    entries = b"".join(
        entry[:46] + f"{i:05d}".encode() + entry[46 + 5 :] if len(entry) >= 51 else entry
        for i in range(count)
    )
    new_eocd = b"PK\x05\x06" + struct.pack(
        "<HHHHIIH", 0, 0, count, count, len(entries), cd_start, 0
    )
    with open(path, "wb") as f:
        f.write(raw[:cd_start] + entries + new_eocd)


def tar_ratio(path: str) -> None:
    class Zeros(io.RawIOBase):
        def __init__(self, size: int) -> None:
            self.left = size

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            n = min(len(b), self.left)
            b[:n] = bytes(n)
            self.left -= n
            return n

    with tarfile.open(path, "w:gz", compresslevel=1) as tf:
        info = tarfile.TarInfo("weights.pkl")
        info.size = BOMB_SIZE
        tf.addfile(info, io.BufferedReader(Zeros(BOMB_SIZE), 4 * MB))  # type: ignore[type-var]


def tar_many_entries(path: str, count: int = 20000) -> None:
    with tarfile.open(path, "w") as tf:
        for i in range(count):
            tf.addfile(tarfile.TarInfo(f"e/{i}.txt"), io.BytesIO(b""))


def pkl_gz(path: str) -> None:
    _write_compressed(path, zlib.compressobj(1, zlib.DEFLATED, 31), _pickle_of_zeros(BOMB_SIZE))


def pkl_xz(path: str) -> None:
    _write_compressed(path, lzma.LZMACompressor(preset=0), _pickle_of_zeros(BOMB_SIZE))


def pkl_bz2(path: str) -> None:
    _write_compressed(path, bz2.BZ2Compressor(1), _pickle_of_zeros(32 * MB))


def pkl_lz4(path: str) -> None:
    import lz4.frame

    compressor = lz4.frame.LZ4FrameCompressor()
    with open(path, "wb") as f:
        f.write(compressor.begin())
        for chunk in _pickle_of_zeros(BOMB_SIZE):
            f.write(compressor.compress(chunk))
        f.write(compressor.flush())


def joblib_gz(path: str) -> None:
    """A joblib-style compressed file (zlib stream) hiding a huge array body."""
    _write_compressed(path, zlib.compressobj(1), _pickle_of_zeros(BOMB_SIZE))


def gzip_of_gzip(path: str) -> None:
    inner = io.BytesIO()
    with gzip.GzipFile(fileobj=inner, mode="wb", compresslevel=1) as g:
        for chunk in _zeros(64 * MB):
            g.write(chunk)
    with open(path, "wb") as f:
        f.write(gzip.compress(inner.getvalue()))


def pickle_memo_laughs(path: str, levels: int = 40, fanout: int = 10) -> None:
    """Each level is a list of `fanout` references to the previous one: 10**40 leaves."""
    out = bytearray(b"\x80\x04]\x94")  # EMPTY_LIST, MEMOIZE -> memo 0
    for level in range(levels):
        out += b"(" + (b"h" + bytes([level])) * fanout + b"l\x94"
    out += b"."
    with open(path, "wb") as f:
        f.write(out)


def pickle_dup(path: str, count: int = 2_000_000) -> None:
    with open(path, "wb") as f:
        f.write(b"\x80\x04N" + b"2" * count + b".")


def pickle_deep(path: str, depth: int = 200_000) -> None:
    """Deeply nested lists: MARK ... LIST repeated inward."""
    with open(path, "wb") as f:
        f.write(b"\x80\x04" + b"]" * depth + b"a" * (depth - 1) + b".")


def pickle_huge_length(path: str) -> None:
    """A 15-byte pickle announcing a 6 GB bytes object."""
    with open(path, "wb") as f:
        f.write(b"\x80\x04\x8e" + struct.pack("<Q", 6 << 30) + b"abc")


def gguf_counts(path: str) -> None:
    with open(path, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, 2**63 - 1, 2**63 - 1) + bytes(64))


def gguf_long_string(path: str) -> None:
    key = b"general.name"
    with open(path, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, 1))
        f.write(struct.pack("<Q", len(key)) + key + struct.pack("<IQ", 8, 2**62) + b"abc")


def safetensors_huge_header(path: str) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", 2**64 - 1) + b'{"w": {}}' + bytes(16))


def safetensors_large_header(path: str) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", 2**40) + b'{"__metadata__": {"a": "b"}' + bytes(64))


def hdf5_deep(path: str, depth: int = 2000) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.create_group("/".join(["g"] * depth))


def json_nesting(path: str, depth: int = 200_000) -> None:
    with open(path, "wb") as f:
        f.write(b'{"a": ' + b"[" * depth + b"]" * depth + b"}")


def yaml_laughs(path: str, levels: int = 9) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def yaml_nesting(path: str, depth: int = 50_000) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("a: " + "[" * depth + "]" * depth + "\n")


BOMBS: dict[str, Callable[[str], None]] = {
    "ratio.zip": zip_ratio,
    "nested.zip": zip_nested,
    "many.zip": zip_many_entries,
    "overlap.zip": zip_overlapping,
    "ratio.tar.gz": tar_ratio,
    "many.tar": tar_many_entries,
    "bomb.pkl.gz": pkl_gz,
    "bomb.pkl.xz": pkl_xz,
    "bomb.pkl.bz2": pkl_bz2,
    "bomb.pkl.lz4": pkl_lz4,
    "bomb.joblib": joblib_gz,
    "double.pkl.gz": gzip_of_gzip,
    "memo_laughs.pkl": pickle_memo_laughs,
    "dup.pkl": pickle_dup,
    "deep.pkl": pickle_deep,
    "huge_length.pkl": pickle_huge_length,
    "counts.gguf": gguf_counts,
    "long_string.gguf": gguf_long_string,
    "huge_header.safetensors": safetensors_huge_header,
    "large_header.safetensors": safetensors_large_header,
    "deep.h5": hdf5_deep,
    "nesting.json": json_nesting,
    "laughs.yaml": yaml_laughs,
    "nesting.yaml": yaml_nesting,
}


def build_bombs(folder: str) -> dict[str, str]:
    os.makedirs(folder, exist_ok=True)
    out = {}
    for name, build in BOMBS.items():
        path = os.path.join(folder, name)
        build(path)
        out[name] = path
    return out
