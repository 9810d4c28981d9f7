"""Which byte ranges of a remote object a scanner needs, per format.

A planner is a small parser that reads through a `RangeView`: every byte it asks for is
fetched once and lands in the spool at its true offset, so the scanner later sees a file of
the right size whose needed regions are real and whose tensor data is a sparse hole. A
planner returns False when the object does not look the way it expects; the caller then
downloads the whole object, so an odd or hostile file is never scanned from a partial copy.
"""

from __future__ import annotations

import ast
import json
import re
import struct
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio
import anyio.lowlevel
import anyio.to_thread

from ..formats import Format, classify_zip

#: Metadata sections larger than this are not worth planning around: download instead.
MAX_HEADER = 256 * 1024 * 1024


class View(Protocol):
    size: int
    #: the spool file, holding every byte read so far at its true offset
    path: str

    async def read(self, start: int, end: int) -> bytes: ...

    async def fetch(self, start: int, end: int) -> None: ...

    def covered(self, start: int, end: int) -> bool: ...


Planner = Callable[[View], Awaitable[bool]]


async def plan_safetensors(view: View) -> bool:
    """The 8-byte length, the JSON header, and anything stored after the last tensor."""
    head = await view.read(0, 8)
    if len(head) < 8:
        return False
    (n,) = struct.unpack("<Q", head)
    if n < 2 or n > MAX_HEADER or 8 + n > view.size:
        return False
    try:
        header = json.loads(await view.read(8, 8 + n))
    except (UnicodeDecodeError, ValueError):
        return False
    if not isinstance(header, dict):
        return False
    data_end = 0
    for key, info in header.items():
        if key == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2):
            return False
        if not all(isinstance(o, int) and o >= 0 for o in offsets):
            return False
        data_end = max(data_end, offsets[1])
    tail = 8 + n + data_end
    if tail < view.size:
        await view.fetch(tail, view.size)
    return True


async def plan_numpy(view: View) -> bool:
    """The .npy header; object arrays (pickles) and odd dtypes are downloaded whole."""
    head = await view.read(0, 12)
    if len(head) < 10 or not head.startswith(b"\x93NUMPY"):
        return False
    if head[6] == 1:
        (hlen,) = struct.unpack_from("<H", head, 8)
        start = 10
    elif len(head) >= 12:
        (hlen,) = struct.unpack_from("<I", head, 8)
        start = 12
    else:
        return False
    if hlen > 1 << 20:
        return False
    text = (await view.read(start, start + hlen)).decode("latin-1")
    try:
        info = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False
    if not isinstance(info, dict):
        return False
    descr, shape = info.get("descr"), info.get("shape")
    m = re.fullmatch(r"[<>|=]?[biufc](\d+)", descr) if isinstance(descr, str) else None
    if m is None or not isinstance(shape, tuple):
        return False
    count = 1
    for dim in shape:
        if not isinstance(dim, int) or dim < 0:
            return False
        count *= dim
    end = start + hlen + count * int(m.group(1))
    if end < view.size:
        await view.fetch(end, view.size)
    return True


class _NeedMore(Exception):
    pass


