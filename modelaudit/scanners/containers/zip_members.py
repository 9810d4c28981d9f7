"""Reading a zip member's bytes the way torch's reader and zipfile do: from the data offset
the central directory gives, decompressed within the caller's limits, with no CRC check while
reading (miniz checks none; `crc_matches` tells when zipfile would refuse the member).
"""

from __future__ import annotations

import io
import zlib
from typing import BinaryIO

from ...findings import IssueSeverity, ScanResult
from ...formats import sniff_head
from ...formats.zipdir import METHODS, MemberError, ZipEntry, data_offset
from ...rules import containers as crules
from ..expansion import ExpansionBudget
from .decompress import CHUNK, DecompressingReader, MissingCodec, Window


def report_zip_anomaly(result: ScanResult, where: str, text: str) -> None:
    result.add_issue(
        f"Zip structure anomaly: {text}",
        severity=IssueSeverity.WARNING,
        location=where,
        details={"anomaly": text},
        why="Readers that disagree about a zip's content let a payload hide from one of them: "
        "a scanner may check one copy while the loader runs another.",
        rule=crules.ZIP_ANOMALY,
    )


def open_member(
    f: BinaryIO,
    entry: ZipEntry,
    *,
    limit: int,
    max_ratio: float = 0.0,
    budget: ExpansionBudget | None = None,
) -> tuple[io.BufferedReader, DecompressingReader | None, str | None]:
    """A buffered stream of the member's content (no CRC check), the decoder if any, and
    an anomaly string when the local header disagrees with the central directory. With a
    budget, every decompressed byte is charged to it (many entries over one deflated
    member expand it many times)."""
    start, anomaly = data_offset(f, entry)
    window = Window(f, start, entry.compressed_size)
    if entry.method not in METHODS:
        raise MemberError(f"compression method {entry.method} of {entry.name!r} is unsupported")
    kind = METHODS[entry.method]
    if kind is None:
        return io.BufferedReader(window, CHUNK), None, anomaly
    try:
        raw = DecompressingReader(
            io.BufferedReader(window, CHUNK),
            kind,
            limit=limit,
            max_ratio=max_ratio,
            multistream=False,
            budget=budget,
        )
    except MissingCodec as exc:
        raise MemberError(str(exc)) from exc
    return io.BufferedReader(raw, CHUNK), raw, anomaly


def crc_matches(f: BinaryIO, entry: ZipEntry, limit: int, max_ratio: float = 0.0) -> bool | None:
    """Whether the member's content matches its central CRC (None: could not be read)."""
    if entry.size > limit:
        return None
    try:
        stream, _raw, _ = open_member(f, entry, limit=limit, max_ratio=max_ratio)
    except MemberError:
        return None
    crc = 0
    total = 0
    while chunk := stream.read(CHUNK):
        crc = zlib.crc32(chunk, crc)
        total += len(chunk)
    return crc == entry.crc and total == entry.size


def clear_despite_flag(f: BinaryIO, entry: ZipEntry, limit: int, max_ratio: float = 0.0) -> bool:
    """An 'encrypted' member a reader that ignores the flag gets in the clear: its bytes read
    as a known format, or they are exactly the content the central CRC and size describe
    (ZipCrypto data never is: it carries a 12-byte header and is scrambled)."""
    try:
        stream, raw, _ = open_member(f, entry, limit=min(limit, 1 << 20))
        head = stream.peek(4096)[:4096]
    except (MemberError, OSError, EOFError, ValueError):
        return False
    if raw is not None and raw.error:
        return False
    if head and sniff_head(head, "", entry.size) is not None:  # by content alone
        return True
    if entry.method == 0 and entry.compressed_size != entry.size:
        return False  # stored ZipCrypto data is 12 bytes longer than the content
    return bool(head) and crc_matches(f, entry, limit, max_ratio) is True
