"""Code that runs inside a scan worker process.

Everything here executes in a child started by `anyio.to_process`; the parent kills the
child when a file overruns its deadline, so nothing here may rely on cleanup running.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from ..findings import ScanResult
from ..scanners.base import BaseScanner
from . import dispatch

_setup_done = False
#: Hooks run once per worker before its first scan (resource limits, audit hooks).
WORKER_SETUP: list[Callable[[dict[str, Any]], None]] = []


def _setup(config: dict[str, Any]) -> None:
    global _setup_done
    if _setup_done:
        return
    _setup_done = True
    for hook in WORKER_SETUP:
        hook(config)


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def scan_job(
    path: str,
    config: dict[str, Any],
    display: str,
    explicit: bool,
    registry: Sequence[type[BaseScanner]] | None,
) -> ScanResult:
    """Entry point of one file's scan in a worker."""
    _setup(config)
    dispatch.set_registry(registry)
    result = dispatch.scan_path(path, config, display=display, explicit=explicit)
    if config.get("hashes") and "sha256" not in result.metadata:
        with contextlib.suppress(OSError):
            result.metadata["sha256"] = sha256_file(path)
    return result
