"""The worker pool a `Scanner` owns for its lifetime.

Calls lease workers one batch at a time. Leases are granted fairly: when workers are busy,
each free worker goes to the next call in turn (round-robin over calls, first come first
served within one), so a call with one file waits for at most one batch of another's. A
worker that crashes, is killed on a deadline, or has scanned `worker_recycle_files` files or
grown past `worker_recycle_memory` is closed and a new one starts when next needed. Closing
the pool kills every worker and removes every worker's temp folder.

`ThreadPool` has the same interface and scans in the parent's threads (`use_processes=False`,
debugging only: nothing is isolated, and a timed-out scan cannot be stopped, only abandoned).
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio.abc import TaskGroup

from ..findings import Issue, ScanResult
from . import workdirs
from .launch import Launcher, WorkerProcess
from .outcomes import Outcome
from .procs import resident_bytes_of
from .protocol import (
    FrameReader,
    JournalFile,
    ProgressFile,
    ProtocolError,
    decode_issue,
    decode_result,
    frame,
    loads_untrusted,
    result_frames,
)

log = logging.getLogger("modelaudit")

#: A worker that does not answer its first message within this long failed to start.
BOOT_TIMEOUT = 120.0
#: After its last file, a worker reports idle within this long or is considered broken.
IDLE_TIMEOUT = 30.0
#: How often the parent samples a busy worker's memory where workers have no rlimits.
MEMORY_POLL = 0.25
#: A file of a batch running this long gives the files behind it back to other workers.
SLOW = 0.25
#: Messages handled in a row before the event loop is yielded.
_YIELD_EVERY = 16


class PoolClosed(Exception):
    """The scanner was closed while a call still wanted a worker."""


class WorkerStartError(Exception):
    """A worker process could not be started; the message says why."""


@dataclass(eq=False)
class FileJob:
    """One file on its way through a worker. `streamed` holds the findings the worker sent
    while scanning it, kept if the file never finishes."""

    id: int
    path: str
    display: str
    explicit: bool
    size: int
    deadline: float
    streamed: list[Issue] = field(default_factory=list)
    started: bool = False
    started_at: float = 0.0
    owner: Any = None
    #: the worker hashes the file when the call wants hashes (not a remote object's spool)
    hashed: bool = True

    def wire(self) -> tuple[int, str, str, bool, float, int, bool]:
        return (
            self.id,
            self.path,
            self.display,
            self.explicit,
            self.deadline,
            self.size,
            self.hashed,
        )


@dataclass(eq=False)
class Profile:
    """What a call's workers need besides the files: its scanner config and registry."""

    key: int
    config: dict[str, Any]
    #: Scanner classes and built-in specs in routing order; None: the built-in specs.
    registry: tuple[Any, ...] | None


class JobOwner(Protocol):
    """The call a file belongs to: told how each file ended, and given back the files a
    worker will not scan. A batch may hold files of several calls that share a profile."""

    def finish(self, job: FileJob, outcome: Outcome) -> None: ...

    def give_back(self, jobs: list[FileJob]) -> None: ...


def _finish(job: FileJob, outcome: Outcome) -> None:
    job.owner.finish(job, outcome)


def give_back(jobs: Sequence[FileJob]) -> None:
    """Return files to their calls, in order."""
    owners: dict[int, tuple[JobOwner, list[FileJob]]] = {}
    for job in jobs:
        owners.setdefault(id(job.owner), (job.owner, []))[1].append(job)
    for owner, own in owners.values():
        owner.give_back(own)


