"""modelaudit: a static security scanner for machine-learning model files.

It reports what loading a model would run, without ever loading it. The public surfaces are
`modelaudit.Scanner` (a long-lived engine for services), `modelaudit.scan` (async, one call),
`modelaudit.core.scan_model_directory_or_file` (sync) and the `modelaudit` command. Submodules are imported on first use to keep start-up fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .config import ScanConfig
    from .core import scan, scan_model_directory_or_file
    from .engine.scanner import Scanner
    from .report import ScanReport

__all__ = [
    "ScanConfig",
    "ScanReport",
    "Scanner",
    "__version__",
    "scan",
    "scan_model_directory_or_file",
]


def __getattr__(name: str) -> Any:
    if name == "Scanner":
        from .engine.scanner import Scanner

        return Scanner
    if name in ("scan", "scan_model_directory_or_file"):
        from . import core

        return getattr(core, name)
    if name == "ScanConfig":
        from .config import ScanConfig

        return ScanConfig
    if name == "ScanReport":
        from .report import ScanReport

        return ScanReport
    raise AttributeError(f"module 'modelaudit' has no attribute {name!r}")
