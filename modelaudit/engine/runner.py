"""The scan run: resolve targets, scan their objects concurrently, collect every result.

One anyio task group; a semaphore bounds how many files are in flight so that a lazy listing
of a million objects never turns into a million tasks. CPU work goes to worker processes
through `anyio.to_process`, gated by our own limiter so that the per-file deadline only
counts time spent scanning, not time spent queueing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING

import anyio
import anyio.to_process
import anyio.to_thread
from anyio import CapacityLimiter, get_cancelled_exc_class
from anyio.abc import TaskStatus

from .. import rules
from ..config import ScanConfig
from ..fetchers import FetchError, ObjectRef, resolve
from ..findings import FileStatus, Issue, IssueSeverity, ScanResult, format_location
from ..formats import extension_format
from ..redact import redact_report
from ..report import FileReport, ScanReport
from .acquire import acquire
from .worker import ping, scan_job

if TYPE_CHECKING:
    from ..scanners.base import BaseScanner

log = logging.getLogger("modelaudit")

ProgressCallback = Callable[[FileReport], None]

#: How long listing goes on after an interruption, to name the files left unscanned.
_LISTING_GRACE = 2.0


def _picklable(classes: Sequence[type[BaseScanner]]) -> bool:
    try:
        pickle.dumps(tuple(classes))
    except Exception:
        return False
    return True


def _user_registry() -> tuple[type[BaseScanner], ...] | None:
    """The registry to send to workers, or None when they can use their own built-in one.

    Nobody can have changed `SCANNER_REGISTRY` without importing `modelaudit.scanners`, so
    until then the parent never imports the scanner modules at all.
    """
    scanners = sys.modules.get("modelaudit.scanners")
    if scanners is None:
        return None
    return tuple(scanners.SCANNER_REGISTRY)


class ScanRun:
    def __init__(
        self,
        config: ScanConfig,
        report: ScanReport,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.config = config
        self.report = report
        self.progress = progress
        self.jobs = max(1, config.jobs)
        self.cpu = CapacityLimiter(self.jobs)
        self.pool = CapacityLimiter(self.jobs)
        self.fetch = CapacityLimiter(max(1, config.fetch_jobs))
        self.in_flight = anyio.Semaphore(self.jobs * 8 + config.fetch_jobs)
        self.registry = _user_registry()
        self.use_processes = config.use_processes
        if self.use_processes and self.registry and not _picklable(self.registry):
            log.warning(
                "a registered scanner cannot be sent to worker processes; scanning in-process"
            )
            self.use_processes = False
        self.scanner_config = config.scanner_config()
        #: Listed objects whose scan has not started; reported as unfinished on interruption.
        self.unstarted: dict[int, ObjectRef] = {}
        #: FileReports (by id) whose object is being fetched or scanned.
        self.begun: set[int] = set()
        #: Why the run stopped early (a signal); None while running or on the run deadline.
        self.stop_reason: str | None = None
        #: Set once a worker started before the run (by the CLI) is ready for reuse.
        self.warm: anyio.Event | None = None

    def _record(self, file_report: FileReport) -> None:
        self.report.files.append(file_report)
        if self.progress is not None:
            try:
                self.progress(file_report)
            except Exception:
                log.debug("progress callback failed", exc_info=True)

    async def scan_target(self, target: str) -> None:
        """List one target and scan its objects; the source stays open until they are done."""
        try:
            source = resolve(target, self.scanner_config)
        except FetchError as exc:
            self.report.target_errors.append({"target": target, "error": str(exc)})
            return
        except Exception as exc:
            log.debug("resolving %s failed", target, exc_info=True)
            error = f"cannot open target: {type(exc).__name__}: {exc}"
            self.report.target_errors.append({"target": target, "error": error})
            return
        listing = source.objects()
        try:
            async with anyio.create_task_group() as tg:
                try:
                    async for obj in listing:
                        self.unstarted[id(obj)] = obj
                        await self.in_flight.acquire()
                        tg.start_soon(self.scan_object, obj)
                except FetchError as exc:
                    self.report.target_errors.append({"target": target, "error": str(exc)})
                except get_cancelled_exc_class():
                    await self._list_rest(listing)
                    raise
        finally:
            with anyio.CancelScope(shield=True):
                await source.aclose()

    async def _list_rest(self, listing: AsyncIterator[ObjectRef]) -> None:
        """After an interruption, keep listing briefly so unscanned files are named."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(_LISTING_GRACE):
            try:
                async for obj in listing:
                    self.unstarted[id(obj)] = obj
            except (FetchError, RuntimeError, StopAsyncIteration):
                return

    def record_unstarted(self) -> None:
        """Report every listed object that never started as unfinished."""
        for obj in self.unstarted.values():
            fr = FileReport(path=obj.uri, size=obj.size, remote=obj.is_remote)
            fr.format = extension_format(obj.uri)
            self._mark_stopped(fr, started=False)
            self._record(fr)
        self.unstarted.clear()

    async def scan_object(self, obj: ObjectRef) -> None:
        self.unstarted.pop(id(obj), None)
        fr = FileReport(path=obj.uri, size=obj.size, remote=obj.is_remote)
        started = time.monotonic()
        try:
            await self._scan_object(obj, fr)
        except get_cancelled_exc_class():
            self._mark_stopped(fr, started=id(fr) in self.begun)
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
            self.begun.discard(id(fr))
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

    def _mark_stopped(self, fr: FileReport, started: bool) -> None:
        """The run ended (deadline or signal) before this file's scan finished."""
        if self.stop_reason is None:
            self._mark_timeout(fr, self.config.timeout, run_deadline=True)
        else:
            fr.status = FileStatus.INCONCLUSIVE
            fr.status_reason = self.stop_reason
            fr.issues.append(self._info(fr, fr.status_reason, rules.SCAN_TIMEOUT))
        if not started:
            fr.status_reason = f"{fr.status_reason}; not started"
            fr.issues[-1].message = fr.status_reason

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
            async with acquire(obj, self.config, self.fetch) as path:
                self.begun.add(id(fr))
                await self._scan_local(obj, path, fr)
        else:
            assert obj.local_path is not None
            await self._scan_local(obj, obj.local_path, fr)

    async def _scan_local(self, obj: ObjectRef, path: str, fr: FileReport) -> None:
        deadline = self.config.per_file_timeout or math.inf
        result: ScanResult | None = None
        async with self.cpu:
            self.begun.add(id(fr))
            try:
                await self._warm_worker()
                with anyio.move_on_after(deadline) as scope:
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

    async def _warm_worker(self) -> None:
        """Start a worker outside the file's deadline when none is idle.

        Starting Python and importing the scanners takes a second or more on a loaded
        machine; that must not count against a file. The next call reuses the worker this
        one leaves idle (anyio's pool hands out the most recently used first).
        """
        if not self.use_processes:
            return
        if self.warm is not None:
            await self.warm.wait()
        try:
            if anyio.to_process._process_pool_idle_workers.get():
                return
        except (AttributeError, LookupError):
            pass
        await anyio.to_process.run_sync(ping, self.registry, cancellable=True, limiter=self.pool)

    async def _run_scanner(self, path: str, obj: ObjectRef) -> ScanResult:
        args = (path, self.scanner_config, obj.uri, obj.explicit)
        if not self.use_processes:
            return await anyio.to_thread.run_sync(
                scan_job, *args, self.registry, abandon_on_cancel=True
            )
        return await anyio.to_process.run_sync(
            scan_job, *args, self.registry, True, cancellable=True, limiter=self.pool
        )