class Worker:
    """The parent's side of one worker process."""

    def __init__(
        self,
        proc: WorkerProcess,
        tmpdir: str,
        memory_limit: int,
        control: tuple[ProgressFile, JournalFile] | None = None,
    ) -> None:
        self.proc = proc
        self.tmpdir = tmpdir
        #: The worker's progress record and journal; `grouped` once the worker said it
        #: uses them (results then travel in groups), else it sends each as its file ends.
        self.control = control
        self.grouped = False
        self.memory_limit = memory_limit
        self.frames = FrameReader()
        self.messages: deque[Any] = deque()
        self.profiles: set[int] = set()
        self.files_done = 0
        self.rss = 0
        self.alive = True
        self.rlimits = True
        self.can_poll = False
        self.notices: list[str] = []
        self.death: str | None = None
        self.handled = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def handshake(self, sys_path: Sequence[str]) -> None:
        options = {
            "tmpdir": self.tmpdir,
            "sys_path": list(sys_path),
            "progress": self.control[0].path if self.control is not None else "",
            "journal": self.control[1].path if self.control is not None else "",
        }
        await self.proc.send(frame(("init", options)))
        message = await self._next()
        if message is None or message[0] != "hello":
            reason = await self.proc.wait() if message is None else "unexpected first message"
            raise WorkerStartError(f"worker process did not start ({reason})")
        self.notices = [str(n) for n in message[2]]
        self.rlimits = bool(message[3])
        self.can_poll = bool(message[4])
        self.grouped = self.control is not None and len(message) > 5 and bool(message[5])

    async def _next(self) -> Any:
        """The worker's next message, or None once it is gone.

        One read may bring a whole batch's results; every `_YIELD_EVERY` messages the event
        loop is yielded, so finishing them never holds it for long."""
        self.handled += 1
        if self.messages and self.handled % _YIELD_EVERY == 0:
            await anyio.lowlevel.checkpoint()
        while not self.messages:
            data = await self.proc.receive()
            if not data:
                return None
            for payload in self.frames.feed(data):
                message = loads_untrusted(payload)
                if not isinstance(message, tuple) or not message:
                    raise ProtocolError("worker message is not a tuple")
                self.messages.append(message)
        return self.messages.popleft()

    def kill(self) -> None:
        self.alive = False
        self.proc.kill()

    async def _died(self) -> str:
        self.alive = False
        self.death = await self.proc.wait()
        return self.death

    async def _memory_over(self) -> bool:
        """Where workers have no rlimits, the parent enforces the memory limit itself."""
        rss = await anyio.to_thread.run_sync(resident_bytes_of, self.pid)
        if rss is None:
            _notice_once("cannot read a worker's memory here (install psutil): no memory limit")
            return False
        return rss > self.memory_limit

    async def run_batch(self, jobs: Sequence[FileJob], profile: Profile) -> list[FileJob]:
        """Scan `jobs` in order; returns the jobs never started (the worker died before them).

        Each file has its own deadline, counted from the moment the previous one ended. A
        file that overruns it, or during which the worker dies, ends with what it streamed.
        A file that takes longer than `SLOW` gives the files queued behind it back to the
        call (`give_back`), so other workers take them instead of waiting. Cancellation kills
        the worker; the caller decides what its files become.
        """
        state = _Batch(jobs)
        try:
            if profile.key not in self.profiles:
                await self.proc.send(
                    frame(("profile", profile.key, profile.config, profile.registry))
                )
                self.profiles.add(profile.key)
            await self.proc.send(frame(("scan", profile.key, [j.wire() for j in jobs])))
            await self._collect(state)
            return state.unstarted()
        except ProtocolError as exc:
            self._end(state)
            state.fail(Outcome("crash", reason=f"worker sent a malformed message ({exc})"))
            return state.unstarted()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            self._end(state)
            return state.unstarted()
        except BaseException:
            self._end(state)
            raise

    def _end(self, state: _Batch) -> None:
        """Kill the worker; keep the results it had not sent yet; find the file it was on."""
        self.kill()
        self._recover(state)
        self._locate(state)

    def _recover(self, state: _Batch) -> None:
        """The results in the journal that the parent has not received (the worker is gone)."""
        if not self.grouped or self.control is None:
            return
        with contextlib.suppress(ProtocolError):
            self._results(self.control[1].read(), state, recovered=True)

    def _results(self, blob: Any, state: _Batch, recovered: bool = False) -> None:
        """Finish the files whose results are in `blob` (result frames, in batch order)."""
        find = state.by_id.get  # result_frames checked that every id is an int
        for job_id, encoded in result_frames(blob):
            target = find(job_id)
            if target is None:
                if recovered:
                    continue  # sent already, or of an earlier batch
                raise ProtocolError("result for a file the worker was not given")
            self.files_done += 1
            target.owner.finish(target, Outcome("done", decode_result(encoded)))
            state.finished(target)

    async def _collect(self, state: _Batch) -> None:
        """Follow the batch until the worker is idle again, or dies, or is killed; the
        files it never reached stay in `state`.

        One cancel scope covers many messages: its deadline moves with the file being
        scanned, so a sweep of small files costs no timer per message.
        """
        gave_back = False
        while True:
            with anyio.CancelScope(deadline=self._wake_at(state, gave_back)):
                while True:
                    message = await self._next()
                    if message is None:
                        reason = await self._died()
                        self._recover(state)
                        self._locate(state)
                        state.fail(Outcome("crash", reason=reason))
                        return
                    if self._handle(message, state):
                        return
            # The scope's deadline was set for the file current at the time; it only ever
            # fires early for a later file, which is then given its own deadline.
            self._locate(state)
            job = state.current
            now = time.monotonic()
            if job is None and now < state.idle_since + IDLE_TIMEOUT:
                continue
            if job is None or now >= job.started_at + job.deadline:
                self._end(state)
                if job is not None and state.current is job:
                    state.fail(Outcome("timeout"))
                return
            if not gave_back and len(state.expected) > 1 and now >= job.started_at + SLOW:
                gave_back = True
                behind = state.give_back()
                await self.proc.send(frame(("skip", [j.id for j in behind])))
                give_back(behind)
            elif self._watch_memory and await self._memory_over():
                self._end(state)
                state.fail(Outcome("crash", reason="out of memory (worker memory limit)"))
                return

    def _locate(self, state: _Batch) -> None:
        """Results travel in groups: ask the progress record which file the worker is on."""
        if self.grouped and self.control is not None:
            state.locate(self.control[0].read(), time.monotonic())

    @property
    def _watch_memory(self) -> bool:
        return not self.rlimits and self.memory_limit > 0

    def _wake_at(self, state: _Batch, gave_back: bool) -> float:
        """When to look at the batch next (anyio's clock): the current file's deadline, the
        moment it counts as slow, or the next memory sample."""
        job = state.current
        now = time.monotonic()
        if job is None:
            # Every file is done or given back: the worker ends the batch with "idle".
            until = state.idle_since + IDLE_TIMEOUT
        else:
            until = job.started_at + job.deadline
            if not gave_back and self.can_poll and len(state.expected) > 1:
                until = min(until, job.started_at + SLOW)
            if self._watch_memory:
                until = min(until, now + MEMORY_POLL)
        return anyio.current_time() + (until - now)

    def _handle(self, message: Any, state: _Batch) -> bool:
        """Apply one message; True once the worker reported the batch over."""
        kind = message[0]
        if kind == "done":
            self._results(message[1], state)
        elif kind == "issue":
            target = state.find(message[1])
            if target is not None:
                target.streamed.append(decode_issue(message[2]))
                state.confirm(target)
        elif kind == "skipped":
            state.skipped(int(i) for i in message[1])
        elif kind == "idle":
            self.rss = int(message[1])
            if state.expected:
                raise ProtocolError("worker idle before finishing its files")
            return True
        else:
            raise ProtocolError(f"unexpected {kind!r} message")
        return False


