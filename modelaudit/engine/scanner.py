"""`Scanner`: the engine as a long-lived object that owns its sandboxed worker pool.

    async with modelaudit.Scanner(jobs=4) as scanner:
        report = await scanner.scan(["model.pkl"])
        async for file_report in scanner.iter_scan(["s3://bucket/models/"]):
            ...

Entering starts the pool (a fork server on Linux, so a worker starts in about a millisecond);
every call shares it, fairly, under one bound on files in flight; leaving kills every worker
and removes every temp folder. `modelaudit.scan`, `scan_model_directory_or_file` and the CLI
are each one call on a short-lived Scanner, so there is one code path.

The executor seam: a call hands batches of local files to `pool.lease(...)` workers. With
`cluster=` set, the Scanner starts no pool: an `Executor` (runner.py) takes each object the
call admits (after `--shard` and `--cache`) and hands back its `FileReport`; the Dask one
(modelaudit/cluster/) runs this same engine on every node.
"""

from __future__ import annotations

import importlib
import logging
import math
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..config import ScanConfig
from ..fetchers import Source
from ..redact import redact_report
from ..report import FileReport, ScanReport
from .across_files import AcrossFiles
from .launch import Launcher, choose_launcher
from .outcomes import finish_report
from .pool import ThreadPool, WorkerPool
from .runner import Executor, Opening, Profiles, ProgressCallback, ScanCall

log = logging.getLogger("modelaudit")

__all__ = ["Scanner", "run_scan"]

#: Modules a long-lived fork server imports once for all its workers.
_PRELOAD = ("builtin-scanners",)
#: The executor for `cluster=` addresses, imported by name like a fetcher: the cluster package
#: sits above the engine (every node runs a Scanner) and needs the optional `cluster` extra.
CLUSTER_EXECUTOR = "modelaudit.cluster.executor:DaskExecutor"


class Scanner:
    """A scan engine with its own worker processes; use it as an async context manager.

    Settings are `ScanConfig` fields (or a `ScanConfig`); a call may override any of them
    except those of the pool itself (`jobs`, `use_processes`, `worker_start`, recycling,
    `max_in_flight`, `cluster`). With `cluster="tcp://HOST:PORT"` the Scanner is a client
    of that Dask cluster and scans there instead of in local worker processes.
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
        self.executor: Executor | None = None
        self.slots = anyio.Semaphore(max(1, self.config.in_flight))
        self.profiles = Profiles()
        #: Calls running now (an ordered set): a batch of small files borrows from them.
        self.calls: dict[ScanCall, None] = {}
        #: A dispatcher spawned that has not taken its batch yet (see `runner.Opening`).
        self.opening: Opening | None = None
        self._eager = launcher is None

    async def __aenter__(self) -> Scanner:
        if self._tg is not None:
            raise RuntimeError("this Scanner is already open")
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            if self.config.cluster:
                module, name = CLUSTER_EXECUTOR.split(":")
                factory = getattr(importlib.import_module(module), name)
                executor = factory(self.config, self.slots, self._tg)
                self.executor = executor
                await executor.start()
            elif self.config.use_processes:
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
            with anyio.CancelScope(shield=True):
                if self.pool is not None:
                    await self.pool.aclose()
                if self.executor is not None:
                    await self.executor.aclose()
        finally:
            self.pool = None
            self.executor = None
            tg, self._tg = self._tg, None
            if tg is not None:
                tg.cancel_scope.cancel()
                await tg.__aexit__(None, None, None)

    def _call(
        self, config: ScanConfig, report: ScanReport, emit: Any, observer: object = None
    ) -> ScanCall:
        if self.pool is None and self.executor is None:
            raise RuntimeError("use the Scanner in `async with Scanner(...) as scanner:`")
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
        call like its deadline does, keeping every finished result; from the call's end a
        first signal is only noted and a second exits the process (the CLI writing its
        report: engine/report_signals.py), until the caller restores its own handlers.
        """
        targets = [targets] if isinstance(targets, str) else list(targets)
        config = self.config.with_overrides(overrides) if overrides else self.config
        return await self.run_call(
            targets,
            config,
            progress=progress,
            command_line=command_line,
            handle_signals=handle_signals,
        )

    async def run_call(
        self,
        targets: Sequence[str | Source],
        config: ScanConfig,
        *,
        progress: ProgressCallback | None = None,
        command_line: Sequence[str] | None = None,
        handle_signals: bool = False,
        started: Callable[[ScanCall], None] | None = None,
    ) -> ScanReport:
        """One call with its config already settled. Targets may be `Source`s (a cluster
        node's shard); `started` receives the call, so that its owner can `stop` it."""
        names = [t.target if isinstance(t, Source) else t for t in targets]
        report = ScanReport(targets=names, command_line=list(command_line or []))

        def emit(file_report: FileReport) -> None:
            report.files.append(file_report)
            if progress is not None:
                try:
                    progress(file_report)
                except Exception:
                    log.debug("progress callback failed", exc_info=True)

        call = self._call(config, report, emit, progress)
        if started is not None:
            started(call)
        await call.run(targets, handle_signals=handle_signals)
        if len(report.files) > _FINISH_ON_LOOP:
            # Sorting and scrubbing 10,000 files holds a loop for ~25 ms of CPU.
            await anyio.to_thread.run_sync(finish_report, report)
        else:
            finish_report(report)
        return report

    async def iter_scan(
        self, targets: str | Sequence[str], /, **overrides: Any
    ) -> AsyncIterator[FileReport]:
        """Yield each file's report as soon as that file ends.

        The few reports a verdict across files may change (a remote MLflow model's MLmodel
        and pickles naming an unknown class: engine/across_files.py) are yielded once the
        call's files are in, as `scan` reports them; targets that cannot be opened at all
        come last, as error entries. Leaving the loop early (or cancelling the consuming
        task) ends the call's own files only.
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

        assert self._tg is not None
        self._tg.start_soon(run)
        verdicts = AcrossFiles()
        try:
            async with receive:
                async for file_report in receive:
                    if not verdicts.take(file_report):
                        redact_report(ScanReport(files=[file_report]))
                        yield file_report
            last = verdicts.finish() + [_target_error_report(e) for e in report.target_errors]
            redact_report(ScanReport(files=last))
            for file_report in last:
                yield file_report
        finally:
            scope.cancel()
        if failure:
            raise failure[0]


#: Reports of more files than this are sorted and redacted in a thread, off the event loop
#: (redaction's process-wide state, the names it protects, only ever grows by single adds).
_FINISH_ON_LOOP = 500


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
