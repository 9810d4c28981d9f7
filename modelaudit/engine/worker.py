"""Code that runs inside a scan worker process.

Everything here executes in a child started by `anyio.to_process`; the parent kills the
child when a file overruns its deadline, so nothing here may rely on cleanup running.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..findings import ScanResult
from . import sandbox

if TYPE_CHECKING:
    from ..scanners.base import BaseScanner

_setup_done = False
#: Hooks run once per worker before its first scan (resource limits, audit hooks).
WORKER_SETUP: list[Callable[[dict[str, Any]], None]] = [sandbox.install]


def _setup(config: dict[str, Any]) -> None:
    global _setup_done
    if _setup_done:
        return
    _setup_done = True
    for hook in WORKER_SETUP:
        hook(config)


def ping(registry: Sequence[type[BaseScanner]] | None) -> bool:
    """Start-up probe: import every scanner module in this worker before its first file."""
    from . import dispatch

    return dispatch.registry() is not None and (registry is None or len(registry) >= 0)


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
    isolated: bool = False,
) -> ScanResult:
    """Entry point of one file's scan.

    `isolated` is set only in a worker process: the setup hooks (audit hook, resource limits)
    change the whole process for good, so they never run in the parent's threads.
    """
    from . import dispatch

    dispatch.set_registry(registry)
    if not isolated:
        return _guarded_scan(path, config, display, explicit)
    _setup(config)
    with sandbox.scanning(display, config) as refused:
        result = _guarded_scan(path, config, display, explicit)
    sandbox.report_violations(result, display, refused)
    return result


def _guarded_scan(path: str, config: dict[str, Any], display: str, explicit: bool) -> ScanResult:
    """Turn what dispatch lets through (CPU limit, a scanner calling exit) into a result.

    Anything else escaping here would reach the parent as an exception that ends the run.
    """
    try:
        return _scan(path, config, display, explicit)
    except sandbox.ResourceLimitExceeded as exc:
        result = ScanResult(scanner_name="none")
        sandbox.report_resource_limit(result, display, str(exc))
    except (SystemExit, KeyboardInterrupt) as exc:
        result = ScanResult(scanner_name="none")
        result.mark_error(f"the scanner tried to end the process ({type(exc).__name__})")
    result.finish()
    return result


def _scan(path: str, config: dict[str, Any], display: str, explicit: bool) -> ScanResult:
    from . import dispatch

    result = dispatch.scan_path(path, config, display=display, explicit=explicit)
    if config.get("hashes") and "sha256" not in result.metadata:
        with contextlib.suppress(OSError):
            result.metadata["sha256"] = sha256_file(path)
    return result
