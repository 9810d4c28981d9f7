"""Single-stream compression wrappers (`.gz .bz2 .xz .lzma .lz4 .zst`, zlib), compressed joblib.

joblib.load and `pickle.load(gzip.open(...))` both see only the decompressed stream, so we
decompress in a streaming, bounded way and judge the content by its own format: a pickle goes
straight to the pickle engine (in joblib layout, which skips inline array bytes as joblib
does), a tar is walked member by member, anything else is spooled to a temp file and
dispatched. `.zst` is what pandas' `read_pickle` (compression inferred from the name)
decompresses before it unpickles. Old joblib `ZF` files (a hex length header before a zlib stream) are handled too.
"""

from __future__ import annotations

import contextlib
import os
from typing import BinaryIO, Final

from ...formats import Format, sniff_head
from ...rules import containers as crules
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..pickle import scan_pickle_stream
from .archive_scanner import ArchiveScanner
from .decompress import CHUNK, DecompressingReader, MissingCodec, open_stream
from .members import Limits, MemberSpool, depth_exceeded, report_bomb, scan_member_file

_KIND: Final[dict[str, str]] = {
    Format.GZIP: "gzip",
    Format.BZIP2: "bzip2",
    Format.XZ: "xz",
    Format.LZMA: "lzma",
    Format.LZ4: "lz4",
    Format.ZSTD: "zstd",
    Format.ZLIB: "zlib",
}
_SUFFIXES: Final[dict[str, str]] = {
    ".tgz": ".tar",
    ".gz": "",
    ".gzip": "",
    ".bz2": "",
    ".xz": "",
    ".lzma": "",
    ".lz4": "",
    ".zst": "",
    ".zstd": "",
    ".tzst": ".tar",
    ".z": "",
    ".zlib": "",
}
#: joblib < 0.10: "ZF" + hex(length) padded to len(hex(2**64)), then one zlib stream.
_ZF_PREFIX: Final = b"ZF0x"
_ZF_HEADER: Final = 2 + len(hex(2**64))


def inner_name(name: str) -> str:
    """The name of what a compressed file holds: `m.pkl.gz` -> `m.pkl`, `a.tgz` -> `a.tar`."""
    base = os.path.basename(name.replace("\\", "/"))
    stem, ext = os.path.splitext(base)
    if ext.lower() in _SUFFIXES:
        return stem + _SUFFIXES[ext.lower()]
    return base


def _skip_zf_header(f: BinaryIO) -> None:
    head = f.read(_ZF_HEADER + 1)
    if head.startswith(_ZF_PREFIX):
        f.seek(_ZF_HEADER + (1 if head[_ZF_HEADER : _ZF_HEADER + 1] == b" " else 0))
    else:
        f.seek(0)


class CompressedStreamScanner(BaseScanner):
    name = "compressed"
    description = (
        "gzip/bz2/xz/lzma/lz4/zstd/zlib streams and compressed joblib, decompressed bounded"
    )
    supported_extensions = [
        *(".gz", ".tgz", ".bz2", ".xz", ".lzma", ".lz4", ".zst", ".zstd", ".tzst", ".z", ".zlib")
    ]
    formats = tuple(_KIND)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        fmt = self.ctx.format or Format.GZIP
        result.metadata["format"] = fmt
        kind = _KIND.get(fmt, "gzip")
        limits = Limits.from_context(self.ctx)
        try:
            with open(path, "rb") as f:
                if kind == "zlib":
                    _skip_zf_header(f)
                try:
                    raw, stream = open_stream(
                        f,
                        kind,
                        limit=limits.remaining,
                        max_ratio=limits.max_ratio,
                        ratio_floor=limits.ratio_floor,
                        budget=limits.budget,
                    )
                except MissingCodec as exc:
                    result.mark_inconclusive(str(exc))
                    return result
                self._scan_content(stream, raw, path, result, limits)
        except OSError as exc:
            result.mark_error(f"cannot read file: {exc.strerror or exc}")
        return result

    def _scan_content(
        self,
        stream: BinaryIO,
        raw: DecompressingReader,
        path: str,
        result: ScanResult,
        limits: Limits,
    ) -> None:
        shown = self.display_path or path
        inner = inner_name(shown)
        member = None if inner == os.path.basename(shown) else inner
        where = self.location(path, member)
        head = stream.peek(4096)[:4096] if hasattr(stream, "peek") else b""
        inner_fmt = sniff_head(head, inner) if head else None
        result.metadata["format_details"] = {"compression": raw.kind, "content": inner_fmt}
        if head and inner_fmt == Format.PICKLE:

            def location(pos: int | None) -> str:
                return self.location(path, member, pos)

            scan_pickle_stream(
                stream,
                result,
                location=location,
                ctx=self.ctx,
                stacked=True,
                joblib=True,
                depth=limits.depth,
            )
        elif head and not depth_exceeded(result, limits, where):
            if inner_fmt == Format.TAR:
                # A tar is walked as it decompresses (no spool): the archive scanner's
                # walker, run under this file's own context.
                ArchiveScanner(self.config, context=self.ctx).scan_tar_stream(
                    stream, path, result, limits
                )
            else:
                self._spool_and_scan(stream, raw, f"{shown}:{inner}", inner, result, limits)
        while head and not raw.limit_hit and stream.read(CHUNK):
            pass  # a loader reads to the end of the stream: so must the integrity check
        if raw.limit_hit:
            report_bomb(result, where, raw.limit_hit)
        elif raw.error or raw.truncated:
            result.mark_inconclusive(f"malformed: {raw.error or 'compressed stream is truncated'}")
        elif not head:
            result.add_issue(
                "Compressed stream is empty",
                severity=IssueSeverity.INFO,
                location=where,
                rule=crules.CONTAINER_WITHOUT_CONTENT,
            )

    def _spool_and_scan(
        self,
        stream: BinaryIO,
        raw: DecompressingReader,
        display: str,
        inner: str,
        result: ScanResult,
        limits: Limits,
    ) -> None:
        with MemberSpool() as spool:
            dest = spool.path_for(inner)
            try:
                _written, ended = spool.copy(stream, dest, limits.budget, charge=False)
                if not ended and not raw.limit_hit:
                    report_bomb(result, display, "decompressed content exceeds the budget")
                if not ended or raw.limit_hit:
                    return
                result.merge(scan_member_file(self.ctx, dest, display, limits))
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(dest)
