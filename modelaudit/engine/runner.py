"""The scan run: resolve targets, scan their objects concurrently, collect every result.

One anyio task group; a semaphore bounds how many files are in flight so that a lazy listing
of a million objects never turns into a million tasks. CPU work goes to worker processes
through `anyio.to_process`, gated by our own limiter so that the per-file deadline only
counts time spent scanning, not time spent queueing.
"""

from __future__ import annotations

import logging
import math
import pickle
import time
from collections.abc import Callable, Sequence

import anyio
import anyio.to_process
import anyio.to_thread
from anyio import CapacityLimiter, get_cancelled_exc_class
from anyio.abc import TaskGroup

from .. import rules
from ..config import ScanConfig
from ..fetchers import FetchError, ObjectRef, resolve
from ..findings import FileStatus, Issue, IssueSeverity, ScanResult, format_location
from ..report import FileReport, ScanReport
from ..scanners.base import BaseScanner
from .acquire import acquire
from .sniff import extension_format
from .worker import scan_job

log = logging.getLogger("modelaudit")

ProgressCallback = Callable[[FileReport], None]


def _picklable(classes: Sequence[type[BaseScanner]]) -> bool:
    try:
        pickle.dumps(tuple(classes))
    except Exception:
        return False
    return True


class ScanRun:
    def __init__(
        self,
        config: ScanConfig,
        report: ScanReport,
        progress: ProgressCallback | None = None,
    ) -> None:
        from ..scanners import SCANNER_REGISTRY

        self.config = config
        self.report = report
        self.progress = progress
        self.jobs = max(1, config.jobs)
        self.cpu = CapacityLimiter(self.jobs)
        self.pool = CapacityLimiter(self.jobs)
        self.fetch = CapacityLimiter(max(1, config.fetch_jobs))
        self.in_flight = anyio.Semaphore(self.jobs * 8 + config.fetch_jobs)
        self.registry = tuple(SCANNER_REGISTRY)
        self.use_processes = config.use_processes
        if self.use_processes and not _picklable(self.registry):
            log.warning(
                "a registered scanner cannot be sent to worker processes; scanning in-process"
            )
            self.use_processes = False
        self.scanner_config = config.scanner_config()

    def _record(self, file_report: FileReport) -> None:
        self.report.files.append(file_report)
        if self.progress is not None:
            try:
                self.progress(file_report)
            except Exception:
                log.debug("progress callback failed", exc_info=True)

    async def scan_target(self, target: str, tg: TaskGroup) -> None:
        try:
            source = resolve(target, self.scanner_config)
        except FetchError as exc:
            self.report.target_errors.append({"target": target, "error": str(exc)})
            return
        try:
            async for obj in source.objects():
                await self.in_flight.acquire()
                tg.start_soon(self.scan_object, obj)
        except FetchError as exc:
            self.report.target_errors.append({"target": target, "error": str(exc)})
        finally:
            with anyio.CancelScope(shield=True):
                await source.aclose()

    async def scan_object(self, obj: ObjectRef) -> None:
        fr = FileReport(path=obj.uri, size=obj.size, remote=obj.is_remote)
        started = time.monotonic()
        try:
            await self._scan_object(obj, fr)
        except get_cancelled_exc_class():
            self._mark_timeout(fr, self.config.timeout, run_deadline=True)
            raise
        except FetchError as exc:
            fr.status = FileStatus.ERROR
            fr.status_reason = str(exc)
            fr.issues.append(self._info(fr, f"Could not fetch file: {exc}", rules.SCAN_ERROR))
        except Exception as exc:
            log.debug("scan of %s failed", obj.uri, exc_info=True)
            fr.status = FileStatus.ERROR
            fr.status_reason = f"{type(exc).__name__}: {exc}"
            fr.issues.append(self._info(fr, f"Scan failed: {fr.status_reason}", rules.SCAN_ERROR))
        finally:
            fr.duration = time.monotonic() - started
            self.in_flight.release()
            if obj.reader is not None:
                with anyio.CancelScope(shield=True):
                    await obj.reader.aclose()
            self._record(fr)

    @staticmethod
    def _info(fr: FileReport, message: str, rule: str) -> Issue:
        return Issue(
            message=message,
            severity=IssueSeverity.INFO,
            location=format_location(fr.path),
            rule=rule,
        )

    def _mark_timeout(self, fr: FileReport, seconds: float, run_deadline: bool) -> None:
        fr.status = FileStatus.INCONCLUSIVE
        fr.status_reason = f"Scan timeout after {seconds:g} seconds"
        if run_deadline:
            fr.status_reason += " (run deadline reached)"
        fr.issues.append(self._info(fr, fr.status_reason, rules.SCAN_TIMEOUT))

    async def _scan_object(self, obj: ObjectRef, fr: FileReport) -> None:
        limit = self.config.max_file_size
        if limit and obj.size is not None and obj.size > limit:
            fr.format = extension_format(obj.uri)
            fr.status = FileStatus.INCONCLUSIVE
            fr.status_reason = "File too large to scan"
            fr.issues.append(
                Issue(
                    message=f"File too large to scan ({obj.size} bytes, limit {limit} bytes)",
                    severity=IssueSeverity.WARNING,
                    location=format_location(obj.uri),
                    details={"size": obj.size, "max_file_size": limit},
                    why="Files over --max-size are not read, so this one is unverified.",
                    rule=rules.FILE_TOO_LARGE,
                )
            )
            return
        if obj.is_remote:
            async with self.fetch, acquire(obj, self.config) as path:
                await self._scan_local(obj, path, fr)
        else:
            assert obj.local_path is not None
            await self._scan_local(obj, obj.local_path, fr)

    async def _scan_local(self, obj: ObjectRef, path: str, fr: FileReport) -> None:
        deadline = self.config.per_file_timeout or math.inf
        result: ScanResult | None = None
        async with self.cpu:
            with anyio.move_on_after(deadline) as scope:
                try:
                    result = await self._run_scanner(path, obj)
                except anyio.BrokenWorkerProcess:
                    fr.status = FileStatus.ERROR
                    fr.status_reason = "scanner process crashed (killed, out of memory or a fault)"
                    fr.issues.append(self._info(fr, fr.status_reason, rules.SCAN_ERROR))
                    return
        if scope.cancelled_caught or result is None:
            self._mark_timeout(fr, deadline, run_deadline=False)
            return
        fr.scanner = result.scanner_name if result.scanner_name != "none" else None
        fr.format = result.metadata.pop("format", None) or extension_format(obj.uri) or fr.scanner
        fr.status = result.status
        fr.status_reason = result.status_reason
        fr.bytes_scanned = result.bytes_scanned
        fr.sha256 = result.metadata.pop("sha256", None)
        fr.metadata = result.metadata
        fr.issues.extend(result.issues)

    async def _run_scanner(self, path: str, obj: ObjectRef) -> ScanResult:
        args = (path, self.scanner_config, obj.uri, obj.explicit)
        if not self.use_processes:
            return await anyio.to_thread.run_sync(
                scan_job, *args, self.registry, abandon_on_cancel=True
            )
        return await anyio.to_process.run_sync(
            scan_job, *args, self.registry, cancellable=True, limiter=self.pool
        )


async def run_scan(
    targets: Sequence[str],
    config: ScanConfig,
    progress: ProgressCallback | None = None,
    command_line: Sequence[str] | None = None,
) -> ScanReport:
    """Scan every target and return the merged report; never raises for a bad file."""
    report = ScanReport(targets=list(targets), command_line=list(command_line or []))
    run = ScanRun(config, report, progress)
    deadline = config.timeout if config.timeout and config.timeout > 0 else math.inf
    with anyio.move_on_after(deadline) as scope:
        async with anyio.create_task_group() as tg:
            for target in targets:
                tg.start_soon(run.scan_target, target, tg)
    if scope.cancelled_caught:
        report.interrupted = f"Scan timeout after {config.timeout:g} seconds (whole run)"
    report.files.sort(key=lambda f: f.path)
    report.end_time = time.time()
    return report
