"""Format scanners: the plugin API (`BaseScanner`, `SCANNER_REGISTRY`) and the built-in
scanners grouped by family (see docs/plugins.md and docs/architecture.md)."""

from __future__ import annotations

from .base import BaseScanner, IssueSeverity, ScanResult
from .registry import SCANNER_REGISTRY

__all__ = ["SCANNER_REGISTRY", "BaseScanner", "IssueSeverity", "ScanResult"]
