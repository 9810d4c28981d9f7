"""Keras v3 `.keras` archives: config.json and metadata.json checked, every other member scanned.

`keras.saving.load_model` reads `config.json` to rebuild the model (the same Lambda, custom
object and download checks as H5 apply) and loads `model.weights.h5`, which is extracted to a
private temporary file and scanned through the dispatcher like any other member.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from typing import Any

from ...formats.zipdir import renamed, unicode_path
from ...rules import containers as crules
from ...rules import frameworks as R
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..containers.members import check_member_names, report_bomb
from ..containers.pytorch_zip_scanner import report_zip_anomaly
from .config import KerasConfigAnalyzer, model_names

MAX_JSON = 64 << 20
#: zipfile's answers to one member it cannot read; the member is reported, the rest still read.
_MEMBER_ERRORS = (NotImplementedError, RuntimeError, zipfile.BadZipFile, zlib.error, EOFError)
_JSON_MEMBERS = ("config.json", "metadata.json")


class KerasZipScanner(BaseScanner):
    name = "keras_zip"
    description = "Keras v3 .keras archives: config, metadata and embedded weights"
    supported_extensions = [".keras"]
    formats = ("keras_zip",)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        result.bytes_scanned = self.file_size(path)
        try:
            with zipfile.ZipFile(path) as zf:
                self._scan_zip(zf, path, result)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
            self.mark_malformed(result, path, ".keras archive", exc)
        except (NotImplementedError, RuntimeError, IndexError) as exc:
            # zipfile's answers to hostile archives (found by fuzzing): unsupported
            # compression or version, encrypted members, truncated extra fields.
            self.mark_malformed(result, path, ".keras archive", exc)
        result.finish()
        return result

    def _scan_zip(self, zf: zipfile.ZipFile, path: str, result: ScanResult) -> None:
        analyzer = KerasConfigAnalyzer()
        names: list[str] = []
        stopped = False  # JSON members are still read once the budget ran out
        opened: set[str] = set()
        for info in zf.infolist():
            member = info.filename
            if member in opened:
                report_zip_anomaly(
                    result,
                    self.location(path, member),
                    f"duplicate member name {member!r} (zipfile, and so Keras, opens the last)",
                )
            opened.add(member)
            norm = member.replace("\\", "/")
            raw = info.orig_filename.encode(
                "utf-8" if info.flag_bits & 0x800 else "cp437", "replace"
            )
            symlink = info.create_system == 3 and (info.external_attr >> 16) & 0o170000 == 0o120000
            upath = unicode_path(info.extra, raw)
            check_member_names(
                result,
                self.location(path, member),
                member,
                upath,
                symlink=symlink,
                model=True,
            )
            if info.is_dir():
                continue
            other = renamed(raw, member, upath)
            if other is not None:
                report_zip_anomaly(
                    result,
                    self.location(path, member),
                    f"member {member!r} carries an Info-ZIP Unicode Path naming {other!r}, "
                    "the name Python 3.12+ zipfile (and so Keras) opens it by",
                )
                if norm not in _JSON_MEMBERS and other.replace("\\", "/") in _JSON_MEMBERS:
                    norm = other.replace("\\", "/")
            flagged = bool(info.flag_bits & 0x1)
            if flagged:
                report_zip_anomaly(
                    result,
                    self.location(path, member),
                    f"{member!r} is flagged encrypted; read as readers that ignore the flag "
                    "(torch's miniz) read it",
                )
                info = copy.copy(info)
                info.flag_bits &= ~0x1
            if norm in _JSON_MEMBERS:
                try:
                    value = self._json(zf, info, path, result)
                except _MEMBER_ERRORS as exc:
                    self._unreadable(result, path, info, exc, flagged)
                    continue
                if value is None:
                    continue
                analyzer.analyze(value, norm)
                if norm == "config.json":
                    names += model_names(value)
                    if isinstance(value, dict):
                        compile_cfg = value.get("compile_config")
                        if compile_cfg is not None:
                            analyzer.analyze_training(compile_cfg, "config.json.compile_config")
                elif isinstance(value, dict) and isinstance(value.get("keras_version"), str):
                    result.metadata["format_details"] = {"keras_version": value["keras_version"]}
            elif not stopped:
                try:
                    stopped = not self._member(zf, info, path, result)
                except _MEMBER_ERRORS as exc:
                    self._unreadable(result, path, info, exc, flagged)
        for finding in analyzer.findings:
            where = str(finding.details.get("path", "config.json"))
            member = where.split(".json", 1)[0] + ".json" if ".json" in where else where
            result.add_issue(
                finding.message,
                severity=finding.severity,
                location=self.location(path, member),
                details=finding.details,
                why=finding.why,
                rule=finding.rule,
            )
        if analyzer.truncated:
            result.mark_inconclusive("Keras config too large or deeply nested to check fully")
        if names:
            result.metadata["model_names"] = names

    def _unreadable(
        self,
        result: ScanResult,
        path: str,
        info: zipfile.ZipInfo,
        exc: BaseException,
        flagged: bool,
    ) -> None:
        """One member zipfile cannot read (really encrypted, unknown method, corrupt) leaves the
        file inconclusive; the other members, config.json included, are still read."""
        if isinstance(exc, NotImplementedError):
            message, rule = f"Cannot decode zip member: {exc}", crules.UNSUPPORTED_COMPRESSION
        elif flagged:
            message = f"Encrypted zip member cannot be scanned: {info.filename}"
            rule = crules.ENCRYPTED_MEMBER
        else:
            self.mark_malformed(result, path, ".keras member", exc, info.filename)
            return
        result.add_issue(
            message,
            severity=IssueSeverity.WARNING,
            location=self.location(path, info.filename),
            why="Content that cannot be read cannot be verified.",
            rule=rule,
        )
        result.mark_inconclusive(message)

    def _json(
        self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, result: ScanResult
    ) -> Any:
        if info.file_size > MAX_JSON:
            result.mark_inconclusive(f"{info.filename} larger than {MAX_JSON} bytes; not checked")
            return None
        with zf.open(info) as fh:
            raw = fh.read(MAX_JSON + 1)
        try:
            return json.loads(raw)
        except ValueError as exc:
            result.add_issue(
                f"{info.filename} is not valid JSON: {exc}",
                severity=IssueSeverity.WARNING,
                location=self.location(path, info.filename),
                why="Keras may still act on part of it; nothing in it could be checked.",
                rule=R.KERAS_UNREADABLE_CONFIG,
            )
            result.mark_inconclusive(f"malformed: {info.filename} is not JSON")
            return None

    def _member(
        self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, result: ScanResult
    ) -> bool:
        """Extract and scan one member within the file's expansion budget (shared with every
        other member and level) and the per-member ratio; False when a limit stopped it."""
        if self.ctx.depth + 1 > self.ctx.max_depth:
            result.mark_inconclusive(f"{info.filename}: nesting deeper than max_depth")
            return True
        budget = self.ctx.expansion
        where = self.location(path, info.filename)
        refused = budget.why_not(info.file_size)
        if refused:
            budget.exceeded = refused
            report_bomb(
                result, where, f"{info.filename} declares {info.file_size} bytes: {refused}"
            )
            return False
        shown = f"{self.display_path or path}:{info.filename}"
        folder = tempfile.mkdtemp(prefix="modelaudit-keras-")
        try:
            target = os.path.join(folder, os.path.basename(info.filename) or "member")
            written = 0
            with zf.open(info) as src, open(target, "wb") as dst:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > budget.ratio_floor and written > budget.max_ratio * max(
                        1, info.compress_size
                    ):
                        report_bomb(
                            result,
                            where,
                            f"{info.filename} expands past {budget.max_ratio:g}:1 "
                            f"({written} bytes from {info.compress_size})",
                        )
                        return False
                    if not budget.charge(len(chunk)):
                        report_bomb(result, where, f"{info.filename}: {budget.exceeded}")
                        return False
                    dst.write(chunk)
            container = self.display_path or path
            config = {**self.ctx.config, "model_container": container}
            nested = self.ctx.scan_member(target, shown, config=config)
            nested.metadata.pop("model_names", None)
            result.merge(nested)
            return not budget.exceeded
        finally:
            shutil.rmtree(folder, ignore_errors=True)
