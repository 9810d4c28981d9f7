"""Scan bytes found inside a file (a pickle in a metadata string, a bytes value) as a file.

Routing stays in `engine.dispatch`: the bytes go to a private temporary file and through
`scan_path`, one level deeper, so the pickle engine (or whichever scanner owns the format)
judges them and the depth limit holds across every kind of nesting.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ..findings import ScanResult


def scan_nested_bytes(
    data: bytes, config: dict[str, Any], display: str, fmt: str | None = None
) -> ScanResult:
    """The nested scan's result; inconclusive when the depth limit forbids looking."""
    from ..engine import dispatch

    depth = int(config.get("_depth", 0)) + 1
    if depth > int(config.get("max_depth", 5)):
        result = ScanResult(scanner_name="nested")
        result.mark_inconclusive(f"nesting depth limit reached at {display}")
        result.finish()
        return result
    with tempfile.TemporaryDirectory(prefix="modelaudit-nested-") as tmp:
        path = os.path.join(tmp, "embedded.bin")
        with open(path, "wb") as f:
            f.write(data)
        nested_config = {k: v for k, v in config.items() if not k.startswith("_")}
        return dispatch.scan_path(
            path, nested_config, display=display, explicit=False, depth=depth, fmt=fmt
        )
