"""The worker pool a `Scanner` owns for its lifetime.

Calls lease workers one batch at a time, or, while no other call waits and no worker is
free, a run of batches with the next one queued in the worker before the one it runs ends
(engine/flight.py). Leases are granted fairly: when workers are busy, each free worker goes
to the next call in turn (round-robin over calls, first come first served within one), so a
call with one file waits for at most about one batch of another's (the one running and the
one queued, which stops being topped up as soon as another call waits). A
worker that crashes, is killed on a deadline, or has scanned `worker_recycle_files` files or
grown past `worker_recycle_memory` is closed and a new one starts when next needed. Closing
the pool kills every worker and removes every worker's temp folder.

`ThreadPool` has the same interface and scans in the parent's threads (`use_processes=False`,
debugging only: nothing is isolated, and a timed-out scan cannot be stopped, only abandoned).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import sys
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio.abc import TaskGroup

from ..findings import ScanResult
from . import workdirs
from .abandonable import run_abandonable
from .flight import FileJob, Flight, FlightError, More
from .launch import Launcher, WorkerProcess
from .outcomes import Outcome
from .procs import resident_bytes_of
from .protocol import (
    PROFILES_KEPT,
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
        control: tuple[ProgressFile, JournalFile, JournalFile] | None = None,
    ) -> None:
        self.proc = proc
        self.tmpdir = tmpdir
        #: The worker's progress record and its two journals (batches take turns);
        #: `grouped` once the worker said it uses them (results then travel in groups),
        #: else it sends each as its file ends.
        self.control = control
        self.grouped = False
        #: The worker may be sent its next batch while one runs (`run_batch`'s `more`).
        self.pipelines = False
        #: Files sent and not ended (all batches in flight).
        self.in_flight = 0
        self._slot = 0
        self.memory_limit = memory_limit
        self.frames = FrameReader()
        self.messages: deque[Any] = deque()
        #: The profiles the worker holds, in its order: least recently used first.
        self.profiles: OrderedDict[int, None] = OrderedDict()
        self.files_done = 0
        #: Resident memory as of the last batch's end; `measured` once there was one.
        self.rss = 0
        self.measured = False
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
            "journal2": self.control[2].path if self.control is not None else "",
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
        journals = int(message[6]) if len(message) > 6 else 0
        self.pipelines = self.grouped and self.can_poll and journals >= 2

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

    async def run_batch(
        self,
        jobs: Sequence[FileJob],
        profile: Profile,
        more: More | None = None,
    ) -> list[FileJob]:
        """Scan `jobs` in order; returns the jobs never started (the worker died before them).

        With `more` (and a worker that `pipelines`), the next batch is asked for as soon as
        one is sent and sent at once, so one batch waits in the worker while another runs
        and the worker never waits for the parent between them; this goes on until `more`
        has nothing, and returns once the last batch sent is over. Each file has its own
        deadline, counted from the moment the previous one ended. A file that overruns it,
        or during which the worker dies, ends with what it streamed. A file that takes
        longer than `SLOW` gives the files queued behind it, the queued batch's too, back to
        their calls (`give_back`), so other workers take them instead of waiting.
        Cancellation kills the worker; the caller decides what its files become.
        """
        state = Flight()
        try:
            await self.send_batch(jobs, profile, state)
            pipe = more if self.pipelines else None
            await self._top_up(state, profile, pipe)
            await self._collect(state, profile, pipe)
            return state.unstarted()
        except (ProtocolError, FlightError) as exc:
            self._end(state)
            state.fail(Outcome("crash", reason=f"worker sent a malformed message ({exc})"))
            return state.unstarted()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            self._end(state)
            return state.unstarted()
        except BaseException:
            self._end(state)
            raise
        finally:
            self.in_flight = 0

    async def send_batch(self, jobs: Sequence[FileJob], profile: Profile, state: Flight) -> None:
        """Send one batch (and the call's profile, the first time); the worker runs it after
        those already sent, writing its results to the next journal in turn."""
        # The worker's own bookkeeping, step for step: it keeps PROFILES_KEPT profiles and
        # evicts the least recently used, which need not be the Scanner's least recent.
        if profile.key not in self.profiles:
            await self.proc.send(frame(("profile", profile.key, profile.config, profile.registry)))
            self.profiles[profile.key] = None
            if len(self.profiles) > PROFILES_KEPT:
                self.profiles.popitem(last=False)
        self.profiles.move_to_end(profile.key)
        slot, self._slot = self._slot, 1 - self._slot
        state.add(jobs, slot)
        self.in_flight = state.files
        await self.proc.send(frame(("scan", profile.key, [j.wire() for j in jobs], slot)))

    async def _top_up(self, state: Flight, profile: Profile, more: More | None) -> None:
        """Keep a batch queued behind the one running, while `more` has one. Not while a batch
        that had files given back is in flight: they are back in their call's queue, and `more`
        could hand them to this worker again before that batch is over."""
        while more is not None and len(state.batches) < 2 and self.alive and not state.returned:
            following = more()
            if not following:
                return
            try:
                await self.send_batch(following, profile, state)
            except (anyio.BrokenResourceError, OSError):
                # The worker died (a file of the batch running): the messages it sent
                # before, then its end, are read as usual; this batch is rescheduled.
                self.kill()
                return

    def _end(self, state: Flight) -> None:
        """Kill the worker; keep the results it had not sent yet; find the file it was on."""
        self.kill()
        self._recover(state)
        self._locate(state)

    def _recover(self, state: Flight) -> None:
        """The results in the journals that the parent has not received (the worker is
        gone): those of the batches in flight, oldest first."""
        if not self.grouped or self.control is None:
            return
        journals = self.control[1:]
        with contextlib.suppress(ProtocolError):
            for slot, _jobs in list(state.batches):
                self._results(journals[slot].read(), state, recovered=True)

    def _results(self, blob: Any, state: Flight, recovered: bool = False) -> None:
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
        self.in_flight = state.files

    async def _collect(self, state: Flight, profile: Profile, more: More | None) -> None:
        """Follow the batches in flight until the worker is idle again, or dies, or is
        killed; the files it never reached stay in `state`. As each batch ends, the next
        is asked of `more` and queued behind the one now running.

        One cancel scope covers many messages: its deadline moves with the file being
        scanned, so a sweep of small files costs no timer per message.
        """
        while True:
            over = False
            with anyio.CancelScope(deadline=self._wake_at(state)):
                while True:
                    message = await self._next()
                    if message is None:
                        reason = await self._died()
                        self._recover(state)
                        self._locate(state)
                        state.fail(Outcome("crash", reason=reason))
                        return
                    if self._handle(message, state):
                        over = True
                        break
            if over:
                # Sent outside the scope: a deadline must not cut a message in half.
                await self._top_up(state, profile, more)
                if not state.batches:
                    return
                continue
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
            if self._slow(state, job) and now >= job.started_at + SLOW:
                behind = state.give_back()
                await self.proc.send(frame(("skip", [j.id for j in behind])))
                give_back(behind)
            elif self._watch_memory and await self._memory_over():
                self._end(state)
                state.fail(Outcome("crash", reason="out of memory (worker memory limit)"))
                return

    def _slow(self, state: Flight, job: FileJob) -> bool:
        """May `job`, once slow, give back the files behind it? Once per file, when the
        worker can be told to skip them and some are queued behind it."""
        return self.can_poll and state.gave_back_for is not job and len(state.expected) > 1

    def _locate(self, state: Flight) -> None:
        """Results travel in groups: ask the progress record which file the worker is on."""
        if self.grouped and self.control is not None:
            state.locate(self.control[0].read(), time.monotonic())

    @property
    def _watch_memory(self) -> bool:
        return not self.rlimits and self.memory_limit > 0

    def _wake_at(self, state: Flight) -> float:
        """When to look at the batch next (anyio's clock): the current file's deadline, the
        moment it counts as slow, or the next memory sample."""
        job = state.current
        now = time.monotonic()
        if job is None:
            # Every file is done or given back: the worker ends the batch with "idle".
            until = state.idle_since + IDLE_TIMEOUT
        else:
            until = job.started_at + job.deadline
            if self._slow(state, job):
                until = min(until, job.started_at + SLOW)
            if self._watch_memory:
                until = min(until, now + MEMORY_POLL)
        return anyio.current_time() + (until - now)

    def _handle(self, message: Any, state: Flight) -> bool:
        """Apply one message; True once the worker reported a batch over."""
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
            self.rss, self.measured = int(message[1]), True
            state.batch_over()
            self.in_flight = state.files
            return True
        else:
            raise ProtocolError(f"unexpected {kind!r} message")
        return False


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

    #: A lease runs a batch of files (a call's files may ride in another call's batch).
    batches = True

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

    def may_queue(self, worker: Worker, lane: object) -> bool:
        """May `lane`, which holds `worker`, queue another batch on it behind the one it
        runs? Only when no other call waits for a worker (a call's turn comes after at most
        the batch queued already), no worker is free or could start (it would take that
        batch now), and the worker is not due for recycling (its memory is known once its first
        batch has ended, so a fresh worker's first batch queues nothing behind it)."""
        if self.closed or not worker.alive or self.idle or self.count < self.size:
            return False
        if any(other is not lane for other in self.waiters):
            return False
        if self.recycle_files and worker.files_done + worker.in_flight >= self.recycle_files:
            return False
        memory = self.recycle_memory
        return not memory or (worker.measured and worker.rss <= memory)

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
        ends: list[ProgressFile | JournalFile] = []
        try:
            if self.preload_modules and self.started:
                await self._preload()
            tmpdir = workdirs.make_inside(self.root, "w")
            progress = ProgressFile(tmpdir + ".progress")
            ends.append(progress)
            journals = [JournalFile(tmpdir + suffix) for suffix in (".journal", "-b.journal")]
            ends += journals
            control = (progress, journals[0], journals[1])
            proc = await self.launcher.spawn()
        except BaseException as exc:
            for end in ends:
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
                await anyio.to_thread.run_sync(workdirs.remove_tree, worker.tmpdir)
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

    async def run_batch(
        self, jobs: Sequence[FileJob], profile: Profile, more: object = None
    ) -> list[FileJob]:
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
            result = await run_abandonable(functools.partial(scan, job), self.limiter)
        _finish(job, Outcome("timeout") if result is None else Outcome("done", result))
        return list(jobs[1:])


class ThreadPool:
    """The `WorkerPool` interface over threads of this process."""

    #: A lease scans one file and gives the rest of its batch back.
    batches = False

    def __init__(self, size: int) -> None:
        self.limiter = anyio.CapacityLimiter(max(1, size))
        self.size = max(1, size)
        self.closed = False

    async def start(self) -> None:
        return

    def waiting_lanes(self) -> list[object]:
        return []

    def may_queue(self, worker: object, lane: object) -> bool:
        return False

    @asynccontextmanager
    async def lease(self, lane: object) -> AsyncIterator[ThreadWorker]:
        if self.closed:
            raise PoolClosed("the scanner is closed")
        yield ThreadWorker(self.limiter)

    async def aclose(self) -> None:
        self.closed = True
