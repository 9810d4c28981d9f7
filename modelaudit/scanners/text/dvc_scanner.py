"""DVC files met in a folder: `dvc add` pointers (`*.dvc`) and old single-stage files.

A pointer names data kept in a DVC remote (hash, size, path); nothing runs it, and the data
is scanned only when the pointer is given as a target (the DVC fetcher). Stage files of DVC
1.x can carry a `cmd` that `dvc repro` runs in a shell: that is worth a warning.
"""

from __future__ import annotations

from ...formats import Format
from ...rules.text import DVC_POINTER, DVC_STAGE_COMMAND
from ..base import BaseScanner, IssueSeverity, ScanResult
from .yaml_document import vetted_document

_MAX_LISTED = 20


class DvcScanner(BaseScanner):
    name = "dvc"
    description = "DVC pointer and stage files: what they point at, stage commands"
    supported_extensions = [".dvc"]
    formats = (Format.DVC,)

    def scan(self, path: str) -> ScanResult:
        result, doc = vetted_document(self, path)
        if not isinstance(doc, dict):
            result.finish()
            return result
        outs = doc.get("outs")
        outs = outs if isinstance(outs, list) else []
        paths = [str(o.get("path")) for o in outs if isinstance(o, dict) and o.get("path")]
        if isinstance(doc.get("cmd"), str | list):
            result.add_issue(
                f"DVC stage command runs on `dvc repro`: {str(doc['cmd'])[:200]}",
                severity=IssueSeverity.WARNING,
                location=self.location(path),
                details={"cmd": str(doc["cmd"])[:1000]},
                why="`dvc repro` runs this shell command; a pointer written by `dvc add` has none.",
                rule=DVC_STAGE_COMMAND,
            )
        result.add_issue(
            f"DVC pointer to {', '.join(paths[:_MAX_LISTED]) or 'no outputs'}: the data is kept "
            "in a DVC remote; give this file to modelaudit as a target to scan it",
            severity=IssueSeverity.INFO,
            location=self.location(path),
            details={"outs": paths[:_MAX_LISTED]},
            rule=DVC_POINTER,
        )
        result.finish()
        return result
