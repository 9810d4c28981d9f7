"""Bytes after the end of a format: sniffed, and scanned as what they are.

A safetensors file ends with its last tensor, a GGUF file with its tensor data (plus
alignment padding), a zip with its end record and comment. A loader of the outer format never
reads past that, so bytes there are meant for something else: a pickle that `pickle.load` at
that offset runs, a program, another archive. Zips appended to any file are already scanned by
the engine's polyglot check, so they are named here but not scanned twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

from ..findings import IssueSeverity, ScanResult
from ..formats import ZIP_FORMATS, Format, sniff_head
from ..rules import containers as crules
from .context import ScanContext

_HEAD: Final = 4096
#: The most trailing bytes copied out to be scanned as another file.
_MAX_COPY: Final = 256 << 20


def scan_trailing(
    ctx: ScanContext,
    path: str,
    start: int,
    result: ScanResult,
    what: str,
    location: Callable[[int | None], str],
) -> Format | None:
    """Sniff the bytes from `start` to the end of the file and scan what they are."""
    size = os.path.getsize(path)
    if start >= size:
        return None
    with open(path, "rb") as f:
        f.seek(start)
        head = f.read(_HEAD)
        fmt = sniff_head(head, "", size - start)
        if fmt is None or fmt in (Format.TEXT, Format.EMPTY):
            return None
        result.add_issue(
            f"{size - start} bytes after {what} hold {fmt}",
            severity=IssueSeverity.WARNING,
            location=location(start),
            details={"offset": start, "length": size - start, "format": str(fmt)},
            why="The loader of this format never reads these bytes; they are there for "
            "another reader (pickle.load at this offset, an extractor, a dynamic loader).",
            rule=crules.TRAILING_PAYLOAD,
        )
        if fmt in ZIP_FORMATS:
            return fmt  # the engine's appended-zip check scans it
        if ctx.depth + 1 > ctx.max_depth:
            result.mark_inconclusive(f"nesting depth limit reached at the data after {what}")
            return fmt
        if fmt == Format.PICKLE:
            # The pickle engine is imported only for a file that has a trailing pickle.
            from .pickle import scan_pickle_stream

            f.seek(start)
            scan_pickle_stream(
                f,
                result,
                location=lambda pos: location(None if pos is None else start + pos),
                ctx=ctx,
                depth=ctx.depth + 1,
            )
            return fmt
        import shutil
        import tempfile

        folder = tempfile.mkdtemp(prefix="modelaudit-trailing-")
        try:
            member = os.path.join(folder, "trailing")
            f.seek(start)
            with open(member, "wb") as out:
                left = min(size - start, _MAX_COPY)
                while left > 0 and (chunk := f.read(min(left, 1 << 20))):
                    out.write(chunk)
                    left -= len(chunk)
            shown = f"{location(start)} (trailing data)"
            result.merge(ctx.scan_member(member, shown, depth=ctx.depth + 1))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return fmt


__all__ = ["scan_trailing"]