class _Batch:
    """The parent's view of a batch: the files it expects the worker to run, in order, and
    those it gave back that the worker may still have started before it read the "skip"."""

    def __init__(self, jobs: Sequence[FileJob]) -> None:
        self.by_id = {j.id: j for j in jobs}
        self.order = {j.id: n for n, j in enumerate(jobs)}
        self.expected: deque[FileJob] = deque(jobs)
        self.maybe: deque[FileJob] = deque()
        self.current: FileJob | None = None
        self.idle_since = 0.0
        self._start(time.monotonic())

    def _start(self, now: float) -> None:
        queue = self.expected or self.maybe
        self.current = queue[0] if queue else None
        if self.current is None:
            self.idle_since = now
        if self.current is not None and self.current in self.expected:
            self.current.started, self.current.started_at = True, now
        elif self.current is not None:
            # Given back, but the worker may be running it until it says "skipped".
            self.current.started_at = now

    def find(self, job_id: Any) -> FileJob | None:
        return self.by_id.get(job_id) if isinstance(job_id, int) else None

    def confirm(self, job: FileJob) -> None:
        """The worker is working on `job` (it streamed a finding for it)."""
        if job is not self.current and job in self.maybe:
            while self.maybe and self.maybe[0] is not job:
                self.maybe.popleft()
            self.current = job
        job.started = True

    def locate(self, record: tuple[int, float] | None, now: float) -> None:
        """The worker's progress record names the file it started last, and when.

        Only forward moves are believed (a later file of the batch, a start no earlier than
        the one known), so a lying worker cannot push its deadlines back for ever."""
        current = self.current
        job = self.find(record[0]) if record is not None else None
        if record is None or job is None or current is None or job is current:
            return
        if self.order[job.id] <= self.order[current.id]:
            return
        started = min(max(record[1], current.started_at), now)
        if job in self.maybe:
            self.confirm(job)
        elif job in self.expected:
            # The files before it ended; their results are on their way.
            self.current = job
            for earlier in self.expected:
                if earlier is job:
                    break
                earlier.started = True
        else:
            return
        job.started, job.started_at = True, started

    def finished(self, job: FileJob) -> None:
        expected = self.expected
        if expected and expected[0] is job and not self.maybe:
            # The usual case: the files of a batch end in order, none given back.
            expected.popleft()
        else:
            for queue in (expected, self.maybe):
                if job in queue:
                    while queue and queue[0] is not job:
                        queue.popleft()
                    queue.popleft()
        self.by_id.pop(job.id, None)
        if self.current is None or self.current.id not in self.by_id:
            self._start(time.monotonic())

    def give_back(self) -> list[FileJob]:
        """Every expected file after the current one; they may still start until confirmed."""
        current = self.current
        behind = [j for j in self.expected if j is not current and self._after(j, current)]
        for _ in behind:
            self.expected.pop()
        self.maybe.extend(behind)
        for job in behind:
            job.started = False
        return behind

    def _after(self, job: FileJob, current: FileJob | None) -> bool:
        return current is None or self.order[job.id] > self.order[current.id]

    def skipped(self, ids: Iterable[int]) -> None:
        gone = set(ids)
        self.maybe = deque(j for j in self.maybe if j.id not in gone)
        for job_id in gone:
            self.by_id.pop(job_id, None)
        if self.current is not None and self.current.id in gone:
            self._start(time.monotonic())

    def fail(self, outcome: Outcome) -> None:
        """The file the worker was on ends so (a crash, its deadline); nothing else does."""
        job = self.current
        if job is not None and self.by_id.pop(job.id, None) is not None:
            _finish(job, outcome)

    def unstarted(self) -> list[FileJob]:
        """What to reschedule once the worker is gone: every expected file that has not
        ended (never started, or ended without its result reaching the parent)."""
        left = [j for j in self.expected if j.id in self.by_id]
        for job in left:
            job.started = False
        return left


