"""A zip central-directory reader that sees what both torch's reader and Python's zipfile see.

torch (miniz) and zipfile both locate members through the central directory, find the data
after the local header (whose own name/extra lengths they trust), never agree on duplicate
names (miniz may return any of them, zipfile the last) and differ on checks (zipfile refuses
a local name that differs from the central one and a bad CRC; miniz checks neither), and
they find the directory differently (zipfile shifts offsets by data prepended to the zip and
reads a zip64 end record right before its locator; miniz takes offsets as written and reads
the zip64 record where the locator says). So we
list every central entry, duplicates included, read data the way both do, skip CRC checks
while reading and report every disagreement as an anomaly.
"""

from __future__ import annotations

import itertools
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from ..budget import WorkBudget
from .view import ByteView, FileView

EOCD_SIG: Final = b"PK\x05\x06"
_EOCD64_LOC_SIG: Final = b"PK\x06\x07"
_EOCD64_SIG: Final = b"PK\x06\x06"
_CD_SIG: Final = b"PK\x01\x02"
_LOCAL_SIG: Final = b"PK\x03\x04"
_EOCD_SIZE: Final = 22
_MAX_COMMENT: Final = 0xFFFF
METHODS: Final[dict[int, str | None]] = {
    0: None,
    8: "deflate",
    12: "bzip2",
    14: "zip_lzma",
    93: "zstd",
}


def holds_zip_end(data: bytes) -> bool:
    """Whether bytes read whole may end in a zip: a zip needs its end record, so bytes
    without one hold no zip that a loader reading from the end could open. (`find`: `in`
    first tries the signature as an integer, and raises and clears a TypeError each time.)"""
    return data.find(EOCD_SIG) >= 0


class ZipFormatError(Exception):
    """The central directory cannot be read."""


@dataclass
class ZipEntry:
    index: int
    name: str
    raw_name: bytes
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    local_offset: int
    external_attr: int
    create_system: int
    #: The Info-ZIP Unicode Path (extra field 0x7075), which `unzip` extracts under instead
    #: of the header name when its CRC matches that name.
    unicode_name: str | None = None

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")

    @property
    def renamed(self) -> str | None:
        """The Unicode Path when it names another file than the header does (not merely the
        same name in UTF-8): Python 3.12+'s zipfile and `unzip` open the member by it."""
        return renamed(self.raw_name, self.name, self.unicode_name)

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & 0x1)

    @property
    def unix_mode(self) -> int:
        return (self.external_attr >> 16) & 0xFFFF if self.create_system == 3 else 0

    @property
    def is_symlink(self) -> bool:
        return (self.unix_mode & 0o170000) == 0o120000


@dataclass
class ZipDirectory:
    entries: list[ZipEntry]
    cd_offset: int
    cd_size: int
    concat: int
    eocd_offset: int
    #: Where the zip ends: its end record plus the comment that record announces.
    end_offset: int
    anomalies: list[str] = field(default_factory=list)
    #: How many leading entries come from the directory zipfile reads (the others are the
    #: second directory of a prepended zip, which only torch's reader sees).
    primary: int = 0

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def duplicates(self) -> set[str]:
        seen: set[str] = set()
        dup: set[str] = set()
        for e in self.entries:
            key = e.name.lower()
            (dup if key in seen else seen).add(key)
        return dup


def _decode_name(raw: bytes, flags: int) -> str:
    """The name as zipfile (and C extractors) take it: cut at the first NUL byte."""
    raw = raw.split(b"\x00", 1)[0]
    if flags & 0x800:
        return raw.decode("utf-8", "replace")
    return raw.decode("cp437")


def locate_eocd(view: ByteView) -> tuple[int, bytes] | None:
    """Offset and bytes of the end-of-central-directory record, searched as zipfile does:
    the last 22 bytes, else backwards through the last 64 KiB (the longest comment)."""
    size = view.size
    if size < _EOCD_SIZE:
        return None
    rec = view.get(size - _EOCD_SIZE, size)
    if rec[:4] == EOCD_SIG and rec[-2:] == b"\x00\x00":
        return size - _EOCD_SIZE, rec
    start = max(0, size - _MAX_COMMENT - _EOCD_SIZE)
    tail = view.get(start, size)
    pos = tail.rfind(EOCD_SIG)
    while pos >= 0:
        rec = tail[pos : pos + _EOCD_SIZE]
        if len(rec) == _EOCD_SIZE:
            return start + pos, rec
        pos = tail.rfind(EOCD_SIG, 0, pos)
    return None


