"""NumPy `.npy` arrays and `.npz` zips of them.

Numeric data is never read: only the header, and a size check that the data is all there.
Object arrays hold a pickle that `np.load(allow_pickle=True)` runs, so that pickle is scanned.
Members of an `.npz` that are not arrays are scanned by their own format.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from ...formats import Format
from ...formats.npy import MAGIC, NpyError, NpyHeader, NpyHeaderTooLong, read_header
from ...formats.zipdir import MemberError, ZipFormatError, read_directory
from ...rules import containers as crules
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..pickle import scan_pickle_stream
from .members import (
    Limits,
    MemberSpool,
    check_member_names,
    depth_exceeded,
    report_bomb,
    scan_stream_member,
)
from .zip_members import open_member, report_zip_anomaly


class NumPyScanner(BaseScanner):
    name = "numpy"
    description = "NumPy .npy/.npz: headers, and the pickle inside object arrays"
    supported_extensions = [".npy", ".npz"]
    formats = (Format.NUMPY, Format.NPZ)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        fmt = self.ctx.format or (Format.NPZ if path.lower().endswith(".npz") else Format.NUMPY)
        result.metadata["format"] = fmt
        data = self.whole_file(path)
        try:
            with io.BytesIO(data) if data is not None else open(path, "rb") as f:
                if f.read(6) == MAGIC:
                    f.seek(0)
                    size = len(data) if data is not None else self.file_size(path)
                    self._scan_npy(f, path, None, size, result)
                else:
                    self.scan_npz(f, path, result)
        except OSError as exc:
            result.mark_error(f"cannot read file: {exc.strerror or exc}")
        return result

    def _scan_npy(
        self,
        stream: BinaryIO,
        path: str,
        member: str | None,
        available: int,
        result: ScanResult,
    ) -> NpyHeader | None:
        """Check one array whose bytes start at the stream's position (`available` long)."""
        try:
            header = read_header(stream)
        except NpyHeaderTooLong as exc:
            result.mark_inconclusive(f"malformed: {exc}")
            self._after_long_header(stream, exc, path, member, result)
            return None
        except NpyError as exc:
            result.mark_inconclusive(f"malformed: {exc}")
            return None
        result.bytes_scanned += header.header_size
        arrays = result.metadata.setdefault("format_details", {}).setdefault("arrays", [])
        arrays.append({"name": member, "dtype": repr(header.descr), "shape": list(header.shape)})
        if not header.has_object:
            if available - header.header_size < header.data_size:
                result.mark_inconclusive(
                    f"malformed: array data truncated ({available - header.header_size} of "
                    f"{header.data_size} bytes)"
                )
            return header
        where = self.location(path, member)
        result.add_issue(
            f"Object array: np.load(allow_pickle=True) unpickles its data{f' ({member})' if member else ''}",
            severity=IssueSeverity.INFO,
            location=where,
            details={"dtype": repr(header.descr), "shape": list(header.shape)},
            rule=crules.OBJECT_ARRAY,
        )
        self._scan_pickled_data(stream, header.header_size, path, member, result)
        return header

    def _after_long_header(
        self,
        stream: BinaryIO,
        exc: NpyHeaderTooLong,
        path: str,
        member: str | None,
        result: ScanResult,
    ) -> None:
        """`np.load(allow_pickle=True)` reads a header of any length and unpickles an object
        array's data after it, so the data is scanned as a pickle whatever the header says."""
        left = exc.header_bytes
        while left > 0:
            chunk = stream.read(min(left, 1 << 20))
            if not chunk:
                return
            left -= len(chunk)
        self._scan_pickled_data(stream, exc.data_start, path, member, result)

    def _scan_pickled_data(
        self, stream: BinaryIO, start: int, path: str, member: str | None, result: ScanResult
    ) -> None:
        """The array data at the stream's position (`start` in the array) as the pickle
        `np.load(allow_pickle=True)` reads there."""

        def location(pos: int | None) -> str:
            return self.location(path, member, None if pos is None else start + pos)

        scan_pickle_stream(
            stream,
            result,
            location=location,
            ctx=self.ctx,
            stacked=False,
            depth=self.ctx.depth,
        )

    def scan_npz(self, f: BinaryIO, path: str, result: ScanResult) -> None:
        limits = Limits.from_context(self.ctx)
        limits.model = self.display_path or path
        try:
            directory = read_directory(f, self.file_size(path))
        except ZipFormatError as exc:
            result.mark_inconclusive(f"malformed: {exc}")
            return
        result.bytes_scanned += directory.cd_size + 22
        self.scan_after_end(path, directory.end_offset, result, "the zip's end record")
        for text in directory.anomalies:
            report_zip_anomaly(result, self.location(path), text)
        with MemberSpool() as spool:
            for entry in directory.entries:
                where = self.location(path, entry.name)
                check_member_names(
                    result,
                    where,
                    entry.name,
                    entry.unicode_name,
                    symlink=entry.is_symlink,
                    model=True,
                )
                if entry.is_dir:
                    continue  # a link's bytes are read as a file's by zipfile: scanned too
                try:
                    stream, raw, anomaly = open_member(
                        f,
                        entry,
                        limit=limits.remaining,
                        max_ratio=limits.max_ratio,
                        budget=limits.budget,
                    )
                except MemberError as exc:
                    result.mark_inconclusive(f"malformed: {exc}")
                    continue
                if anomaly:
                    report_zip_anomaly(result, where, anomaly)
                if stream.peek(6)[:6] == MAGIC:
                    self._scan_npy(stream, path, entry.name, entry.size, result)
                    if raw is not None and raw.limit_hit:
                        report_bomb(result, where, raw.limit_hit)
                    elif raw is not None and raw.error:
                        result.mark_inconclusive(f"malformed: {raw.error}")
                elif not depth_exceeded(result, limits, where):
                    display = f"{self.display_path or path}:{entry.name}"
                    scan_stream_member(
                        result,
                        spool,
                        stream,
                        entry.name,
                        display,
                        self.ctx,
                        limits,
                        raw,
                        also_as=entry.renamed,
                    )
