"""The one-file run: the CLI scanning a single local file (what a pre-commit hook pays).

Booting the engine (an event loop, a fork server, a pool) costs several times the scan of
one small file, so for one local file the CLI forks one worker straight from its own
process and follows it synchronously. Isolation is the engine's: the child is a worker
(`worker.serve`, the same protocol, sandbox and resource limits), its messages are read with
every global refused, the file's deadline and the run's deadline kill it, and a crash, a
kill or a first SIGINT/SIGTERM end only its file, which keeps the findings it streamed. The
report is the one `ScanCall` would write (`outcomes.py`).

Anything else (several targets, a folder, a remote target, `--cache`, `--shard`, a cluster,
scanners registered by user code, no fork) returns None and goes to the engine.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..findings import FileStatus, Issue
from . import workdirs
from .outcomes import Outcome
from .prefork import Forked, fork_worker, import_shared, supported
from .procs import describe_status, resident_bytes_of
from .protocol import (
    FrameReader,
    ProtocolError,
    decode_issue,
    decode_result,
    frame,
    loads_untrusted,
    result_frames,
)

if TYPE_CHECKING:
    from ..config import ScanConfig
    from ..fetchers.base import ObjectRef
    from ..report import FileReport, ScanReport

#: The worker must answer its first message within this long (as in the pool).
BOOT_TIMEOUT = 120.0
#: How often the worker's memory is sampled where workers have no rlimits.
MEMORY_POLL = 0.25
#: How long a worker that sent its result may take to exit on its own.
DRAIN_TIMEOUT = 1.0
_JOB_ID = 1
_PROFILE_ID = 1


def registry() -> tuple[bool, tuple[Any, ...] | None]:
    """The registry the worker routes with, as a call's profile carries it (None: the
    built-in specs, until user code reads `SCANNER_REGISTRY`). The worker is a fork of this
    process, so a class defined in `__main__` is found there by name; one that cannot be
    named at all (defined in a function) leaves the run to the engine: (False, None)."""
    import pickle

    scanners = sys.modules.get("modelaudit.scanners.registry")
    if scanners is None or not scanners.registry_in_use():
        return True, None
    entries = tuple(scanners.spec_of(c) or c for c in scanners.materialize())
    try:
        pickle.dumps(entries, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return False, None
    return True, entries


def one_local_file(targets: Sequence[str], config: ScanConfig) -> ObjectRef | None:
    """The listed object when the run is one local target that is not a folder, and the
    one-file run applies; else None (the engine runs it)."""
    if len(targets) != 1 or not supported():
        return None
    if config.cluster or config.cache_dir or config.shard or not config.use_processes:
        return None
    if config.worker_start not in ("auto", "fork") or not registry()[0]:
        return None
    from ..fetchers import FetchError, resolve
    from ..fetchers.local import LocalSource

    try:
        source = resolve(targets[0], config.scanner_config())
        if not isinstance(source, LocalSource):
            return None
        obj = source.named()
    except (FetchError, OSError, ValueError):
        return None
    if obj is None or obj.error is not None:
        return None
    limit = config.max_file_size
    if obj.skipped is None and limit and obj.size is not None and obj.size > limit:
        return None
    return obj


class _Signals:
    """A first SIGINT/SIGTERM stops the file (it is reported with what it streamed); a
    second exits at once, as in a `ScanCall`. The handlers only take note: the wait loop
    wakes on the wakeup pipe."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.read_fd = -1
        self.write_fd = -1
        self.saved: list[tuple[int, Any]] = []
        self.saved_wakeup = -1

    def __enter__(self) -> _Signals:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)
        os.set_blocking(self.read_fd, False)
        self.saved = [(s, signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM)]
        self.saved_wakeup = signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        for signum, _ in self.saved:
            signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.reason is not None:
            sys.stderr.write(f"modelaudit: {name} again, exiting without a report\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        self.reason = f"Interrupted by {name} before the scan finished"

    def in_child(self) -> None:
        """A forked worker keeps none of this (the parent decides what stops)."""
        signal.set_wakeup_fd(-1)
        os.close(self.read_fd)
        os.close(self.write_fd)

    def __exit__(self, *exc: object) -> None:
        signal.set_wakeup_fd(self.saved_wakeup)
        for signum, handler in self.saved:
            if handler is not None:
                signal.signal(signum, handler)
        os.close(self.read_fd)
        os.close(self.write_fd)


class _Run:
    """The parent's side of the one worker: its pipes, its deadlines, what it sent."""

    def __init__(self, config: ScanConfig, obj: ObjectRef, signals: _Signals | None) -> None:
        self.config = config
        self.obj = obj
        self.signals = signals
        self.deadline = config.file_deadline(obj.size)
        timeout = config.timeout
        self.run_deadline = time.monotonic() + timeout if timeout and timeout > 0 else math.inf
        self.frames = FrameReader()
        self.streamed: list[Issue] = []
        self.started_at = 0.0
        self.rlimits = True
        self.pid = 0
        self.read_fd = -1
        self.write_fd = -1
        self.reaped: int | None = None

    def fork(self) -> None:
        self.adopt(fork_worker(in_child=self.signals.in_child if self.signals else None))

    def adopt(self, worker: Forked) -> None:
        """Follow a worker forked already (`prefork`, or `fork` above); it is this run's
        now (`worker.discard()` no longer touches it)."""
        self.pid, self.read_fd, self.write_fd = worker.pid, worker.read_fd, worker.write_fd
        worker.pid, worker.read_fd, worker.write_fd = 0, -1, -1

    def send_job(self, tmpdir: str) -> None:
        """The worker's first messages: its temp folder, the call's settings, the file."""
        to_child_w, self.write_fd = self.write_fd, -1
        obj = self.obj
        wire = (_JOB_ID, obj.local_path, obj.uri, obj.explicit, self.deadline, obj.size or 0, True)
        messages = (
            ("init", {"tmpdir": tmpdir, "sys_path": []}),
            ("profile", _PROFILE_ID, self.config.scanner_config(), registry()[1]),
            ("scan", _PROFILE_ID, [wire]),
            ("exit",),
        )
        # A few hundred bytes: the pipe takes them all before the worker reads any.
        data = b"".join(frame(m) for m in messages)
        try:
            while data:
                data = data[os.write(to_child_w, data) :]
        except OSError:
            pass  # the worker is already gone; its end is read below
        finally:
            os.close(to_child_w)

    def follow(self) -> tuple[Outcome | None, bool]:
        """Read the worker until its file ends: (outcome, started), or (None, started) when
        the run was stopped (run deadline or signal) first."""
        ready: list[Any] = []
        hello = False
        boot_until = time.monotonic() + BOOT_TIMEOUT
        next_poll = math.inf
        poller = select.poll()
        for fd in (self.read_fd, self.signals.read_fd if self.signals else -1):
            if fd >= 0:
                poller.register(fd, select.POLLIN)
        while True:
            while ready:
                message = ready.pop(0)
                kind = message[0] if isinstance(message, tuple) and message else None
                if not hello:
                    if kind != "hello":
                        return self._not_started("unexpected first message"), False
                    hello = True
                    self._hello(message)
                    self.started_at = time.monotonic()
                    if not self.rlimits and self.config.worker_memory_limit > 0:
                        next_poll = self.started_at + MEMORY_POLL
                elif kind == "issue" and len(message) == 3:
                    if message[1] == _JOB_ID:
                        self.streamed.append(decode_issue(message[2]))
                elif kind == "done" and len(message) == 2:
                    for job_id, encoded in result_frames(message[1]):
                        if job_id != _JOB_ID:
                            raise ProtocolError("result for a file the worker was not given")
                        return self._drain(Outcome("done", decode_result(encoded))), True
                else:
                    raise ProtocolError(f"unexpected {kind!r} message")
            now = time.monotonic()
            until = self.started_at + self.deadline if hello else boot_until
            if now >= self.run_deadline or (self.signals and self.signals.reason):
                return None, hello
            if now >= until:
                if not hello:
                    return self._not_started("it did not answer"), False
                return Outcome("timeout"), True
            if now >= next_poll:
                rss = resident_bytes_of(self.pid)
                if rss is not None and rss > self.config.worker_memory_limit:
                    return Outcome("crash", reason="out of memory (worker memory limit)"), True
                next_poll = now + MEMORY_POLL
            wait = min(until, self.run_deadline, next_poll) - now
            readable = {fd for fd, _ in poller.poll(math.ceil(wait * 1000))}
            if self.signals and self.signals.read_fd in readable:
                with contextlib.suppress(OSError):
                    os.read(self.signals.read_fd, 512)
            if self.read_fd not in readable:
                continue
            data = os.read(self.read_fd, 1 << 16)
            if not data:
                reason = describe_status(self.reap())
                if not hello:
                    return self._not_started(reason), False
                return Outcome("crash", reason=reason), True
            ready.extend(loads_untrusted(payload) for payload in self.frames.feed(data))

    def _drain(self, outcome: Outcome) -> Outcome:
        """After its result the worker reports idle and exits; give it a moment to, so that
        it ends on its own (a worker that lingers is killed by `reap`)."""
        until = time.monotonic() + DRAIN_TIMEOUT
        poller = select.poll()
        poller.register(self.read_fd, select.POLLIN)
        with contextlib.suppress(OSError):
            while (wait := until - time.monotonic()) > 0:
                if not poller.poll(math.ceil(wait * 1000)) or not os.read(self.read_fd, 1 << 16):
                    break
        return outcome

    def _hello(self, message: tuple[Any, ...]) -> None:
        if len(message) < 5:
            raise ProtocolError("malformed hello")
        self.rlimits = bool(message[3])
        for notice in dict.fromkeys(str(n) for n in message[2]):
            _log_notice(notice)

    def _not_started(self, reason: str) -> Outcome:
        return Outcome(
            "error",
            reason=f"cannot start a worker process: worker process did not start ({reason})",
        )

    def reap(self) -> int | None:
        """Kill the worker if it still runs, and collect its exit status."""
        if self.reaped is None and self.pid:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            try:
                self.reaped = os.waitpid(self.pid, 0)[1]
            except ChildProcessError:
                self.reaped = -1
        return None if self.reaped is None or self.reaped < 0 else self.reaped

    def close(self) -> None:
        self.reap()
        for fd in (self.read_fd, self.write_fd):
            if fd >= 0:
                os.close(fd)
        self.read_fd = self.write_fd = -1


def _log_notice(notice: str) -> None:
    """A sandbox notice is an INFO record of the "modelaudit" logger. Logging is not imported
    for it (the CLI imports it for -v): until something has, no handler could show it."""
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger("modelaudit").info("sandbox: %s", notice)


class OneFileRun:
    """One local file scanned by one worker forked from this process.

    `start()` forks the worker as early as the caller can (the CLI does so before it
    imports its reporters, which then load while the worker scans); `report()` follows the
    worker to the file's end and returns the call's report; `close()` (or leaving the
    `with` block) kills a worker still running, restores the signal handlers and removes
    the worker's temp folder, whatever happened.
    """

    def __init__(
        self,
        obj: ObjectRef,
        config: ScanConfig,
        handle_signals: bool = False,
        worker: Forked | None = None,
    ) -> None:
        import threading

        self.worker = worker
        self.obj = obj
        self.config = config
        self.started = time.time()
        main = handle_signals and threading.current_thread() is threading.main_thread()
        self.signals = _Signals() if main else None
        self.run: _Run | None = None
        self.tmpdir: str | None = None
        self.entered = False

    def __enter__(self) -> OneFileRun:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        if self.obj.skipped is not None or self.run is not None:
            return
        if self.worker is None:
            import_shared()
        if self.signals is not None:
            self.signals.__enter__()
            self.entered = True
        self.run = _Run(self.config, self.obj, self.signals)
        if self.worker is not None:
            self.run.adopt(self.worker)
            self.worker = None
        else:
            self.run.fork()
        # The worker imports its modules meanwhile, then waits for these messages.
        self.tmpdir = workdirs.make()
        self.run.send_job(self.tmpdir)

    def report(self, command_line: Sequence[str] | None = None) -> ScanReport:
        """Wait for the file's end; the report a `ScanCall` would write for it."""
        from ..report import FileReport, ScanReport
        from .outcomes import finish_report

        self.start()
        obj = self.obj
        report = ScanReport(
            targets=[obj.uri], start_time=self.started, command_line=list(command_line or [])
        )
        fr = FileReport(path=obj.uri, size=obj.size, remote=False)
        if obj.skipped is not None:
            fr.status = FileStatus.SKIPPED
            fr.status_reason = obj.skipped
        else:
            self._scan(fr, report)
        report.files.append(fr)
        finish_report(report)
        return report

    def _scan(self, fr: FileReport, report: ScanReport) -> None:
        from .outcomes import apply_outcome, mark_stopped, run_timeout_reason

        run = self.run
        assert run is not None
        try:
            try:
                outcome, started = run.follow()
            except ProtocolError as exc:
                reason = f"worker sent a malformed message ({exc})"
                outcome, started = Outcome("crash", reason=reason), True
        finally:
            self.close()
        config = self.config
        if outcome is None:
            stop = self.signals.reason if self.signals is not None else None
            report.interrupted = stop or run_timeout_reason(config.timeout)
            from ..formats import extension_format
            from .capture import rescue

            fr.format = extension_format(self.obj.uri)
            fr.issues.extend(rescue(run.streamed, int(config.max_findings_per_rule or 0), fr.path))
            mark_stopped(fr, started, stop, config.timeout)
        else:
            apply_outcome(fr, self.obj, outcome, run.streamed, run.deadline, config)
        if run.started_at:
            fr.duration = time.monotonic() - run.started_at

    def close(self) -> None:
        if self.worker is not None:  # never started (a skipped file): not needed
            self.worker.discard()
            self.worker = None
        if self.run is not None:
            self.run.close()
        if self.entered and self.signals is not None:
            self.entered = False
            self.signals.__exit__()
        if self.tmpdir is not None:
            workdirs.remove(self.tmpdir)
            self.tmpdir = None


def scan_one(
    obj: ObjectRef,
    config: ScanConfig,
    command_line: Sequence[str] | None = None,
    handle_signals: bool = False,
) -> ScanReport:
    """Scan the one object `one_local_file` found, in a worker forked from this process."""
    with OneFileRun(obj, config, handle_signals) as run:
        return run.report(command_line)