def zip_end_from(
    view: ByteView, start: int, candidates: WorkBudget | None = None, chunk: int = 1 << 20
) -> int | None:
    """Where the zip that begins at `start` ends (its end record and comment), for zips
    written one after another, each with offsets from its own start (the `torch.save` of
    every item of a torch.distributed.checkpoint `.distcp` shard): the first end record past
    `start` whose central directory (zip64's, when its locator precedes the record) lies
    right before it. None when there is none. One pass over the bytes: each signature found
    costs two small reads, charged to `candidates` (`BudgetExceeded` past it: bytes made of
    end-record signatures would otherwise cost a Python step every four bytes)."""
    size = view.size
    pos = start
    while pos < size:
        block = view.get(pos, min(size, pos + chunk + 3))
        at = block.find(EOCD_SIG)
        while at >= 0:
            eocd = pos + at
            if candidates is not None:
                candidates.charge()
            rec = view.get(eocd, eocd + _EOCD_SIZE)
            if len(rec) == _EOCD_SIZE:
                _, _, _, _, _, cd_size, cd_offset, comment = struct.unpack("<4s4H2LH", rec)
                before = eocd
                if eocd - 76 >= start and view.get(eocd - 20, eocd - 16) == _EOCD64_LOC_SIG:
                    rec64 = view.get(eocd - 76, eocd - 20)
                    if rec64[:4] == _EOCD64_SIG and len(rec64) == 56:
                        cd_size, cd_offset = struct.unpack_from("<QQ", rec64, 40)
                        before = eocd - 76
                end = eocd + _EOCD_SIZE + int(comment)
                if start + cd_offset + cd_size == before and end <= size:
                    return end
            at = block.find(EOCD_SIG, at + 1)
        pos += chunk
    return None


def find_eocd(f: BinaryIO, size: int) -> tuple[int, bytes] | None:
    return locate_eocd(FileView(f, size))


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    i = 0
    while i + 4 <= len(extra):
        tag, ln = struct.unpack_from("<HH", extra, i)
        if tag == 1:
            body = extra[i + 4 : i + 4 + ln]
            j = 0
            vals = []
            for v in (usize, csize, offset):
                if v == 0xFFFFFFFF and j + 8 <= len(body):
                    vals.append(struct.unpack_from("<Q", body, j)[0])
                    j += 8
                else:
                    vals.append(v)
            return vals[0], vals[1], vals[2]
        i += 4 + ln
    return usize, csize, offset


def unicode_path(extra: bytes, raw_name: bytes) -> str | None:
    """The name an Info-ZIP Unicode Path extra field (0x7075) gives, as extractors take it:
    version 1 and a CRC-32 of the header name that matches."""
    i = 0
    while i + 4 <= len(extra):
        tag, ln = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4 : i + 4 + ln]
        if (
            tag == 0x7075
            and len(body) >= 5
            and body[0] == 1
            and struct.unpack_from("<L", body, 1)[0] == zlib.crc32(raw_name)
        ):
            return body[5:].decode("utf-8", "replace")
        i += 4 + ln
    return None


def renamed(raw_name: bytes, name: str, unicode_name: str | None) -> str | None:
    """`unicode_name` if it names another file: its ASCII skeleton (what routing, extensions
    and path tricks depend on) differs from the header name's. A header written in some
    other code page (Windows writes the OEM one) is the same name in another spelling."""
    if unicode_name is None or unicode_name == name:
        return None
    if _skeleton(unicode_name) == _skeleton(name.split("\x00", 1)[0]):
        return None
    return unicode_name


_NON_ASCII: Final = re.compile(r"[^\x00-\x7f]+")


def _skeleton(name: str) -> str:
    return _NON_ASCII.sub("?", name)


