"""Generic archives: zip, tar (plain or inside a compressed stream) and 7z.

Every member is judged by its own format through `engine.dispatch`, one at a time, inside the
expansion budget. Names and links are checked against the extraction folder before anything
is extracted. Zips that turn out to be PyTorch checkpoints or `.npz` files (when Python's
zipfile could not list them for the sniffer) go to those scanners' logic.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import zlib
from functools import partial
from typing import IO, Any, BinaryIO, Final

from ...budget import BudgetExceeded
from ...formats import Format, classify_zip
from ...formats.json_values import loads_bounded
from ...formats.zipdir import (
    MemberError,
    ZipDirectory,
    ZipEntry,
    ZipFormatError,
    read_directory,
)
from ...lazy_re import LazyPattern
from ...rules import containers as crules
from ..base import BaseScanner, IssueSeverity, ScanResult
from . import torchserve
from .members import (
    Limits,
    MemberSpool,
    budget_refuses,
    check_member_names,
    depth_exceeded,
    link_escape,
    path_escape,
    report_bomb,
    report_link,
    report_traversal,
    scan_member_file,
    scan_stream_member,
)
from .skops_trees import NEEDLES as SKOPS_TREE_NEEDLES
from .skops_trees import SkopsTrees
from .torch_legacy_tar import LEGACY_MEMBERS, walk_records
from .torch_package import report_package_shadows
from .zip_members import clear_despite_flag, open_member, report_zip_anomaly


def _too_many(result: ScanResult, where: str, limits: Limits) -> None:
    result.add_issue(
        f"Archive holds more than max_archive_entries={limits.max_entries} entries",
        severity=IssueSeverity.WARNING,
        location=where,
        details={"max_entries": limits.max_entries},
        why="Huge entry counts exhaust extraction tools and hide members past the limit, "
        "which were not scanned.",
        rule=crules.TOO_MANY_ENTRIES,
    )
    result.mark_inconclusive(f"more than {limits.max_entries} archive entries")


def _unreadable(result: ScanResult, where: str, message: str, rule: str, why: str) -> None:
    result.add_issue(message, severity=IssueSeverity.WARNING, location=where, why=why, rule=rule)
    result.mark_inconclusive(message)


class ArchiveScanner(BaseScanner):
    name = "archive"
    description = "zip, tar and 7z archives: every member scanned by its own format"
    supported_extensions = [".zip", ".tar", ".7z", ".mar", ".nemo"]
    formats = (Format.ZIP, Format.TAR, Format.SEVENZIP)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        fmt = self.ctx.format or Format.ZIP
        result.metadata["format"] = fmt
        limits = Limits.from_context(self.ctx)
        shown = self.display_path or path
        limits.model = shown if _model_container(shown) else None
        if depth_exceeded(result, limits, self.location(path)):
            return result
        try:
            with open(path, "rb") as f:
                if fmt == Format.TAR:
                    self.scan_tar_stream(f, path, result, limits)
                elif fmt == Format.SEVENZIP:
                    self._scan_7z(f, path, result, limits)
                else:
                    self._scan_zip(f, path, result, limits)
        except OSError as exc:
            result.mark_error(f"cannot read file: {exc.strerror or exc}")
        return result

    def _shown(self, path: str, member: str) -> str:
        return f"{self.display_path or path}:{member}"

    # -- zip

    def _scan_zip(self, f: BinaryIO, path: str, result: ScanResult, limits: Limits) -> None:
        try:
            directory = read_directory(f, self.file_size(path))
        except ZipFormatError as exc:
            result.mark_inconclusive(f"malformed: {exc}")
            return
        kind = classify_zip(directory.names)
        if kind not in (Format.ZIP, Format.KERAS_ZIP):
            # Routed here by name or as a polyglot's zip view: let the engine route it.
            result.merge(
                self.ctx.scan_member(path, self.display_path or path, fmt=kind, depth=limits.depth)
            )
            return
        self.scan_after_end(path, directory.end_offset, result, "the zip's end record")
        result.bytes_scanned += directory.cd_size + 22
        result.metadata["format_details"] = {"archive": "zip", "members": len(directory.entries)}
        if torchserve.holds_manifest(directory.names):
            lookup = _zip_lookup(f, directory, limits)
            names = {e.name for e in directory.entries}
            torchserve.report_manifest(lookup, names.__contains__, self.location(path), result)
        self._scan_zip_members(f, path, directory, result, limits)
        report_package_shadows(f, directory, lambda m: self.location(path, m), result, limits)

    def _scan_zip_members(
        self,
        f: BinaryIO,
        path: str,
        directory: ZipDirectory,
        result: ScanResult,
        limits: Limits,
    ) -> None:
        where = self.location(path)
        for text in directory.anomalies:
            report_zip_anomaly(result, where, text)
        entries = directory.entries
        if len(entries) > limits.max_entries:
            _too_many(result, where, limits)
            entries = entries[: limits.max_entries]
        declared = sum(e.size for e in entries)
        if declared > limits.max_expanded:
            report_bomb(
                result,
                where,
                f"members declare {declared} bytes, over max_expanded_size={limits.max_expanded}",
            )
        # skops opens exactly this name; its archives keep bytes values as raw members
        skops = "schema.json" in directory.names
        trees = _skops_trees(f, directory, limits) if skops else None
        with MemberSpool() as spool:
            for entry in entries:
                if not self._scan_zip_entry(f, path, entry, result, limits, spool, skops, trees):
                    break
        if trees is not None:
            trees.report(where, result)

    def _scan_zip_entry(
        self,
        f: BinaryIO,
        path: str,
        entry: ZipEntry,
        result: ScanResult,
        limits: Limits,
        spool: MemberSpool,
        skops: bool = False,
        trees: SkopsTrees | None = None,
    ) -> bool:
        where = self.location(path, entry.name)
        check_member_names(
            result,
            where,
            entry.name,
            entry.unicode_name,
            symlink=entry.is_symlink,
            model=limits.model is not None,
        )
        if entry.is_dir:
            return True
        if entry.encrypted and not clear_despite_flag(f, entry, limits.remaining, limits.max_ratio):
            _unreadable(
                result,
                where,
                f"Encrypted zip member cannot be scanned: {entry.name}",
                crules.ENCRYPTED_MEMBER,
                "Content that cannot be read cannot be verified.",
            )
            return True
        if entry.encrypted:
            report_zip_anomaly(
                result,
                where,
                f"{entry.name!r} is flagged encrypted but stored in the clear; readers that "
                "ignore the flag (torch's miniz) read it",
            )
        try:
            stream, raw, anomaly = open_member(
                f, entry, limit=limits.remaining, max_ratio=limits.max_ratio, budget=limits.budget
            )
        except MemberError as exc:
            if "unsupported" in str(exc) or "not installed" in str(exc):
                _unreadable(
                    result,
                    where,
                    f"Cannot decode zip member: {exc}",
                    crules.UNSUPPORTED_COMPRESSION,
                    "Content that cannot be decoded cannot be verified.",
                )
            else:
                result.mark_inconclusive(f"malformed: {exc}")
            return True
        if anomaly:
            report_zip_anomaly(result, where, anomaly)
        if entry.is_symlink:
            target = stream.read(4096).decode("utf-8", "replace")
            why = link_escape(entry.name, target, hard=False)
            if why:
                report_link(result, where, entry.name, why, hard=False)
            return True
        if depth_exceeded(result, limits, where):
            return False
        routed = _skops_bytes_name(entry.name) if skops else entry.name
        shown = self._shown(path, entry.name)
        return scan_stream_member(
            result,
            spool,
            stream,
            routed,
            # (the engine judges a name ending in a model extension unverified if unknown)
            shown if routed == entry.name else f"{shown} (skops bytes)",
            self.ctx,
            limits,
            raw,
            also_as=entry.renamed,
            inspect=partial(trees.judge, entry.name)
            if trees is not None and trees.wants(entry.name)
            else None,
        )

    # -- tar

    def scan_tar_stream(
        self, fileobj: BinaryIO, path: str, result: ScanResult, limits: Limits
    ) -> None:
        """Walk a tar sequentially (it may come from a decompressor), one member at a time."""
        where = self.location(path)
        count = 0
        details = {"archive": "tar", "members": 0}
        result.metadata.setdefault("format_details", details)
        legacy: set[str] = set()
        kept = _TarKept()
        try:
            with (
                tarfile.open(fileobj=fileobj, mode="r|") as tf,
                MemberSpool() as spool,
            ):
                for member in tf:
                    count += 1
                    details["members"] = count
                    if count > limits.max_entries:
                        _too_many(result, where, limits)
                        break
                    if not self._scan_tar_member(
                        tf, member, path, result, limits, spool, legacy, kept
                    ):
                        break
        except (tarfile.TarError, EOFError, zlib.error, ValueError) as exc:
            result.mark_inconclusive(f"malformed: tar archive: {exc}")
        kept.report_torchserve(where, result)
        if {"storages", "tensors", "pickle"} & legacy and len(legacy) >= 2:
            result.add_issue(
                "Legacy PyTorch tar checkpoint: torch.load unpickles its records",
                severity=IssueSeverity.INFO,
                location=where,
                details={"records": sorted(legacy)},
                rule=crules.LEGACY_TORCH_TAR,
            )

    def _scan_tar_member(
        self,
        tf: tarfile.TarFile,
        member: tarfile.TarInfo,
        path: str,
        result: ScanResult,
        limits: Limits,
        spool: MemberSpool,
        legacy: set[str],
        kept: _TarKept | None = None,
    ) -> bool:
        name = member.name
        where = self.location(path, name)
        check_member_names(
            result,
            where,
            name,
            symlink=member.issym() or member.islnk(),
            model=limits.model is not None,
        )
        if member.issym() or member.islnk():
            why = link_escape(name, member.linkname, hard=member.islnk())
            if why:
                report_link(result, where, name, why, hard=member.islnk())
            return True
        if member.ischr() or member.isblk() or member.isfifo():
            result.add_issue(
                f"Tar archive holds a device file or FIFO: {name}",
                severity=IssueSeverity.WARNING,
                location=where,
                why="Extracting device files as root gives raw access to hardware or memory.",
                rule=crules.SPECIAL_FILE,
            )
            return True
        if not member.isfile():
            return True
        if depth_exceeded(result, limits, where):
            return False
        # The announced size is what extraction produces (a sparse member's holes too):
        # refused before a byte is written.
        if budget_refuses(result, limits, where, f"{name} announces", member.size):
            return False
        if member.sparse is not None:
            return self._scan_sparse_member(tf, member, path, result, limits, spool)
        stream = tf.extractfile(member)
        if stream is None:
            return True
        base = name.lstrip("./")
        if base in LEGACY_MEMBERS:
            legacy.add(base)
        if base in ("storages", "tensors"):
            return self._scan_legacy_record(stream, base, path, result, limits, spool)
        with contextlib.closing(stream):
            content: IO[bytes] = stream
            if kept is not None:
                content = kept.note(base, member.size, stream)
            return scan_stream_member(
                result, spool, content, name, self._shown(path, name), self.ctx, limits
            )

    def _scan_sparse_member(
        self,
        tf: tarfile.TarFile,
        member: tarfile.TarInfo,
        path: str,
        result: ScanResult,
        limits: Limits,
        spool: MemberSpool,
    ) -> bool:
        """A GNU sparse member is rebuilt as a sparse file: its data segments written where
        they belong, the holes never materialised; its announced size is charged."""
        if not limits.budget.charge(member.size):
            return True
        dest = spool.path_for(member.name)
        try:
            # The stored bytes are the data segments one after another (a tar stream only
            # seeks forward, so they are read in order, as tarfile reads them).
            source: Any = tf.fileobj
            source.seek(member.offset_data)
            segments: list[tuple[int, int]] = list(member.sparse or ())  # type: ignore[arg-type]
            with open(dest, "wb") as out:
                for offset, length in segments:
                    out.seek(offset)
                    left = length
                    while left > 0 and (chunk := source.read(min(left, 1 << 20))):
                        out.write(chunk)
                        left -= len(chunk)
                out.truncate(member.size)
            result.merge(scan_member_file(self.ctx, dest, self._shown(path, member.name), limits))
            return not limits.budget.exceeded
        finally:
            with contextlib.suppress(OSError):
                os.unlink(dest)

    def _scan_legacy_record(
        self,
        stream: IO[bytes],
        kind: str,
        path: str,
        result: ScanResult,
        limits: Limits,
        spool: MemberSpool,
    ) -> bool:
        dest = spool.path_for(kind)
        try:
            written, ended = spool.copy(stream, dest, limits.budget)
            if not ended:
                reason = limits.budget.exceeded or "tar member exceeds the budget"
                report_bomb(result, self.location(path, kind), reason)
                return False
            with open(dest, "rb") as f:

                def location(pos: int | None) -> str:
                    return self.location(path, kind, pos)

                walk_records(f, written, kind, result, location, self.ctx, limits.depth)
            return True
        finally:
            with contextlib.suppress(OSError):
                os.unlink(dest)

    # -- 7z

    def _scan_7z(self, f: BinaryIO, path: str, result: ScanResult, limits: Limits) -> None:
        try:
            import py7zr
            from py7zr.io import Py7zIO, WriterFactory
        except ImportError:
            result.mark_inconclusive("py7zr not installed, cannot scan 7z archives")
            return
        where = self.location(path)
        scanner = self

        class _Budget(Exception):
            pass

        class _Writer(Py7zIO):
            def __init__(self, name: str, dest: str) -> None:
                self.name = name
                self.dest = dest
                self.out: Any = open(dest, "wb")  # noqa: SIM115
                self.written = 0

            def write(self, s: bytes | bytearray) -> int:
                if not limits.budget.charge(len(s)):
                    raise _Budget(f"member {self.name}: {limits.budget.exceeded}")
                self.written += len(s)
                return int(self.out.write(s))

            def read(self, size: int | None = None) -> bytes:
                return b""

            def seek(self, offset: int, whence: int = 0) -> int:
                return 0

            def flush(self) -> None:
                self.out.flush()

            def size(self) -> int:
                return self.written

            def close(self) -> None:
                if self.out.closed:
                    return
                self.out.close()
                try:
                    if symlinks.get(self.name):
                        with open(self.dest, "rb") as fh:
                            target = fh.read(4096).decode("utf-8", "replace")
                        why = link_escape(self.name, target, hard=False)
                        if why:
                            report_link(result, where, self.name, why, hard=False)
                    elif limits.depth < limits.max_depth:
                        shown = scanner._shown(path, self.name)
                        result.merge(scan_member_file(scanner.ctx, self.dest, shown, limits))
                    else:
                        depth_exceeded(result, limits, where)
                finally:
                    with contextlib.suppress(OSError):
                        os.unlink(self.dest)

        class _Factory(WriterFactory):
            def create(self, filename: str) -> Py7zIO:
                writer = _Writer(filename, spool.path_for(filename))
                writers.append(writer)
                return writer

        symlinks: dict[str, bool] = {}
        writers: list[_Writer] = []
        try:
            with py7zr.SevenZipFile(f, mode="r") as archive, MemberSpool() as spool:
                if archive.needs_password():
                    _unreadable(
                        result,
                        where,
                        "Encrypted 7z archive cannot be scanned",
                        crules.ENCRYPTED_MEMBER,
                        "Content that cannot be read cannot be verified.",
                    )
                    return
                infos = archive.list()
                result.metadata["format_details"] = {"archive": "7z", "members": len(infos)}
                if len(infos) > limits.max_entries:
                    _too_many(result, where, limits)
                    return
                escaped = False
                for info in infos:
                    symlinks[info.filename] = bool(info.is_symlink)
                    reason = path_escape(info.filename)
                    if reason:
                        escaped = True
                        report_traversal(result, where, info.filename, reason)
                declared = sum(int(i.uncompressed or 0) for i in infos)
                if budget_refuses(result, limits, where, "members declare", declared):
                    return
                if escaped:
                    result.mark_inconclusive("7z members with escaping paths were not extracted")
                    return
                archive.extractall(factory=_Factory())
        except _Budget as exc:
            report_bomb(result, where, str(exc))
        except Exception as exc:
            result.mark_inconclusive(f"malformed: 7z archive: {type(exc).__name__}: {exc}")
        finally:
            for writer in writers:
                writer.out.close()


class _TarKept:
    """What a streamed tar walk keeps for a TorchServe manifest judged after it: every member
    name, and the bytes of small manifests, Python files and text files (the requirements
    file the manifest may name: torch-model-archiver keeps its name, `.txt` by convention),
    at most `TOTAL` in all, read once and then scanned from memory like any member."""

    TOTAL: Final = 16 * 1024 * 1024

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.data: dict[str, bytes] = {}
        self.size = 0

    def note(self, base: str, size: int, stream: IO[bytes]) -> IO[bytes]:
        self.names.add(base)
        text = base.endswith(".txt")
        wanted = text or base.endswith((torchserve.MANIFEST, ".py"))
        cap = torchserve.MAX_REQUIREMENTS_BYTES if text else torchserve.MAX_HANDLER_BYTES
        if not wanted or size > cap or self.size + size > self.TOTAL:
            return stream
        data = stream.read(size + 1)
        self.size += len(data)
        self.data[base] = data
        return io.BytesIO(data)

    def report_torchserve(self, where: str, result: ScanResult) -> None:
        manifest = next((n for n in self.data if n.endswith(torchserve.MANIFEST)), None)
        if manifest is None:
            return
        prefix = manifest[: -len(torchserve.MANIFEST)]
        if prefix and not prefix.endswith("/"):
            return

        def read(name: str, cap: int) -> bytes | None:
            data = self.data.get(prefix + name)
            return None if data is None else data[: cap + 1]

        torchserve.report_manifest(read, lambda n: prefix + n in self.names, where, result)


def _skops_trees(f: BinaryIO, directory: ZipDirectory, limits: Limits) -> SkopsTrees | None:
    """The trees a skops archive's schema builds, read before the member walk reaches their
    node arrays (skops writes `schema.json` last); None when it names none."""
    raw = _zip_lookup(f, directory, limits)("schema.json", MAX_SCHEMA_BYTES)
    if raw is None or len(raw) > MAX_SCHEMA_BYTES:
        return None
    try:
        encoding = json.detect_encoding(raw)
        text = raw.decode(encoding, "surrogatepass")
        if not any(needle in text for needle in SKOPS_TREE_NEEDLES):
            return None
        # what skops reads: json.loads of the member's bytes (the member's own scan reports
        # a schema past the value bound, so it is only not read here)
        schema = loads_bounded(text, "skops schema values")
    except (UnicodeDecodeError, ValueError, RecursionError, BudgetExceeded):
        return None
    trees = SkopsTrees(schema)
    return trees if trees.uses or not trees.complete else None


def _zip_lookup(f: BinaryIO, directory: ZipDirectory, limits: Limits) -> torchserve.Lookup:
    """Read a member by name, at most `cap` + 1 bytes, charged to the expansion budget; the
    last entry of a name wins, as when zipfile extracts the archive (TorchServe does)."""
    by_name = {e.name: e for e in directory.entries[: limits.max_entries] if not e.is_dir}

    def read(name: str, cap: int) -> bytes | None:
        entry = by_name.get(name)
        if entry is None or entry.encrypted or entry.is_symlink:
            return None
        try:
            stream, _raw, _anomaly = open_member(
                f,
                entry,
                limit=min(limits.remaining, cap + 1),
                max_ratio=limits.max_ratio,
                budget=limits.budget,
            )
            return stream.read(cap + 1)
        except (MemberError, OSError, ValueError):
            return None

    return read


#: Archives that are a model's own format: links in them are never legitimate.
#: The largest skops `schema.json` read for its trees (the JSON scanner's own limit).
MAX_SCHEMA_BYTES: Final = 64 * 1024 * 1024
#: `f"{uuid.uuid4()}.bin"`, the name skops.io.dump gives a bytes value.
_SKOPS_BYTES: Final = LazyPattern(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.bin\Z"
)


def _skops_bytes_name(name: str) -> str:
    """The name a skops archive's member is routed by. skops writes bytes and bytearray
    values as `<uuid>.bin` members and hands them back as bytes without loading them: routed
    by `.bin` (torch's pickle name) any bytes that are not a pickle would leave the archive
    unverified (an XGBoost booster's raw model). Without the suffix they are routed by what
    they hold, so a pickle or another model format there is still scanned as one."""
    return name[:-4] if _SKOPS_BYTES.match(name) else name


_MODEL_ARCHIVES: Final = (".nemo", ".mar", ".keras", ".npz", ".pt", ".pth", ".ckpt", ".bin")


def _model_container(path: str) -> bool:
    return path.lower().endswith(_MODEL_ARCHIVES)
