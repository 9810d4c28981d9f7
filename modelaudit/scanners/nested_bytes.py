"""Scan bytes found inside a file (a pickle in a metadata string, a bytes value).

Pickles go straight to the pickle engine's `scan_pickle_bytes`, one level deeper; anything
else (or a pickle when that engine is absent) goes to a private temporary file and through
`engine.dispatch.scan_path`, so routing stays in one place and the depth limit holds across
every kind of nesting.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ..engine.sniff import PICKLE
from ..findings import ScanResult, format_location


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
    nested_config = {k: v for k, v in config.items() if not k.startswith("_")}
    if fmt == PICKLE:
        try:
            from .pickles import scan_pickle_bytes
        except ImportError:
            pass
        else:
            result = ScanResult(scanner_name="pickle")
            scan_pickle_bytes(
                data,
                result,
                location=lambda pos: format_location(display, pos=pos),
                config={**nested_config, "_depth": depth},
                depth=depth,
            )
            result.finish()
            return result
    with tempfile.TemporaryDirectory(prefix="modelaudit-nested-") as tmp:
        path = os.path.join(tmp, "embedded.bin")
        with open(path, "wb") as f:
            f.write(data)
        return dispatch.scan_path(
            path, nested_config, display=display, explicit=False, depth=depth, fmt=fmt
        )
