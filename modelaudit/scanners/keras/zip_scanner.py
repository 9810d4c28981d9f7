"""Keras v3 `.keras` archives: config.json and metadata.json checked, every other member scanned.

`keras.saving.load_model` opens the archive with Python's zipfile and reads `config.json` by
name (zipfile keeps the last of duplicate names) to rebuild the model (the same Lambda, custom
object and download checks as H5 apply), then loads `model.weights.h5`. The archive is read
with `formats/zipdir`, the one zip parser: it lists every central entry, duplicates included,
so every copy of config.json is checked, the one Keras loads is told apart, and copies that
disagree are reported. Other members are extracted one at a time within the expansion budget
and scanned by their own format through the context's `scan_member`.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

from ...budget import BudgetExceeded, WorkBudget, report_budget
from ...formats import Format
from ...formats.json_values import MAX_JSON_VALUES, values_bound
from ...formats.zipdir import MemberError, ZipDirectory, ZipEntry, ZipFormatError, read_directory
from ...rules import containers as crules
from ...rules import frameworks as R
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..containers.members import (
    Limits,
    MemberSpool,
    budget_refuses,
    check_member_names,
    depth_exceeded,
    scan_stream_member,
)
from ..containers.zip_members import clear_despite_flag, open_member, report_zip_anomaly
from .config import KerasConfigAnalyzer, model_names

MAX_JSON: Final = 64 << 20
_CONFIG: Final = "config.json"
_METADATA: Final = "metadata.json"
_JSON_MEMBERS: Final = (_CONFIG, _METADATA)


@dataclass
class _JsonCopy:
    entry: ZipEntry
    data: bytes


def _json_role(entry: ZipEntry) -> str | None:
    """config.json / metadata.json when the member is opened by that name: its header name
    (zipfile up to 3.11) or its Info-ZIP Unicode Path (zipfile 3.12+)."""
    for name in (entry.name, entry.renamed):
        if name is not None and name.replace("\\", "/") in _JSON_MEMBERS:
            return name.replace("\\", "/")
    return None


def loaded_copy(copies: list[_JsonCopy], primary: int) -> _JsonCopy | None:
    """The copy `zipfile.ZipFile.open(name)` returns: the last central entry of the directory
    zipfile reads that bears the name in its header, else (3.12+) in its Unicode Path."""
    seen = [c for c in copies if c.entry.index < primary]
    for exact in (True, False):
        named = [c for c in seen if (c.entry.name.replace("\\", "/") in _JSON_MEMBERS) is exact]
        if named:
            return named[-1]
    return None


class KerasZipScanner(BaseScanner):
    name = "keras_zip"
    description = "Keras v3 .keras archives: config, metadata and embedded weights"
    supported_extensions = [".keras"]
    formats = (Format.KERAS_ZIP,)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        result.metadata["format"] = self.ctx.format or Format.KERAS_ZIP
        size = self.file_size(path)
        result.bytes_scanned = size
        try:
            with open(path, "rb") as f:
                directory = read_directory(f, size)
                self._scan_directory(f, path, directory, result)
            self.scan_after_end(path, directory.end_offset, result, "the zip's end record")
        except ZipFormatError as exc:
            self.mark_malformed(result, path, ".keras archive", exc)
        except OSError as exc:
            result.mark_error(f"cannot read file: {exc.strerror or exc}")
        result.finish()
        return result

    def _scan_directory(
        self, f: BinaryIO, path: str, directory: ZipDirectory, result: ScanResult
    ) -> None:
        limits = Limits.from_context(self.ctx)
        limits.model = self.display_path or path
        for text in directory.anomalies:
            report_zip_anomaly(result, self.location(path), text)
        copies: dict[str, list[_JsonCopy]] = {name: [] for name in _JSON_MEMBERS}
        going = True  # JSON members are still read once the budget ran out
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
                    continue
                if entry.encrypted:
                    if not clear_despite_flag(f, entry, limits.remaining, limits.max_ratio):
                        self._unreadable(
                            result,
                            where,
                            f"Encrypted zip member cannot be scanned: {entry.name}",
                            crules.ENCRYPTED_MEMBER,
                        )
                        continue
                    report_zip_anomaly(
                        result,
                        where,
                        f"{entry.name!r} is flagged encrypted; zipfile (and so Keras) refuses "
                        "it, readers that ignore the flag (torch's miniz) read it: read as they do",
                    )
                role = _json_role(entry)
                if role is not None:
                    data = self._json_bytes(f, path, entry, result)
                    if data is not None:
                        copies[role].append(_JsonCopy(entry, data))
                elif going:
                    going = self._member(f, path, entry, result, limits, spool)
        result.metadata.pop("model_names", None)  # a member's own names are not the model's
        analyzer = KerasConfigAnalyzer()
        budget = WorkBudget("Keras JSON values", MAX_JSON_VALUES)
        for role, found in copies.items():
            self._check_json(path, role, found, directory.primary, analyzer, budget, result)
        analyzer.report(
            result, lambda at: self.location(path, _member_of(at)), _CONFIG, "config", self.ctx
        )

    def _check_json(
        self,
        path: str,
        role: str,
        found: list[_JsonCopy],
        primary: int,
        analyzer: KerasConfigAnalyzer,
        budget: WorkBudget,
        result: ScanResult,
    ) -> None:
        """Every distinct copy is analysed (a loader other than zipfile may take any); the
        one Keras loads gives the model's names and version."""
        loaded = loaded_copy(found, primary)
        distinct = {c.data for c in found}
        if len(distinct) > 1:
            chosen = f"entry #{loaded.entry.index}" if loaded else "none of them"
            report_zip_anomaly(
                result,
                self.location(path, role),
                f"{len(found)} entries open as {role!r} with {len(distinct)} different contents; "
                f"zipfile (and so Keras) loads {chosen}, the last in its directory; "
                "every copy was checked",
            )
        values: dict[bytes, Any] = {}
        for copy in found:
            if copy.data in values:
                continue
            value = values[copy.data] = self._parse(path, copy.entry, copy.data, budget, result)
            if value is None:
                continue
            analyzer.analyze(value, role)
            if role == _CONFIG and isinstance(value, dict):
                compile_cfg = value.get("compile_config")
                if compile_cfg is not None:
                    analyzer.analyze_training(compile_cfg, "config.json.compile_config")
        if loaded is None:
            return
        value = values.get(loaded.data)
        if role == _CONFIG:
            names = model_names(value)
            if names:
                result.metadata["model_names"] = names
        elif isinstance(value, dict) and isinstance(value.get("keras_version"), str):
            result.metadata["format_details"] = {"keras_version": value["keras_version"]}

    def _unreadable(self, result: ScanResult, where: str, message: str, rule: str) -> None:
        """One member that cannot be read (really encrypted, unknown method) leaves the file
        inconclusive; the other members, config.json included, are still read."""
        result.add_issue(
            message,
            severity=IssueSeverity.WARNING,
            location=where,
            why="Content that cannot be read cannot be verified.",
            rule=rule,
        )
        result.mark_inconclusive(message)

    def _open_failed(
        self, path: str, entry: ZipEntry, exc: MemberError, result: ScanResult
    ) -> None:
        text = str(exc)
        if "unsupported" in text or "not installed" in text:
            self._unreadable(
                result,
                self.location(path, entry.name),
                f"Cannot decode zip member: {exc}",
                crules.UNSUPPORTED_COMPRESSION,
            )
        else:
            self.mark_malformed(result, path, ".keras member", exc, entry.name)

    def _json_bytes(
        self, f: BinaryIO, path: str, entry: ZipEntry, result: ScanResult
    ) -> bytes | None:
        """A JSON member's bytes as zipfile returns them, with what zipfile would refuse
        (a local name or CRC that disagrees, truncated data) reported and read anyway."""
        where = self.location(path, entry.name)
        if entry.size > MAX_JSON:
            result.mark_inconclusive(f"{entry.name} larger than {MAX_JSON} bytes; not checked")
            return None
        try:
            stream, raw, anomaly = open_member(f, entry, limit=MAX_JSON + 1)
            data = stream.read(MAX_JSON + 1)
        except MemberError as exc:
            self._open_failed(path, entry, exc, result)
            return None
        if anomaly:
            report_zip_anomaly(result, where, anomaly + " (zipfile, and so Keras, refuses it)")
        if len(data) > MAX_JSON or (raw is not None and raw.limit_hit):
            result.mark_inconclusive(f"{entry.name} larger than {MAX_JSON} bytes; not checked")
            return None
        if raw is not None and (raw.error or raw.truncated):
            self.mark_malformed(
                result, path, ".keras member", raw.error or "data is truncated", entry.name
            )
        elif len(data) != entry.size:
            self.mark_malformed(
                result,
                path,
                ".keras member",
                f"{len(data)} bytes where the directory declares {entry.size}",
                entry.name,
            )
        elif zlib.crc32(data) != entry.crc:
            report_zip_anomaly(
                result,
                where,
                f"CRC of {entry.name!r} does not match (zipfile, and so Keras, refuses it)",
            )
        return data

    def _parse(
        self, path: str, entry: ZipEntry, data: bytes, budget: WorkBudget, result: ScanResult
    ) -> Any:
        """The member's JSON, unless parsing it (with the copies before it) could build more
        values than the budget allows: then the file is inconclusive, said once."""
        if budget.exhausted:
            return None
        try:
            budget.charge(values_bound(data))
        except BudgetExceeded as exc:
            report_budget(result, self.location(path, entry.name), exc)
            return None
        try:
            return json.loads(data)
        except ValueError as exc:
            result.add_issue(
                f"{entry.name} is not valid JSON: {exc}",
                severity=IssueSeverity.WARNING,
                location=self.location(path, entry.name),
                why="Keras may still act on part of it; nothing in it could be checked.",
                rule=R.KERAS_UNREADABLE_CONFIG,
            )
            result.mark_inconclusive(f"malformed: {entry.name} is not JSON")
            return None

    def _member(
        self,
        f: BinaryIO,
        path: str,
        entry: ZipEntry,
        result: ScanResult,
        limits: Limits,
        spool: MemberSpool,
    ) -> bool:
        """Extract and scan one member within the file's expansion budget (shared with every
        other member and level) and the per-member ratio; False when a limit stopped it."""
        where = self.location(path, entry.name)
        if depth_exceeded(result, limits, where):
            return False
        if budget_refuses(result, limits, where, f"{entry.name} declares", entry.size):
            return False
        try:
            stream, raw, anomaly = open_member(
                f, entry, limit=limits.remaining, max_ratio=limits.max_ratio, budget=limits.budget
            )
        except MemberError as exc:
            self._open_failed(path, entry, exc, result)
            return True
        if anomaly:
            report_zip_anomaly(result, where, anomaly)
        display = f"{self.display_path or path}:{entry.name}"
        return scan_stream_member(
            result, spool, stream, entry.name, display, self.ctx, limits, raw, also_as=entry.renamed
        )


def _member_of(where: str) -> str:
    """The JSON member a finding's config path starts with (its name up to `.json`)."""
    return where.split(".json", 1)[0] + ".json" if ".json" in where else where