def _parse_entries(cd: bytes, shift: int, first_index: int) -> list[ZipEntry]:
    entries: list[ZipEntry] = []
    pos = 0
    while pos + 46 <= len(cd) and cd[pos : pos + 4] == _CD_SIG:
        (
            made_by,
            flags,
            method,
            crc,
            csize,
            usize,
            nlen,
            elen,
            clen,
            ext_attr,
            offset,
        ) = struct.unpack_from("<H2xHH4xLLLHHH4xLL", cd, pos + 4)
        raw = cd[pos + 46 : pos + 46 + nlen]
        extra = cd[pos + 46 + nlen : pos + 46 + nlen + elen]
        usize, csize, offset = _zip64_extra(extra, usize, csize, offset)
        entries.append(
            ZipEntry(
                index=first_index + len(entries),
                name=_decode_name(raw, flags),
                raw_name=raw,
                flags=flags,
                method=method,
                crc=crc,
                compressed_size=csize,
                size=usize,
                local_offset=offset + shift,
                external_attr=ext_attr,
                create_system=made_by >> 8,
                unicode_name=unicode_path(extra, raw),
            )
        )
        pos += 46 + nlen + elen + clen
    return entries


def read_directory(f: BinaryIO, size: int, max_entries: int = 1_000_000) -> ZipDirectory:
    return parse_directory(FileView(f, size), max_entries)


@dataclass(frozen=True)
class _DirectoryView:
    """Where one reader finds the central directory, and how it shifts member offsets."""

    count: int
    size: int
    start: int
    shift: int


def _zipfile_view(view: ByteView, eocd_pos: int, rec: bytes) -> _DirectoryView:
    """As Python's zipfile: a zip64 end record is read right before the locator (whatever
    offset the locator gives), and offsets are shifted by the bytes found before the zip."""
    _, _, _, _, count, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", rec)
    concat = eocd_pos - cd_size - cd_offset
    if eocd_pos >= 76 and view.get(eocd_pos - 20, eocd_pos - 16) == _EOCD64_LOC_SIG:
        rec64 = view.get(eocd_pos - 76, eocd_pos - 20)
        if rec64[:4] == _EOCD64_SIG:
            count, cd_size, cd_offset = struct.unpack_from("<QQQ", rec64, 32)
            concat = eocd_pos - cd_size - cd_offset - 76
    return _DirectoryView(count, cd_size, cd_offset + concat, concat)


def _miniz_view(view: ByteView, eocd_pos: int, rec: bytes) -> _DirectoryView | None:
    """As torch's miniz: a zip64 end record is read where the locator says, and offsets are
    taken as they are written. None when miniz would refuse the end records."""
    _, _, _, _, count, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", rec)
    if eocd_pos >= 20:
        loc = view.get(eocd_pos - 20, eocd_pos)
        if loc[:4] == _EOCD64_LOC_SIG:
            (at,) = struct.unpack_from("<Q", loc, 8)
            rec64 = view.get(at, at + 56) if at <= view.size - 56 else b""
            if rec64[:4] != _EOCD64_SIG:
                return None
            count, cd_size, cd_offset = struct.unpack_from("<QQQ", rec64, 32)
    return _DirectoryView(count, cd_size, cd_offset, 0)


