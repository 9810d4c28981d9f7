"""PyTorch zip checkpoints (`torch.save` since 1.6, TorchScript archives, any inner folder name).

torch.load only ever unpickles pickle records; tensor storages under `<folder>/data/` are read
as raw bytes. So the scan costs the central directory plus the pickle members, however large
the checkpoint. Every central entry is considered, duplicates included, because torch's reader
and Python's zipfile disagree about which duplicate wins and a loader may use either.
"""

from __future__ import annotations

import re
from typing import Any, BinaryIO, Final

from ...budget import BudgetExceeded
from ...formats import Format, sniff_head
from ...formats.json_values import loads_bounded
from ...formats.zipdir import (
    MemberError,
    ZipDirectory,
    ZipEntry,
    ZipFormatError,
    is_tensor_record,
    read_directory,
)
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
from .torch_package import report_package_shadows
from .torchscript_code import (
    FILE_OPS,
    FileOpCall,
    Source,
    file_ops_in_bytecode,
    find_file_ops,
    find_file_ops_in,
    module_of,
)
from .zip_members import crc_matches, open_member, report_zip_anomaly

#: Pickle records larger than this are still scanned, but never dispatched as other formats.
_SMALL_MEMBER = 64 << 20
#: TorchScript sources kept to be judged together (past this, each is judged on its own).
_KEPT_SOURCES: Final = 16 << 20


#: The pickle whose persistent ids name a folder's storage records.
_RECORD_INDEX: Final = {"data.pkl": "data", "constants.pkl": "constants"}


#: `torch.export.save` archives (.pt2): per-model payload configs, `data/weights/{model}
#: _weights_config.json` and `data/constants/{model}_constants_config.json` under the root.
_PT2_PAYLOAD_CONFIG: Final = re.compile(
    r"(?P<dir>(?:[^/]+/)?data/(?:weights|constants)/)[^/]*_(?:weights|constants)_config\.json"
)
#: A payload config larger than this is not read (each weight takes a few hundred bytes).
_MAX_PAYLOAD_CONFIG = 16 << 20


def _torch_export(directory: ZipDirectory) -> bool:
    """A `torch.export.save` archive (its `archive_format` record says `pt2`): since torch
    2.6 it pickles nothing (weights are raw records a payload config names), so no pickle
    record is what it should hold."""
    return any(e.name.rsplit("/", 1)[-1] == "archive_format" for e in directory.entries)


def looks_like_pickle_member(name: str, head: bytes, size: int) -> bool:
    return name.lower().endswith(".pkl") or sniff_head(head, name, size) == Format.PICKLE


