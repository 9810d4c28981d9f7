"""The planner's reads served from a whole-object stream that is hashed, not kept.

`--hash-remote` without a published sha256 streams every byte of the object through the
hasher anyway. The plan then costs no request of its own: the bytes it asks for are taken
off that stream as they pass and written to the spool; nothing else is written (a header-only
scan of a 1 GiB object keeps a few hundred KiB, not a 1 GiB copy).

The stream must not pass bytes the planner may still ask for. The planner's parser asks in
order for a forward format (a header, then the next record's header, ...), so the stream is
held at the end of the planner's last request (`gate`) while the planner runs, and released
when the planner waits for further bytes or is done. Ranges registered without holding (the
tail of an object whose name is no model format's) are taken when the stream reaches them;
once the plan is served nothing more is written (`release(drop=True)`) and the stream goes
on only to be hashed, while the scan runs. A request for bytes the stream has already
passed (a parser reading backwards) is left to the caller to fetch by range.

Thread-safe: the fill's writer thread calls `land`, its reader `arrived`; the event loop
calls the rest (its blocking `wait` from a worker thread).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .positional import write_all_at

#: How often a held writer or a waiting planner looks again at a stop it was not told of.
_POLL = 0.25


class Tap:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._cond = threading.Condition()
        #: sorted, disjoint ranges still to take off the stream
        self._wants: list[tuple[int, int]] = []
        #: the stream may not pass this offset unless `_open` (the planner may ask for it)
        self._gate = 0
        self._open = False
        #: bytes before this have passed (taken if wanted, otherwise only hashed)
        self.passed = 0
        #: ranges written since the loop last took them (`taken`)
        self._landed: list[tuple[int, int]] = []
        self._ended = False
        #: what the stream shows of its link before the planner chooses between keeping it
        #: and ranged reads (time.monotonic): when it was asked for, when its response
        #: opened (set by the fill), when its first buffer landed and how long that was
        self.began = time.monotonic()
        self.opened: float | None = None
        #: (time.monotonic, bytes) when the fill's reader handed over its first buffer and
        #: its latest: what arrived off the network, however long the planner holds them
        self.first_arrival: tuple[float, int] | None = None
        self.last_arrival: tuple[float, int] | None = None
        #: the hand-over before the last (the latest buffer's own rate: a connection's rate
        #: grows while TCP opens its window)
        self.prev_arrival: tuple[float, int] | None = None

    # -- the event loop's side ---------------------------------------------------------

    def ask(self, ranges: list[tuple[int, int]], hold: bool = True) -> list[tuple[int, int]]:
        """Take `ranges` off the stream; returns the parts it has already passed (to be
        fetched by range). `hold`: the stream stops at their end until the planner asks for
        more or `release`s it."""
        behind: list[tuple[int, int]] = []
        with self._cond:
            for a, b in ranges:
                if a < self.passed:
                    behind.append((a, min(b, self.passed)))
                    a = self.passed
                if a >= b:
                    continue
                self._wants = _merge([*self._wants, (a, b)])
                if hold:
                    self._gate = max(self._gate, b)
            self._cond.notify_all()
        return behind

    def wait(self, ranges: list[tuple[int, int]]) -> bool:
        """Blocking: until none of `ranges` is still wanted; False if the stream ended
        first (it failed, or was stopped)."""
        with self._cond:
            while any(_overlap(w, r) for w in self._wants for r in ranges):
                if self._ended:
                    return False
                self._cond.wait(_POLL)
            return True

    def taken(self) -> list[tuple[int, int]]:
        """The ranges written since the last call."""
        with self._cond:
            out, self._landed = self._landed, []
        return out

    def release(self, drop: bool = False) -> None:
        """The planner is done: the stream passes freely, taking what is still wanted
        (nothing more if `drop`: the scan has what it reads and may be reading it)."""
        with self._cond:
            self._open = True
            if drop:
                self._wants = []
            self._cond.notify_all()

    @property
    def ended(self) -> bool:
        return self._ended

    def end(self) -> None:
        """The stream is over (whole, failed or stopped): nobody waits for it any more."""
        with self._cond:
            self._ended = True
            self._open = True
            self._cond.notify_all()

    # -- the fill's threads -------------------------------------------------------------

    def arrived(self, end: int) -> None:
        """The fill's reader handed over the stream's bytes up to `end`."""
        now = (time.monotonic(), end)
        if self.first_arrival is None:
            self.first_arrival = now
        self.prev_arrival, self.last_arrival = self.last_arrival, now

    def land(self, data: memoryview, at: int, stopped: Callable[[], bool]) -> None:
        """Bytes [at, at + len(data)) of the stream: write the wanted parts, then hold them
        until the planner can no longer ask for any of them."""
        end = at + len(data)
        with self._cond:
            while True:
                self._take(data, at)
                if self._open or self._gate >= end or stopped():
                    break
                self._cond.wait(_POLL)
            self.passed = end
            self._cond.notify_all()

    def _take(self, data: memoryview, at: int) -> None:
        end = at + len(data)
        left: list[tuple[int, int]] = []
        for a, b in self._wants:
            lo, hi = max(a, at), min(b, end)
            if lo >= hi:
                left.append((a, b))
                continue
            write_all_at(self.fd, data[lo - at : hi - at], lo)
            self._landed.append((lo, hi))
            if a < lo:
                left.append((a, lo))
            if hi < b:
                left.append((hi, b))
        if len(left) != len(self._wants) or left != self._wants:
            self._cond.notify_all()
        self._wants = left


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