def parse_directory(view: ByteView, max_entries: int = 1_000_000) -> ZipDirectory:
    """Every central entry, from both directories when zipfile and torch's miniz find
    different ones (data before the zip, or a zip64 locator naming another record than the
    one before it, which zipfile reads): see the module."""
    size = view.size
    found = locate_eocd(view)
    if found is None:
        raise ZipFormatError("no end-of-central-directory record")
    eocd_pos, rec = found
    readable = [
        v
        for v in (_zipfile_view(view, eocd_pos, rec), _miniz_view(view, eocd_pos, rec))
        if v is not None and v.start >= 0 and v.start + v.size <= size
    ]
    if not readable:
        raise ZipFormatError("central directory lies outside the file")
    for v in readable:
        if v.count > max_entries:
            raise ZipFormatError(f"{v.count} entries exceed the {max_entries} entry limit")
    first = readable[0]
    cd = view.get(first.start, first.start + first.size)
    if len(cd) < first.size:
        raise ZipFormatError("central directory is truncated")
    entries = _parse_entries(cd, first.shift, 0)
    count = first.count
    raw_view = 0
    second = readable[1] if len(readable) > 1 and readable[1] != first else None
    if second is not None:
        raw_cd = view.get(second.start, second.start + second.size)
        if raw_cd[:4] == _CD_SIG:
            extra = _parse_entries(raw_cd, second.shift, len(entries))
            raw_view = len(extra)
            entries += extra
    concat = first.shift
    cd_offset = first.start - first.shift
    cd_size = first.size
    end = eocd_pos + _EOCD_SIZE + int.from_bytes(rec[20:22], "little")
    primary = len(entries) - raw_view
    directory = ZipDirectory(
        entries, cd_offset + concat, cd_size, concat, eocd_pos, end, primary=primary
    )
    if primary != count and count != 0xFFFF:
        directory.anomalies.append(
            f"end record announces {count} entries, the central directory holds {primary}"
        )
    if raw_view and second is not None and second.start == cd_offset:
        directory.anomalies.append(
            f"a second central directory at offset {cd_offset} ({raw_view} entries) is what "
            "readers that ignore prepended data (torch) load"
        )
    elif raw_view and second is not None:
        directory.anomalies.append(
            f"the zip64 locator names another end record than the one before it: zipfile "
            f"reads the central directory at offset {first.start}, torch's reader the one at "
            f"offset {second.start} ({raw_view} entries)"
        )
    for e in entries:
        if b"\x00" in e.raw_name:
            directory.anomalies.append(
                f"member name {e.raw_name!r} holds a NUL byte; zipfile and extractors cut it "
                f"there and name the member {e.name!r}"
            )
        if e.renamed is not None:
            directory.anomalies.append(
                f"member {e.name!r} carries an Info-ZIP Unicode Path naming {e.renamed!r}, "
                "the name unzip and Python 3.12+ zipfile use"
            )
    for name in sorted(directory.duplicates()):
        directory.anomalies.append(f"duplicate member name {name!r}")
    ordered = sorted(entries, key=lambda e: e.local_offset)
    for a, b in itertools.pairwise(ordered):
        if a.local_offset + 30 + len(a.raw_name) + a.compressed_size > b.local_offset:
            directory.anomalies.append(
                f"members {a.name!r} and {b.name!r} overlap (an overlapping-entry zip bomb "
                "or a hidden alternative content)"
            )
            break
    return directory


class MemberError(Exception):
    """A member's data cannot be located or decoded."""


def data_offset(f: BinaryIO, entry: ZipEntry) -> tuple[int, str | None]:
    return local_data_offset(FileView(f), entry)


def local_data_offset(view: ByteView, entry: ZipEntry) -> tuple[int, str | None]:
    """Where the member's data starts, and an anomaly if the local header disagrees."""
    head = view.get(entry.local_offset, entry.local_offset + 30)
    if len(head) < 30 or head[:4] != _LOCAL_SIG:
        raise MemberError(f"no local header for {entry.name!r} at offset {entry.local_offset}")
    nlen, elen = struct.unpack_from("<HH", head, 26)
    local_name = view.get(entry.local_offset + 30, entry.local_offset + 30 + nlen)
    anomaly = None
    if local_name != entry.raw_name:
        shown = local_name.decode("utf-8", "replace")
        anomaly = f"local header names {shown!r} but the central directory names {entry.name!r}"
    return entry.local_offset + 30 + nlen + elen, anomaly


def is_tensor_record(name: str) -> bool:
    """PyTorch zip storage records (`<folder>/data/N`, TorchScript `<folder>/constants/N`):
    raw bytes torch never unpickles, so neither the scanner nor the range planner reads them."""
    lower = name.lower()
    if lower.endswith(".pkl"):
        return False
    parts = lower.replace("\\", "/").split("/")
    return (len(parts) == 3 and parts[1] in ("data", "constants")) or (
        len(parts) == 2 and parts[0] == "data"
    )