async def run_scan(
    targets: Sequence[str],
    config: ScanConfig,
    progress: ProgressCallback | None = None,
    command_line: Sequence[str] | None = None,
    handle_signals: bool = False,
    warm: anyio.Event | None = None,
) -> ScanReport:
    """Scan every target and return the merged report; never raises for a bad file.

    With `handle_signals` (the CLI, main thread only) a first SIGINT or SIGTERM stops the run
    like its deadline does: finished results are kept and every unfinished file is listed.
    """
    report = ScanReport(targets=list(targets), command_line=list(command_line or []))
    run = ScanRun(config, report, progress)
    run.warm = warm
    deadline = config.timeout if config.timeout and config.timeout > 0 else math.inf
    scope = anyio.CancelScope(deadline=anyio.current_time() + deadline)
    async with anyio.create_task_group() as watcher:
        if handle_signals and threading.current_thread() is threading.main_thread():
            await watcher.start(_stop_on_signals, run, scope)
        try:
            with scope:
                async with anyio.create_task_group() as tg:
                    for target in targets:
                        tg.start_soon(run.scan_target, target)
        finally:
            await _retire_idle_workers()
        watcher.cancel_scope.cancel()
    if scope.cancelled_caught or run.unstarted:
        report.interrupted = run.stop_reason or (
            f"Scan timeout after {config.timeout:g} seconds (whole run)"
        )
        run.record_unstarted()
    report.files.sort(key=lambda f: f.path)
    report.end_time = time.time()
    redact_report(report)
    return report


async def _retire_idle_workers() -> None:
    """Kill the idle workers anyio keeps for reuse, so that no process outlives the run.

    A service calling `scan` repeatedly then pays a worker start per run; in exchange no
    process holding a hostile file's leftovers stays around. Uses anyio's pool internals,
    so a future anyio without them simply keeps its own idle timeout.
    """
    try:
        idle = anyio.to_process._process_pool_idle_workers.get()
        workers = anyio.to_process._process_pool_workers.get()
    except (AttributeError, LookupError):
        return
    with anyio.CancelScope(shield=True):
        while idle:
            process, _since = idle.pop()
            workers.discard(process)
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            await process.aclose()


async def _stop_on_signals(
    run: ScanRun, scope: anyio.CancelScope, *, task_status: TaskStatus[None]
) -> None:
    """First SIGINT/SIGTERM: stop scanning and report what is done. Second: exit at once."""
    import signal

    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            name = signal.Signals(signum).name
            if run.stop_reason is not None:
                sys.stderr.write(f"modelaudit: {name} again, exiting without a report\n")
                sys.stderr.flush()
                os._exit(128 + signum)
            run.stop_reason = f"Interrupted by {name} before the scan finished"
            scope.cancel()