class _Cursor:
    def __init__(self, buf: bytes, big_endian: bool) -> None:
        self.buf = buf
        self.pos = 0
        self.e = ">" if big_endian else "<"

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            raise _NeedMore
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def skip(self, n: int) -> None:
        if self.pos + n > len(self.buf):
            raise _NeedMore
        self.pos += n

    def num(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        return int(struct.unpack(self.e + fmt, self.take(size))[0])


_GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_LIMIT = 1 << 24


def _gguf_metadata_end(buf: bytes) -> int | None:
    """End of the tensor-info section (aligned to where tensor data starts); None if odd."""
    if len(buf) < 8:
        raise _NeedMore
    (version,) = struct.unpack_from("<I", buf, 4)
    big = version > 0xFFFF
    if big:
        (version,) = struct.unpack_from(">I", buf, 4)
    if version not in (1, 2, 3):
        return None
    c = _Cursor(buf, big)
    c.skip(8)
    count = "I" if version == 1 else "Q"
    n_tensors, n_kv = c.num(count), c.num(count)
    if n_tensors > _GGUF_LIMIT or n_kv > _GGUF_LIMIT:
        return None

    def string() -> bytes:
        return c.take(c.num(count))

    def value(vtype: int) -> int | None:
        if vtype in _GGUF_FIXED:
            raw = c.take(_GGUF_FIXED[vtype])
            return int.from_bytes(raw, "big" if big else "little")
        if vtype == 8:
            string()
            return None
        if vtype != 9:
            raise ValueError("unknown GGUF value type")
        itype, n = c.num("I"), c.num(count)
        if itype in _GGUF_FIXED:
            c.skip(n * _GGUF_FIXED[itype])
        elif n > _GGUF_LIMIT * 4:
            raise ValueError("GGUF array too long")
        else:
            for _ in range(n):
                value(itype)
        return None

    alignment = 32
    for _ in range(n_kv):
        key = string()
        vtype = c.num("I")
        got = value(vtype)
        if key == b"general.alignment" and got:
            alignment = got
    for _ in range(n_tensors):
        string()
        n_dims = c.num("I")
        if n_dims > 64:
            return None
        c.skip(n_dims * (4 if version == 1 else 8) + 4 + 8)
    return -(-c.pos // alignment) * alignment


async def plan_gguf(view: View) -> bool:
    """A prefix grown until the key-value section and the tensor infos parse."""
    window = 256 * 1024
    while True:
        window = min(window, view.size)
        buf = await view.read(0, window)
        try:
            end = await anyio.to_thread.run_sync(_gguf_metadata_end, buf)
        except _NeedMore:
            if window >= view.size:
                return True
            if window >= MAX_HEADER:
                return False
            window *= 4
            continue
        except (ValueError, struct.error, RecursionError):
            return False
        if end is None:
            return False
        await view.fetch(0, min(end, view.size))
        return True


_EOCD = struct.Struct("<4s4H2LH")
#: The zip scanners refuse more entries than this; such a zip is downloaded whole.
_MAX_MEMBERS = 1_000_000
_CDH = struct.Struct("<4s4B4HL2L5H2L")
_LFH_SIZE = 30


def is_tensor_record(name: str) -> bool:
    """Storage records torch never unpickles: exactly those the PyTorch zip scanner skips
    (its own rule, so that nothing it reads is ever left unfetched)."""
    from ..scanners.containers.pytorch_zip_scanner import _is_tensor_record

    return _is_tensor_record(name)


def _zip64_extra(extra: bytes, csize: int, usize: int, offset: int) -> tuple[int, int]:
    """Compressed size and local-header offset, taking the zip64 extra field into account."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, ln = struct.unpack_from("<HH", extra, pos)
        if tag == 1:
            values = extra[pos + 4 : pos + 4 + ln]
            vals = [struct.unpack_from("<Q", values, i)[0] for i in range(0, len(values) - 7, 8)]
            if usize == 0xFFFFFFFF and vals:
                vals.pop(0)
            if csize == 0xFFFFFFFF and vals:
                csize = vals.pop(0)
            if offset == 0xFFFFFFFF and vals:
                offset = vals.pop(0)
            break
        pos += 4 + ln
    return csize, offset


async def _find_eocd(view: View) -> tuple[int, bytes] | None:
    """The end record, chosen the way zipfile (and the zip scanners) choose it."""
    size = view.size
    if size < _EOCD.size:
        return None
    rec = await view.read(size - _EOCD.size, size)
    if rec.startswith(b"PK\x05\x06") and rec.endswith(b"\x00\x00"):
        return size - _EOCD.size, rec
    start = max(0, size - 0xFFFF - _EOCD.size)
    tail = await view.read(start, size)
    pos = tail.rfind(b"PK\x05\x06")
    while pos >= 0:
        if pos + _EOCD.size <= len(tail):
            return start + pos, tail[pos : pos + _EOCD.size]
        pos = tail.rfind(b"PK\x05\x06", 0, pos)
    return None


async def _central_directory(view: View) -> list[tuple[str, int, int]] | None:
    found = await _find_eocd(view)
    if found is None:
        return None
    eocd_pos, rec = found
    _, _, _, _, _, cd_size, cd_offset, _ = _EOCD.unpack(rec)
    concat = eocd_pos - cd_size - cd_offset
    if eocd_pos >= 20:
        # Both places a zip64 end record may be looked for: the locator's offset and just
        # before the locator (zipfile); fetch both so either reader sees real bytes.
        loc = await view.read(eocd_pos - 20, eocd_pos)
        if loc.startswith(b"PK\x06\x07"):
            (off,) = struct.unpack_from("<Q", loc, 8)
            await view.fetch(max(0, eocd_pos - 76), eocd_pos - 20)
            rec64 = await view.read(
                off if off < view.size else 0, (off if off < view.size else 0) + 56
            )
            if rec64.startswith(b"PK\x06\x06") and len(rec64) == 56:
                cd_size, cd_offset = struct.unpack_from("<QQ", rec64, 40)
                concat = eocd_pos - cd_size - cd_offset - 76
    cd_start = cd_offset + concat
    if cd_size > MAX_HEADER or cd_start < 0 or cd_start + cd_size > view.size:
        return None
    cd = await view.read(cd_start, cd_start + cd_size)
    members: list[tuple[str, int, int]] = []
    pos = 0
    while pos + _CDH.size <= len(cd) and cd[pos : pos + 4] == b"PK\x01\x02":
        if len(members) >= _MAX_MEMBERS:
            return None
        f = _CDH.unpack_from(cd, pos)
        flags, csize, usize, fnlen, exlen, cmlen, lh = (
            f[5],
            f[10],
            f[11],
            f[12],
            f[13],
            f[14],
            f[18],
        )
        raw = cd[pos + _CDH.size : pos + _CDH.size + fnlen]
        name = raw.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        extra = cd[pos + _CDH.size + fnlen : pos + _CDH.size + fnlen + exlen]
        csize, lh = _zip64_extra(extra, csize, usize, lh)
        members.append((name, lh + concat, csize))
        pos += _CDH.size + fnlen + exlen + cmlen
    return members


def _zip_views_covered(view: View) -> bool:
    """Whether every byte the zip readers will touch (the scanner's directory reader and
    Python's zipfile) is in the spool: a hostile zip on which they disagree with the plan is
    downloaded whole rather than scanned from holes."""
    import zipfile

    from ..formats.sniff import sniff_path
    from ..formats.zipdir import data_offset, read_directory

    if sniff_path(view.path, view.path) != Format.PYTORCH_ZIP:
        return False
    with open(view.path, "rb") as f:
        directory = read_directory(f, view.size)
        if not view.covered(directory.cd_offset, directory.cd_offset + directory.cd_size):
            return False
        for entry in directory.entries:
            if entry.is_dir or is_tensor_record(entry.name):
                continue
            start, _ = data_offset(f, entry)
            if not view.covered(entry.local_offset, start + entry.compressed_size):
                return False
        with zipfile.ZipFile(f) as zf:
            for info in zf.infolist():
                if info.is_dir() or is_tensor_record(info.filename):
                    continue
                f.seek(info.header_offset)
                head = f.read(_LFH_SIZE)
                if len(head) < _LFH_SIZE:
                    return False
                fnlen, exlen = struct.unpack_from("<HH", head, 26)
                end = info.header_offset + _LFH_SIZE + fnlen + exlen + info.compress_size
                if not view.covered(info.header_offset, end):
                    return False
    return True


async def plan_zip(view: View) -> bool:
    """For PyTorch zips: the central directory and every member that is not tensor data.

    Other zips are handed over whole, because their scanners look at every member.
    """
    members = await _central_directory(view)
    if not members or classify_zip([m[0] for m in members]) != Format.PYTORCH_ZIP:
        return False
    # The rule lives with the scanner, whose first import must not stall the event loop.
    await anyio.to_thread.run_sync(is_tensor_record, "")
    for name, lh, csize in members:
        if is_tensor_record(name):
            continue
        if lh < 0 or lh + _LFH_SIZE > view.size:
            return False
        header = await view.read(lh, lh + _LFH_SIZE)
        if not header.startswith(b"PK\x03\x04"):
            return False
        fnlen, exlen = struct.unpack_from("<HH", header, 26)
        data = lh + _LFH_SIZE + fnlen + exlen
        await view.fetch(lh + _LFH_SIZE, min(data + csize, view.size))
    try:
        return await anyio.to_thread.run_sync(_zip_views_covered, view)
    except Exception:
        return False


class _Odd(Exception):
    pass


_SKIP = "skip"
#: Message fields the ONNX walk descends into; tensor data fields are skipped by length and
#: every other length-delimited field (names, attributes, external-data entries) is fetched.
_ONNX_CHILDREN: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "function": {7: "node"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 10: "tensor", 22: "sparse", 23: "sparse", 6: "graph", 11: "graph"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {4: _SKIP, 5: _SKIP, 6: _SKIP, 7: _SKIP, 9: _SKIP, 10: _SKIP, 11: _SKIP},
}


#: Fields an ONNX walk visits before giving up and downloading the object instead.
_MAX_FIELDS = 5_000_000


class _WireReader:
    def __init__(self, view: View) -> None:
        self.view = view
        self.start = 0
        self.buf = b""
        self.fields = 0

    async def varint(self, pos: int, end: int) -> tuple[int, int]:
        if not (self.start <= pos and pos + 10 <= self.start + len(self.buf)):
            self.buf = await self.view.read(pos, pos + 16384)
            self.start = pos
        value = shift = 0
        for i in range(10):
            at = pos + i - self.start
            if pos + i >= end or at >= len(self.buf):
                raise _Odd
            byte = self.buf[at]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value, pos + i + 1
            shift += 7
        raise _Odd

    async def walk(self, start: int, end: int, kind: str, depth: int) -> None:
        if depth > 64:
            raise _Odd
        children = _ONNX_CHILDREN.get(kind, {})
        pos = start
        while pos < end:
            self.fields += 1
            if self.fields % 4096 == 0:
                if self.fields > _MAX_FIELDS:
                    raise _Odd
                await anyio.lowlevel.checkpoint()
            key, pos = await self.varint(pos, end)
            wire = key & 7
            if wire == 0:
                _, pos = await self.varint(pos, end)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                n, pos = await self.varint(pos, end)
                if pos + n > end:
                    raise _Odd
                child = children.get(key >> 3)
                if child is None:
                    await self.view.fetch(pos, pos + n)
                elif child != _SKIP:
                    await self.walk(pos, pos + n, child, depth + 1)
                pos += n
            else:
                raise _Odd
        if pos != end:
            raise _Odd


async def plan_onnx(view: View) -> bool:
    """A protobuf wire walk of the ModelProto that skips tensor data by length."""
    try:
        await _WireReader(view).walk(0, view.size, "model", 0)
    except _Odd:
        return False
    return True


PLANNERS: dict[str, Planner] = {
    Format.SAFETENSORS: plan_safetensors,
    Format.NUMPY: plan_numpy,
    Format.GGUF: plan_gguf,
    Format.ZIP: plan_zip,
    Format.ONNX: plan_onnx,
}
