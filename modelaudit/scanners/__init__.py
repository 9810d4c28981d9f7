"""Format scanners: the plugin API (`BaseScanner`, `SCANNER_REGISTRY`) and the built-in
scanners grouped by family (see docs/plugins.md and docs/architecture.md).

`SCANNER_REGISTRY` is built on first use (see `registry`): importing this package imports no
scanner module, so a worker loads only the scanners its files need.
"""

from __future__ import annotations

from typing import Any

from .base import BaseScanner, IssueSeverity, ScanResult

SCANNER_REGISTRY: list[type[BaseScanner]]

__all__ = ["SCANNER_REGISTRY", "BaseScanner", "IssueSeverity", "ScanResult"]


def __getattr__(name: str) -> Any:
    if name == "SCANNER_REGISTRY":
        from .registry import materialize

        return materialize()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