_NOTICED: set[str] = set()


def _notice_once(text: str) -> None:
    if text not in _NOTICED:
        _NOTICED.add(text)
        log.info("sandbox: %s", text)


class _Waiter:
    __slots__ = ("event", "may_boot", "worker")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.worker: Worker | None = None
        self.may_boot = False


class WorkerPool:
    """Up to `size` worker processes, leased one batch at a time, fairly across calls."""

    def __init__(
        self,
        size: int,
        launcher: Launcher,
        task_group: TaskGroup,
        *,
        recycle_files: int,
        recycle_memory: int,
        memory_limit: int,
        preload: Sequence[str] = (),
        eager_preload: bool = True,
    ) -> None:
        self.size = max(1, size)
        self.launcher = launcher
        self.tg = task_group
        self.recycle_files = recycle_files
        self.recycle_memory = recycle_memory
        self.memory_limit = memory_limit
        #: Modules the fork server imports once for every later worker: as soon as the first
        #: worker is up when `eager_preload` (a long-lived scanner), else before the second
        #: (a one-file CLI run never pays for scanners it does not use).
        self.preload_modules = list(preload)
        self.eager_preload = eager_preload
        self.root = workdirs.make()
        self.sys_path = [p for p in sys.path if isinstance(p, str)]
        self.idle: list[Worker] = []
        self.workers: set[Worker] = set()
        self.count = 0
        #: Workers starting now; a lease waits for one of them rather than start another.
        self.booting = 0
        self.waiters: dict[object, deque[_Waiter]] = {}
        self.closed = False
        self.started = 0
        self._closing: set[anyio.Event] = set()

    async def start(self) -> None:
        """Start the launcher and, in the background, the first worker."""
        await self.launcher.start()
        self.count += 1
        self.tg.start_soon(self._prestart)

    async def _prestart(self) -> None:
        try:
            worker = await self._boot()
        except Exception:
            log.debug("starting the first worker failed", exc_info=True)
            return
        self._release(worker)

    def waiting_lanes(self) -> list[object]:
        """Calls waiting for a worker, next in turn first."""
        return list(self.waiters)

    @asynccontextmanager
    async def lease(self, lane: object) -> AsyncIterator[Worker]:
        worker = await self._acquire(lane)
        try:
            yield worker
        finally:
            self._release(worker)

    async def _acquire(self, lane: object) -> Worker:
        if self.closed:
            raise PoolClosed("the scanner is closed")
        if self.idle and not self.waiters:
            return self.idle.pop()
        waiting = sum(len(q) for q in self.waiters.values())
        if self.count < self.size and self.booting <= waiting:
            self.count += 1
            return await self._boot()
        waiter = _Waiter()
        self.waiters.setdefault(lane, deque()).append(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            queue = self.waiters.get(lane)
            if queue is not None and waiter in queue:
                queue.remove(waiter)
                if not queue:
                    del self.waiters[lane]
            elif waiter.worker is not None:
                self._release(waiter.worker)
            elif waiter.may_boot:
                self.count -= 1
                self._hand_out()
            raise
        if waiter.worker is not None:
            return waiter.worker
        if not waiter.may_boot:
            raise PoolClosed("the scanner is closed")
        return await self._boot()

    async def _boot(self) -> Worker:
        """Start a worker (already counted in `count`)."""
        self.booting += 1
        try:
            return await self._boot_counted()
        finally:
            self.booting -= 1

    async def _boot_counted(self) -> Worker:
        control: tuple[ProgressFile, JournalFile] | None = None
        try:
            if self.preload_modules and self.started:
                await self._preload()
            tmpdir = tempfile.mkdtemp(prefix="w", dir=self.root)
            control = ProgressFile(tmpdir + ".progress"), JournalFile(tmpdir + ".journal")
            proc = await self.launcher.spawn()
        except BaseException as exc:
            if control is not None:
                for end in control:
                    end.close()
            self.count -= 1
            self._hand_out()
            if isinstance(exc, Exception):
                raise WorkerStartError(f"cannot start a worker process: {exc}") from exc
            raise
        worker = Worker(proc, tmpdir, self.memory_limit, control)
        self.workers.add(worker)
        try:
            with anyio.fail_after(BOOT_TIMEOUT):
                await worker.handshake(self.sys_path)
        except BaseException as exc:
            worker.kill()
            self._retire(worker)
            if isinstance(exc, (Exception, TimeoutError)):
                raise WorkerStartError(f"cannot start a worker process: {exc}") from exc
            raise
        self.started += 1
        if self.preload_modules and self.eager_preload:
            await self._preload()
        for notice in worker.notices:
            _notice_once(notice)
        return worker

    async def _preload(self) -> None:
        modules, self.preload_modules = self.preload_modules, []
        await self.launcher.preload(modules)

    def _release(self, worker: Worker) -> None:
        recycle = (
            not worker.alive
            or self.closed
            or (self.recycle_files and worker.files_done >= self.recycle_files)
            or (self.recycle_memory and worker.rss > self.recycle_memory)
        )
        if recycle:
            self._retire(worker)
        else:
            self.idle.append(worker)
        self._hand_out()

    def _retire(self, worker: Worker) -> None:
        """Take a worker out of service; it is closed in the background."""
        if worker not in self.workers:
            return
        self.workers.discard(worker)
        self.count -= 1
        done = anyio.Event()
        self._closing.add(done)
        self.tg.start_soon(self._close_worker, worker, done)

    async def _close_worker(self, worker: Worker, done: anyio.Event) -> None:
        try:
            with anyio.CancelScope(shield=True):
                if worker.alive:
                    with contextlib.suppress(Exception), anyio.move_on_after(2):
                        await worker.proc.send(frame(("exit",)))
                        while await worker.proc.receive():
                            pass
                worker.kill()
                with anyio.move_on_after(10):
                    await worker.proc.wait()
                await worker.proc.aclose()
                for end in worker.control or ():
                    end.close()
                await anyio.to_thread.run_sync(shutil.rmtree, worker.tmpdir, True)
        finally:
            self._closing.discard(done)
            done.set()

    def _hand_out(self) -> None:
        """Give free capacity to waiting calls, one call after another."""
        if self.closed:
            for queue in self.waiters.values():
                for waiter in queue:
                    waiter.event.set()
            self.waiters.clear()
            return
        while self.waiters:
            if self.idle:
                worker: Worker | None = self.idle.pop()
            elif self.count < self.size:
                worker = None
                self.count += 1
            else:
                return
            lane = next(iter(self.waiters))
            queue = self.waiters.pop(lane)
            waiter = queue.popleft()
            if queue:
                self.waiters[lane] = queue
            waiter.worker = worker
            waiter.may_boot = worker is None
            waiter.event.set()

    async def aclose(self) -> None:
        """Kill every worker, stop the launcher, remove every temp folder."""
        self.closed = True
        self._hand_out()
        with anyio.CancelScope(shield=True):
            for worker in list(self.workers):
                worker.kill()
                self._retire(worker)
            self.idle.clear()
            for done in list(self._closing):
                await done.wait()
            await self.launcher.aclose()
            await anyio.to_thread.run_sync(workdirs.remove, self.root)


class ThreadWorker:
    """Scans in the parent's threads (`use_processes=False`)."""

    def __init__(self, limiter: anyio.CapacityLimiter) -> None:
        self.limiter = limiter
        self.alive = True

    async def run_batch(self, jobs: Sequence[FileJob], profile: Profile) -> list[FileJob]:
        """One file per lease: a thread cannot be interrupted, so nothing waits behind it."""
        from .worker import scan_file

        def scan(job: FileJob) -> ScanResult:
            from . import dispatch

            dispatch.set_registry(profile.registry)
            return scan_file(
                job.path,
                profile.config,
                job.display,
                job.explicit,
                stream=job.streamed.append,
                hash_file=job.hashed,
            )

        job = jobs[0]
        job.started, job.started_at = True, time.monotonic()
        result: ScanResult | None = None
        with anyio.move_on_after(job.deadline if job.deadline > 0 else math.inf):
            result = await anyio.to_thread.run_sync(
                scan, job, abandon_on_cancel=True, limiter=self.limiter
            )
        _finish(job, Outcome("timeout") if result is None else Outcome("done", result))
        return list(jobs[1:])


class ThreadPool:
    """The `WorkerPool` interface over threads of this process."""

    def __init__(self, size: int) -> None:
        self.limiter = anyio.CapacityLimiter(max(1, size))
        self.size = max(1, size)
        self.closed = False

    async def start(self) -> None:
        return

    def waiting_lanes(self) -> list[object]:
        return []

    @asynccontextmanager
    async def lease(self, lane: object) -> AsyncIterator[ThreadWorker]:
        if self.closed:
            raise PoolClosed("the scanner is closed")
        yield ThreadWorker(self.limiter)

    async def aclose(self) -> None:
        self.closed = True
