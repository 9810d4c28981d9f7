"""A round of ranged reads sent from threads over blocking requests (`ObjectReader.pump`).

A walk's round is dozens of small reads at once. Sent through httpx on the event loop, each
cost about a millisecond of CPU (its connection pool checks every pooled connection for each
request, plus the async machinery around it), which is the walk's whole cost at a low latency
and is shared with whatever else runs. A reader that can block (`blocking_fills`: HTTP without
a proxy) sends them instead from one thread per read in flight, each over `http.client` on a
connection its reader keeps alive from one read to the next (`fetchers/http_pool.py`), with
every check of the async path: the same `pump` (status, Content-Range, ETag and size pinned,
retries and resumes of a cut body) into the spool file at the bytes' offsets.

A stop (the scan cancelled, or one read failed: the object's error) aborts every socket the
round has open, so each thread returns; the round returns once they all have.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from ..fetchers.base import BlockingBody, FetchError, ObjectReader
from ..fetchers.stopper import Stopper
from .positional import write_all_at

#: Buffer a read lands through (a larger range is written in pieces this long).
BUFFER = 1 << 20
#: The first piece of each body, timed apart (what the link takes as its first byte).
FIRST_PIECE = 64 * 1024


class Read(NamedTuple):
    """One read of the round, landed: [start, end) of the object, its seconds to the
    first piece, that piece's bytes, its seconds in all, and when its first piece came,
    in seconds from the round's start."""

    start: int
    end: int
    first: float
    first_piece: int
    seconds: float
    at: float


class _Slot:
    """One thread's reads: the `BufferSink` its `pump` is given, holding its connections
    in the round, kept alive from read to read."""

    keep_alive = True

    def __init__(self, round: Round) -> None:
        self.round = round
        self.buffer = memoryview(bytearray(BUFFER))
        self.began = 0.0
        self.first: float | None = None
        self.first_piece = 0

    def reset(self) -> None:
        self.began = time.monotonic()
        self.first = None
        self.first_piece = 0

    # -- BufferSink --------------------------------------------------------------------

    def take(self) -> memoryview:
        if self.round.stopped():
            raise FetchError(f"{self.round.uri}: stopped")
        return self.buffer[:FIRST_PIECE] if self.first is None else self.buffer

    def put(self, buf: memoryview, start: int, stop: int, at: int) -> None:
        if stop <= start:
            return
        if self.first is None:
            self.first = time.monotonic() - self.began
            self.first_piece = stop - start
        write_all_at(self.round.fd, buf[start:stop], at)
        self.round.landed(stop - start)

    def opened(self, body: BlockingBody | None) -> None:
        if body is not None:
            self.round.hold(self, body.abort)
        else:
            self.round.drop(self)

    def stopped(self) -> bool:
        return self.round.stopped()

    def wait(self, seconds: float) -> bool:
        return self.round.wait(seconds)

    # -- Hold --------------------------------------------------------------------------

    def hold(self, conn: object, abort: Callable[[], None]) -> None:
        self.round.hold(conn, abort)

    def drop(self, conn: object) -> None:
        self.round.drop(conn)


class Round(Stopper):
    """`requests` of `reader`'s object, `parallel` at a time, landed in `fd`; `run` in a
    thread, `stop` (every connection in use aborted, connecting or not) from anywhere."""

    def __init__(
        self,
        reader: ObjectReader,
        fd: int,
        requests: list[tuple[int, int]],
        parallel: int,
        uri: str,
    ) -> None:
        super().__init__(uri)
        self.reader = reader
        self.fd = fd
        self.uri = uri
        self.threads = max(1, min(parallel, len(requests)))
        self._todo = collections.deque(requests)
        self._lock = threading.Lock()
        #: reads landed whole, in the order they ended
        self.done: list[Read] = []
        #: the round's error (the first read that failed), None if none did
        self.error: BaseException | None = None
        #: bytes landed so far (read by the progress reporter)
        self.bytes = 0
        self.began = 0.0

    def run(self) -> None:
        """Blocking: every read, `threads` at a time (this thread is one of them)."""
        self.began = time.monotonic()
        others = [
            threading.Thread(target=self._work, name="modelaudit-round", daemon=True)
            for _ in range(self.threads - 1)
        ]
        try:
            for thread in others:
                thread.start()
            self._work()
        finally:
            for thread in others:
                if thread.ident is not None:
                    thread.join()

    def _work(self) -> None:
        slot = _Slot(self)
        while not self.stopped():
            try:
                start, end = self._todo.popleft()
            except IndexError:
                return
            slot.reset()
            try:
                stopped_at = self.reader.pump(start, end, slot)
                if stopped_at != end:
                    raise FetchError(f"{self.uri}: short read at bytes {start}-{end}")
            except BaseException as exc:
                with self._lock:
                    if self.error is None and not self.stopped():
                        self.error = exc
                self.stop()
                return
            seconds = time.monotonic() - slot.began
            first = seconds if slot.first is None else slot.first
            at = slot.began + first - self.began
            self.done.append(Read(start, end, first, slot.first_piece, seconds, at))

    def landed(self, n: int) -> None:
        with self._lock:
            self.bytes += n
