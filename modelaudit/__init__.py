"""modelaudit: a static security scanner for machine-learning model files.

It reports what loading a model would run, without ever loading it. This module declares the
whole public surface (`__all__`, pinned by tests/test_public_api.py): `Scanner` (a long-lived
engine for services), `scan` (async, one call), `scan_model_directory_or_file` (sync) and the
report and finding types. Names are imported on first use so that `modelaudit --help` and
worker start-up stay fast. The scanner plugin API lives in `modelaudit.scanners` (see
docs/plugins.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .config import ScanConfig
    from .core import scan, scan_model_directory_or_file
    from .engine.scanner import Scanner
    from .findings import FileStatus, Issue, IssueSeverity, ScanResult
    from .formats import Format
    from .report import FileReport, ScanReport

#: Public name -> the module that defines it.
_HOMES = {
    "FileReport": ".report",
    "FileStatus": ".findings",
    "Format": ".formats",
    "Issue": ".findings",
    "IssueSeverity": ".findings",
    "ScanConfig": ".config",
    "ScanReport": ".report",
    "ScanResult": ".findings",
    "Scanner": ".engine.scanner",
    "scan": ".core",
    "scan_model_directory_or_file": ".core",
}

__all__ = [
    "FileReport",
    "FileStatus",
    "Format",
    "Issue",
    "IssueSeverity",
    "ScanConfig",
    "ScanReport",
    "ScanResult",
    "Scanner",
    "__version__",
    "scan",
    "scan_model_directory_or_file",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'modelaudit' has no attribute {name!r}")
    return getattr(importlib.import_module(home, __name__), name)
