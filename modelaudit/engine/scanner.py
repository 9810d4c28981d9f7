"""`Scanner`: the engine as a long-lived object that owns its sandboxed worker pool.

    async with modelaudit.Scanner(jobs=4) as scanner:
        report = await scanner.scan(["model.pkl"])
        async for file_report in scanner.iter_scan(["s3://bucket/models/"]):
            ...

Entering starts the pool (a fork server on Linux, so a worker starts in about a millisecond);
every call shares it, fairly, under one bound on files in flight; leaving kills every worker
and removes every temp folder. `modelaudit.scan`, `scan_model_directory_or_file` and the CLI
are each one call on a short-lived Scanner, so there is one code path.

The executor seam: a call hands batches of local files to `pool.lease(...)` workers. A
different executor (a Dask cluster, each node running this same engine) plugs in at the
call's level by consuming the listing and producing `FileReport`s.
"""

from __future__ import annotations

import logging
import math
import socket
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..config import ScanConfig
from ..redact import redact_report
from ..report import FileReport, ScanReport
from .launch import Launcher, choose_launcher
from .pool import ThreadPool, WorkerPool
from .runner import Profiles, ProgressCallback, ScanCall

log = logging.getLogger("modelaudit")

__all__ = ["Scanner", "run_scan"]

#: Modules a long-lived fork server imports once for all its workers.
_PRELOAD = ("builtin-scanners",)


class Scanner:
    """A scan engine with its own worker processes; use it as an async context manager.

    Settings are `ScanConfig` fields (or a `ScanConfig`); a call may override any of them
    except those of the pool itself (`jobs`, `use_processes`, `worker_start`, recycling,
    `max_in_flight`).
    """

    def __init__(
        self,
        config: ScanConfig | Mapping[str, Any] | None = None,
        /,
        *,
        launcher: Launcher | None = None,
        **options: Any,
    ) -> None:
        if isinstance(config, ScanConfig):
            self.config = (
                ScanConfig.from_mapping({**config.scanner_config(), **options})
                if options
                else config
            )
        else:
            self.config = ScanConfig.from_mapping({**(config or {}), **options})
        self.jobs = max(1, self.config.jobs)
        self._launcher = launcher
        self._tg: TaskGroup | None = None
        self.pool: WorkerPool | ThreadPool | None = None
        self.slots = anyio.Semaphore(max(1, self.config.in_flight))
        self.profiles = Profiles()
        self._eager = launcher is None

    async def __aenter__(self) -> Scanner:
        if self._tg is not None:
            raise RuntimeError("this Scanner is already open")
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            if self.config.use_processes:
                launcher = self._launcher or choose_launcher(self.config.worker_start)
                pool = WorkerPool(
                    self.jobs,
                    launcher,
                    self._tg,
                    recycle_files=self.config.worker_recycle_files,
                    recycle_memory=self.config.worker_recycle_memory,
                    memory_limit=self.config.worker_memory_limit,
                    preload=_PRELOAD,
                    eager_preload=self._eager,
                )
                self.pool = pool
                await pool.start()
            else:
                self.pool = ThreadPool(self.jobs)
        except BaseException:
            await self._shutdown()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shutdown()

    async def _shutdown(self) -> None:
        try:
            if self.pool is not None:
                with anyio.CancelScope(shield=True):
                    await self.pool.aclose()
        finally:
            self.pool = None
            tg, self._tg = self._tg, None
            if tg is not None:
                tg.cancel_scope.cancel()
                await tg.__aexit__(None, None, None)

    def _open_pool(self) -> WorkerPool | ThreadPool:
        if self.pool is None:
            raise RuntimeError("use the Scanner in `async with Scanner(...) as scanner:`")
        return self.pool

    def _call(
        self, config: ScanConfig, report: ScanReport, emit: Any, observer: object = None
    ) -> ScanCall:
        self._open_pool()
        return ScanCall(self, config, report, emit, observer)  # type: ignore[arg-type]

    async def scan(
        self,
        targets: str | Sequence[str],
        /,
        *,
        progress: ProgressCallback | None = None,
        command_line: Sequence[str] | None = None,
        handle_signals: bool = False,
        **overrides: Any,
    ) -> ScanReport:
        """Scan files, directories or remote URIs; never raises for a bad file.

        `progress` is called with each file's report as it ends; if it also has methods of
        `runner.ProgressEvents`, they hear of the listing and of downloads.
        `handle_signals` (the CLI, main thread only): a first SIGINT or SIGTERM stops the
        call like its deadline does, keeping every finished result.
        """
        targets = [targets] if isinstance(targets, str) else list(targets)
        config = self.config.with_overrides(overrides) if overrides else self.config
        report = ScanReport(targets=targets, command_line=list(command_line or []))

        def emit(file_report: FileReport) -> None:
            report.files.append(file_report)
            if progress is not None:
                try:
                    progress(file_report)
                except Exception:
                    log.debug("progress callback failed", exc_info=True)

        call = self._call(config, report, emit, progress)
        await call.run(targets, handle_signals=handle_signals)
        report.files.sort(key=lambda f: f.path)
        report.end_time = time.time()
        redact_report(report)
        return report

    async def iter_scan(
        self, targets: str | Sequence[str], /, **overrides: Any
    ) -> AsyncIterator[FileReport]:
        """Yield each file's report as soon as that file ends.

        Leaving the loop early (or cancelling the consuming task) ends the call's own files
        only. Targets that cannot be opened at all are yielded last, as error entries.
        """
        targets = [targets] if isinstance(targets, str) else list(targets)
        config = self.config.with_overrides(overrides) if overrides else self.config
        report = ScanReport(targets=targets)
        send, receive = anyio.create_memory_object_stream[FileReport](math.inf)
        call = self._call(config, report, send.send_nowait)
        scope = anyio.CancelScope()
        failure: list[BaseException] = []

        async def run() -> None:
            with scope:
                async with send:
                    try:
                        await call.run(targets)
                    except Exception as exc:
                        failure.append(exc)
                    for error in report.target_errors:
                        send.send_nowait(_target_error_report(error))

        assert self._tg is not None
        self._tg.start_soon(run)
        try:
            async with receive:
                async for file_report in receive:
                    redact_report(ScanReport(files=[file_report]))
                    yield file_report
        finally:
            scope.cancel()
        if failure:
            raise failure[0]


def _target_error_report(error: dict[str, str]) -> FileReport:
    from .. import rules
    from ..findings import FileStatus, Issue, IssueSeverity, format_location

    target = error.get("target", "")
    fr = FileReport(path=target, status=FileStatus.ERROR, status_reason=error.get("error"))
    fr.issues.append(
        Issue(
            message=f"Cannot scan target: {error.get('error')}",
            severity=IssueSeverity.INFO,
            location=format_location(target),
            rule=rules.SCAN_ERROR,
        )
    )
    return fr


async def run_scan(
    targets: Sequence[str],
    config: ScanConfig,
    progress: ProgressCallback | None = None,
    command_line: Sequence[str] | None = None,
    handle_signals: bool = False,
    early_server: tuple[socket.socket, int] | None = None,
) -> ScanReport:
    """One call on a short-lived `Scanner`: what `modelaudit.scan` and the CLI do."""
    launcher = None
    if early_server is not None:
        launcher = choose_launcher(config.worker_start, early_server)
    async with Scanner(config, launcher=launcher) as scanner:
        return await scanner.scan(
            targets,
            progress=progress,
            command_line=command_line,
            handle_signals=handle_signals,
        )
