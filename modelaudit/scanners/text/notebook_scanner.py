"""Jupyter notebooks (`.ipynb`): JSON cells whose code runs only when a person runs them.

No model loader executes a notebook, so a notebook is complete; the INFO says how much code
it holds, for whoever is about to run it.
"""

from __future__ import annotations

import json
from typing import Final

from ...budget import read_capped
from ...formats import Format
from ...formats.json_values import MAX_DOCUMENT_VALUES, values_bound
from ...rules.text import NOTEBOOK_CODE
from ..base import BaseScanner, IssueSeverity, ScanResult

MAX_NOTEBOOK_BYTES: Final = 64 * 1024 * 1024


class NotebookScanner(BaseScanner):
    name = "notebook"
    description = "Jupyter notebooks: code cells counted, never run"
    supported_extensions = [".ipynb"]
    formats = (Format.NOTEBOOK,)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        size = self.file_size(path)
        details: dict[str, object] = {"size": size}
        raw = b"" if size > MAX_NOTEBOOK_BYTES else read_capped(path, MAX_NOTEBOOK_BYTES)
        if (
            size > MAX_NOTEBOOK_BYTES
            or len(raw) > MAX_NOTEBOOK_BYTES
            or values_bound(raw) > MAX_DOCUMENT_VALUES
        ):
            message = "Jupyter notebook too large to list its cells; no model loader runs it"
        else:
            result.bytes_scanned = size
            message = _describe(raw, details)
        result.add_issue(
            message,
            severity=IssueSeverity.INFO,
            location=self.location(path),
            details=details,
            rule=NOTEBOOK_CODE,
        )
        result.finish()
        return result


def _describe(raw: bytes, details: dict[str, object]) -> str:
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "Not a valid Jupyter notebook (Jupyter refuses it); no model loader runs it"
    cells = doc.get("cells") if isinstance(doc, dict) else None
    if not isinstance(cells, list):
        return "JSON without notebook cells; no model loader runs it"
    code = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]
    shell = sum(
        1
        for c in code
        if any(
            line.lstrip().startswith(("!", "%%bash", "%%sh", "%system"))
            for line in _source_lines(c.get("source"))
        )
    )
    details.update({"cells": len(cells), "code_cells": len(code), "shell_cells": shell})
    shells = f", {shell} with shell commands" if shell else ""
    return (
        f"Jupyter notebook with {len(code)} code cells{shells}: they run only when someone "
        "executes the notebook"
    )


def _source_lines(source: object) -> list[str]:
    if isinstance(source, str):
        return source.splitlines()
    if isinstance(source, list):
        return [s for s in source if isinstance(s, str)]
    return []
