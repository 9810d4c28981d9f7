"""The parent's view of the files a worker holds (`FileJob`s): the batch it runs and,
pipelined, the one queued behind it (engine/pool.py sends it before the first ends, so the
worker never waits for the parent between batches).

The worker runs the files in the order they were sent, batch after batch, so one queue in
that order serves both: a file's deadline counts from the end of the file before it, which for
the first file of a queued batch is the end of the batch before (when the parent hears of
it). Each batch still ends with its own "idle"; the files a worker was given back but had not
confirmed skipping are dropped then, and the batch's bookkeeping with them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..findings import Issue
from .outcomes import Outcome


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


#: Hands out the next batch for a worker, or nothing (engine/runner.py's `_queued_batches`).
More = Callable[[], Sequence[FileJob]]


class FlightError(Exception):
    """The worker ended a batch before reporting every file of it."""


class Flight:
    """The files a worker was sent and has not ended, in order, across its batches in flight,
    and those given back that it may still have started before it read the "skip"."""

    def __init__(self, jobs: Sequence[FileJob] = ()) -> None:
        self.by_id: dict[int, FileJob] = {}
        self.order: dict[int, int] = {}
        self.expected: deque[FileJob] = deque()
        self.maybe: deque[FileJob] = deque()
        self.current: FileJob | None = None
        self.idle_since = time.monotonic()
        #: Batches in flight, oldest first: (journal slot, their files as sent).
        self.batches: deque[tuple[int, list[FileJob]]] = deque()
        #: The file whose slowness gave back the files behind it (once per file).
        self.gave_back_for: FileJob | None = None
        #: Ids given back whose batch is not over yet: their calls may hand them out again,
        #: and a file must not be in two batches of one worker (`batch_over` goes by id).
        self.returned: set[int] = set()
        self._sent = 0
        if jobs:
            self.add(jobs)

    def add(self, jobs: Sequence[FileJob], slot: int = 0) -> None:
        """A batch sent to the worker, behind those in flight."""
        for job in jobs:
            self.by_id[job.id] = job
            self.order[job.id] = self._sent
            self._sent += 1
        self.expected.extend(jobs)
        self.batches.append((slot, list(jobs)))
        if self.current is None:
            self._start(time.monotonic())

    @property
    def files(self) -> int:
        """Files in flight (sent and not ended)."""
        return len(self.by_id)

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

        Only forward moves are believed (a later file sent, a start no earlier than the one
        known), so a lying worker cannot push its deadlines back for ever. A file of the
        queued batch means the batch before has ended (its results are on their way)."""
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
            # The usual case: files end in order, none given back.
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

    def batch_over(self) -> None:
        """The worker reported its oldest batch over ("idle"): every file of it has ended
        or was given back; those given back are no longer the worker's."""
        if not self.batches:
            raise FlightError("worker idle without a batch")
        _slot, jobs = self.batches.popleft()
        ended = {job.id for job in jobs}
        if self.expected and self.expected[0].id in ended:
            raise FlightError("worker idle before finishing its files")
        if self.maybe and any(job.id in ended for job in self.maybe):
            self.maybe = deque(job for job in self.maybe if job.id not in ended)
        for job_id in ended:
            self.by_id.pop(job_id, None)
            self.order.pop(job_id, None)
        if self.returned:
            self.returned -= ended
        if self.current is None or self.current.id not in self.by_id:
            self._start(time.monotonic())

    def give_back(self) -> list[FileJob]:
        """Every expected file after the current one, whichever batch it is in; they may
        still start until confirmed."""
        current = self.current
        self.gave_back_for = current
        behind = [j for j in self.expected if j is not current and self._after(j, current)]
        for _ in behind:
            self.expected.pop()
        self.maybe.extend(behind)
        for job in behind:
            job.started = False
            self.returned.add(job.id)
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
            job.owner.finish(job, outcome)

    def unstarted(self) -> list[FileJob]:
        """What to reschedule once the worker is gone: every expected file that has not
        ended (never started, or ended without its result reaching the parent), of every
        batch in flight."""
        left = [j for j in self.expected if j.id in self.by_id]
        for job in left:
            job.started = False
        return left
