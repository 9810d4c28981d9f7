"""The public Python API.

`scan_model_directory_or_file` is the synchronous call the reference documents and returns
the JSON-shaped dict; `scan` is the async API for one-off scans from an event loop; a service
that scans repeatedly keeps a `Scanner` open (its worker pool stays warm). All three are one
call on a `Scanner`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from .config import ScanConfig
from .engine.runner import ProgressCallback
from .engine.scanner import Scanner, run_scan
from .fingerprints import assign_fingerprints
from .report import ScanReport

__all__ = ["ScanConfig", "ScanReport", "Scanner", "scan", "scan_model_directory_or_file"]


async def scan(
    targets: str | Sequence[str],
    config: ScanConfig | dict[str, Any] | None = None,
    *,
    progress: ProgressCallback | None = None,
    **options: Any,
) -> ScanReport:
    """Scan files, directories or remote URIs without blocking the running event loop.

    CPU work happens in worker processes and file I/O in threads, so a service awaiting this
    keeps serving its other requests. Each call starts and stops its own workers; a service
    scanning repeatedly should keep one `Scanner` open instead.
    """
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(config, ScanConfig):
        config = ScanConfig.from_mapping({**(config or {}), **options})
    elif options:
        raise TypeError("pass options either in a ScanConfig or as keywords, not both")
    return await run_scan(list(targets), config, progress=progress)


def _run_blocking(targets: Sequence[str], config: ScanConfig) -> ScanReport:
    import anyio

    async def main() -> ScanReport:
        return await run_scan(list(targets), config)

    try:
        import uvloop  # noqa: F401

        backend_options: dict[str, Any] = {"use_uvloop": True}
    except ImportError:
        backend_options = {}
    return anyio.run(main, backend_options=backend_options)


def _in_running_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def scan_report(targets: str | Sequence[str], **config: Any) -> ScanReport:
    """Blocking scan returning the report object; safe to call from inside an event loop."""
    if isinstance(targets, str):
        targets = [targets]
    cfg = ScanConfig.from_mapping(config)
    if not _in_running_loop():
        return _run_blocking(targets, cfg)
    box: dict[str, Any] = {}

    def worker() -> None:
        try:
            box["report"] = _run_blocking(targets, cfg)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=worker, name="modelaudit-scan")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    report: ScanReport = box["report"]
    return report


def scan_model_directory_or_file(path: str | Sequence[str], **config: Any) -> dict[str, Any]:
    """Scan a file, directory or URI and return the JSON report as a dict.

    Config keys follow the reference: `blacklist_patterns`, `max_file_size`, `timeout`, plus
    every `ScanConfig` field.
    """
    report = scan_report(path, **config)
    assign_fingerprints(report)
    return report.to_dict()