class PyTorchZipScanner(BaseScanner):
    name = "pytorch_zip"
    description = "PyTorch zip checkpoints: every pickle record, never the tensor data"
    supported_extensions = [".pt", ".pth", ".bin", ".ckpt"]
    formats = (Format.PYTORCH_ZIP,)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        result.metadata["format"] = self.ctx.format or Format.PYTORCH_ZIP
        size = self.file_size(path)
        try:
            with open(path, "rb") as f:
                try:
                    directory = read_directory(f, size)
                except ZipFormatError as exc:
                    result.mark_inconclusive(f"malformed: {exc}")
                    return result
                self.scan_directory(f, path, directory, result)
                self.scan_after_end(path, directory.end_offset, result, "the zip's end record")
        except OSError as exc:
            result.mark_error(f"cannot read file: {exc.strerror or exc}")
        return result

    def scan_directory(
        self, f: BinaryIO, path: str, directory: ZipDirectory, result: ScanResult
    ) -> None:
        limits = Limits.from_context(self.ctx)
        limits.model = self.display_path or path
        #: Storage keys each folder's data.pkl / constants.pkl names (persistent ids).
        self._keys: dict[str, set[str]] = {}
        result.bytes_scanned += directory.cd_size + 22
        where = self.location(path)
        for text in directory.anomalies:
            report_zip_anomaly(result, where, text)
        pickles: list[str] = []
        #: TorchScript sources not judged yet, and the bytes of all read so far.
        self._sources: list[tuple[ZipEntry, Source]] = []
        self._kept = 0
        prefixes = {e.name.split("/", 1)[0] for e in directory.entries if "/" in e.name}
        raw_payloads = self._pt2_raw_payloads(f, directory, limits)
        with MemberSpool() as spool:
            for entry in directory.entries:
                check_member_names(
                    result,
                    self.location(path, entry.name),
                    entry.name,
                    entry.unicode_name,
                    symlink=entry.is_symlink,
                    model=True,
                )
                if entry.is_dir or is_tensor_record(entry.name) or entry.name in raw_payloads:
                    continue
                if entry.name.lower().endswith((".py", "bytecode.pkl")):
                    self._judge_torchscript(f, path, entry, result, limits)
                if self._scan_entry(f, path, entry, result, limits, spool):
                    pickles.append(entry.name)
            for entry in directory.entries:
                if is_tensor_record(entry.name) and not self._referenced(entry.name):
                    self._unreferenced(f, path, entry, result, limits, spool)
        report_package_shadows(f, directory, lambda m: self.location(path, m), result, limits)
        judged = find_file_ops_in([source for _entry, source in self._sources])
        for (entry, _source), calls in zip(self._sources, judged, strict=True):
            self._report_source(path, entry, calls, result)
        details: dict[str, Any] = {
            "entries": len(directory.entries),
            "pickle_records": pickles,
            "folders": sorted(prefixes),
        }
        result.metadata.setdefault("format_details", details)
        if not pickles and not _torch_export(directory):
            result.add_issue(
                "PyTorch zip holds no pickle record",
                severity=IssueSeverity.INFO,
                location=where,
                details=details,
                rule=crules.CONTAINER_WITHOUT_CONTENT,
            )

    def _pt2_raw_payloads(self, f: BinaryIO, directory: ZipDirectory, limits: Limits) -> set[str]:
        """Records a `torch.export` archive's payload configs name with `use_pickle: false`.

        `torch.export.load` reads those as raw tensor bytes (`get_storage_from_record`), like
        the storages a data.pkl names, so they are not sniffed: a float32 weight whose first
        bytes happen to read as a msgpack map or a pickle opcode is still only floats. A record
        any config copy marks `use_pickle: true` (torch.load(weights_only=False)), or that no
        config names, is scanned as usual; a config that cannot be read names nothing.
        """
        raw: set[str] = set()
        pickled: set[str] = set()
        for entry in directory.entries:
            match = _PT2_PAYLOAD_CONFIG.fullmatch(entry.name)
            if match is None or entry.is_dir or entry.size > _MAX_PAYLOAD_CONFIG:
                continue
            try:
                stream, _raw, _anomaly = open_member(
                    f, entry, limit=_MAX_PAYLOAD_CONFIG, max_ratio=limits.max_ratio
                )
                config = loads_bounded(stream.read(_MAX_PAYLOAD_CONFIG + 1), "pt2 config values")
            except (MemberError, OSError, ValueError, RecursionError, BudgetExceeded):
                continue
            payloads = config.get("config") if isinstance(config, dict) else None
            for meta in payloads.values() if isinstance(payloads, dict) else ():
                name = meta.get("path_name") if isinstance(meta, dict) else None
                if isinstance(name, str) and name:
                    is_raw = meta.get("use_pickle") is False
                    (raw if is_raw else pickled).add(match["dir"] + name)
        return raw - pickled

    def _judge_torchscript(
        self, f: BinaryIO, path: str, entry: ZipEntry, result: ScanResult, limits: Limits
    ) -> None:
        """TorchScript source is compiled by torch.jit.load, not imported, and mobile
        bytecode is run by the lite interpreter: neither is Python or a pickle's imports, so
        their file-reaching builtins are judged here (the member read on its own, whatever it
        sniffs as, besides the checks it is routed to). Sources are kept and judged together
        after the last member, so a call of a scripted class's own `save` method is told from
        torch's, whichever member defines the class; past `_KEPT_SOURCES` in all, a source is
        judged on its own now and the kept ones without each other."""
        where = self.location(path, entry.name)
        try:
            stream, _raw, _anomaly = open_member(
                f, entry, limit=limits.remaining, max_ratio=limits.max_ratio, budget=limits.budget
            )
            data = stream.read(_SMALL_MEMBER)
        except (MemberError, OSError):
            return
        if len(data) >= _SMALL_MEMBER:
            result.mark_inconclusive(f"TorchScript record {entry.name!r} is too large to read")
        if entry.name.lower().endswith("bytecode.pkl"):
            for op in file_ops_in_bytecode(data):
                name = op.rsplit("::", 1)[1].split(".", 1)[0]
                result.add_issue(
                    f"TorchScript mobile bytecode calls {op}: {FILE_OPS[name]}",
                    severity=IssueSeverity.CRITICAL,
                    location=where,
                    details={"member": entry.name, "builtin": op},
                    why="The lite interpreter runs this bytecode (a scripted __setstate__ while "
                    "the model loads, forward on every call); the operator reaches the host's "
                    "files at a path the model chooses.",
                    rule=crules.TORCHSCRIPT_FILE_ACCESS,
                )
            return
        module = module_of(entry.name)
        text = data.decode("utf-8", "replace")
        self._sources.append((entry, Source(text, module, indexed=module is not None)))
        self._kept += len(data)
        if self._kept > _KEPT_SOURCES:
            for kept, source in self._sources:
                self._report_source(path, kept, find_file_ops(source.text), result)
            self._sources.clear()

    def _report_source(
        self, path: str, entry: ZipEntry, calls: list[FileOpCall], result: ScanResult
    ) -> None:
        where = self.location(path, entry.name)
        for op in sorted({c.op for c in calls}):
            mine = [c for c in calls if c.op == op]
            functions = sorted({c.function for c in mine if c.function})
            at_load = "__setstate__" in functions
            result.add_issue(
                f"TorchScript code calls {op}"
                + (" in __setstate__, which torch.jit.load runs" if at_load else "")
                + f": {FILE_OPS[op]}",
                severity=IssueSeverity.CRITICAL,
                location=where,
                details={
                    "member": entry.name,
                    "builtin": op,
                    "lines": sorted({c.line for c in mine})[:20],
                    "functions": functions[:20],
                },
                why="A TorchScript program cannot import Python, but these builtins reach the "
                "host's files at a path the model chooses; __setstate__ runs while the model "
                "loads, forward on every call.",
                rule=crules.TORCHSCRIPT_FILE_ACCESS,
            )

    def _referenced(self, name: str) -> bool:
        parts = name.replace("\\", "/").split("/")
        return parts[-1] in self._keys.get("/".join(parts[:-1]), ())

    def _unreferenced(
        self,
        f: BinaryIO,
        path: str,
        entry: ZipEntry,
        result: ScanResult,
        limits: Limits,
        spool: MemberSpool,
    ) -> None:
        """A storage record no pickle names is not tensor data torch will use: whatever it
        is (a pickle, a program, an archive), it is read as that."""
        where = self.location(path, entry.name)
        try:
            stream, raw, _anomaly = open_member(
                f, entry, limit=limits.remaining, max_ratio=limits.max_ratio, budget=limits.budget
            )
        except MemberError:
            return
        head = stream.peek(4096)[:4096]
        fmt = sniff_head(head, entry.name, entry.size)
        if fmt is None:
            return
        result.add_issue(
            f"Record {entry.name} is named by no pickle and holds {fmt}",
            severity=IssueSeverity.WARNING,
            location=where,
            details={"member": entry.name, "format": str(fmt)},
            why="torch.load only reads the storages data.pkl names; content shipped beside "
            "them is a payload for a later step or for another loader.",
            rule=crules.UNREFERENCED_RECORD,
        )
        if fmt == Format.PICKLE:

            def location(pos: int | None) -> str:
                return self.location(path, entry.name, pos)

            scan_pickle_stream(stream, result, location=location, ctx=self.ctx, depth=limits.depth)
        elif not depth_exceeded(result, limits, where):
            display = f"{self.display_path or path}:{entry.name}"
            scan_stream_member(result, spool, stream, entry.name, display, self.ctx, limits, raw)

    def _scan_entry(
        self,
        f: BinaryIO,
        path: str,
        entry: ZipEntry,
        result: ScanResult,
        limits: Limits,
        spool: MemberSpool,
    ) -> bool:
        """Scan one non-tensor record; True when it was a pickle."""
        where = self.location(path, entry.name)
        if entry.encrypted:
            # torch's reader (miniz) ignores the flag and reads the bytes as they are
            report_zip_anomaly(
                result,
                where,
                f"{entry.name!r} is flagged encrypted, but torch.load reads it in the clear",
            )
        try:
            stream, raw, anomaly = open_member(
                f, entry, limit=limits.remaining, max_ratio=limits.max_ratio, budget=limits.budget
            )
        except MemberError as exc:
            result.mark_inconclusive(f"malformed: {exc}")
            return False
        if anomaly:
            report_zip_anomaly(result, where, anomaly)
        head = stream.peek(4096)[:4096]

        def location(pos: int | None) -> str:
            return self.location(path, entry.name, pos)

        if not looks_like_pickle_member(entry.name, head, entry.size):
            if entry.size > _SMALL_MEMBER:
                return False
            if sniff_head(head, entry.name, entry.size):
                if not depth_exceeded(result, limits, where):
                    display = f"{self.display_path or path}:{entry.name}"
                    scan_stream_member(
                        result, spool, stream, entry.name, display, self.ctx, limits, raw
                    )
                return False
            # Sniffing cannot tell a large protocol-0 pickle from text; a probe can. Keep
            # what it found only if it found something (a text record is not "malformed").
            probe = ScanResult(scanner_name=self.name)
            scan_pickle_stream(stream, probe, location=location, ctx=self.ctx, depth=limits.depth)
            if any(i.severity.rank >= IssueSeverity.WARNING.rank for i in probe.issues):
                result.merge(probe)
                return True
            return False
        info = scan_pickle_stream(
            stream,
            result,
            location=location,
            ctx=self.ctx,
            stacked=True,
            depth=limits.depth,
        )
        parts = entry.name.replace("\\", "/").split("/")
        if parts[-1] in _RECORD_INDEX:
            key = "/".join([*parts[:-1], _RECORD_INDEX[parts[-1]]])
            self._keys.setdefault(key, set()).update(info.storage_keys)
        if raw is not None and raw.limit_hit:
            report_bomb(result, where, raw.limit_hit)
        elif raw is not None and (raw.error or raw.truncated):
            result.mark_inconclusive(f"malformed: {raw.error or 'member data is truncated'}")
        if entry.size <= _SMALL_MEMBER and crc_matches(f, entry, limits.remaining) is False:
            report_zip_anomaly(
                result,
                where,
                f"CRC of {entry.name!r} does not match (zipfile refuses it, torch loads it)",
            )
        return True
