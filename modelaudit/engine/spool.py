"""A sparse local copy of one remote object, and the byte view the format parsers read it by.

Ranged reads land in a file of the object's full size at their true offsets, so the scanner
later opens an ordinary file whose unread regions are holes. While planning, the same copy is a
`ByteView` (`formats/view.py`): a parser asking for bytes that have not arrived gets
`NeedBytes` naming them, and the planner fetches them.
"""

from __future__ import annotations

import bisect
import mmap
import os
import time
from collections.abc import Callable
from contextlib import aclosing
from typing import Any, overload

import anyio
import anyio.lowlevel
import anyio.to_thread

from ..fetchers.base import FetchError, ObjectReader
from ..formats.view import NeedBytes
from .fill import fill
from .link import Link, link_for
from .positional import write_all_at
from .rounds import Round
from .tap import Tap
from .watch import Watch

#: Largest planned ranged request: bigger ranges go as several requests in parallel.
MAX_REQUEST = 8 * 1024 * 1024
#: Requests of one object in flight at once.
PARALLEL = 8
#: Bytes gathered off the network before one write (a thread writes batches this large;
#: whole-object fills go through engine/fill.py instead).
_WRITE_BATCH = 8 * 1024 * 1024
_INLINE_WRITE = 256 * 1024


class Spool:
    """Ranged reads of one object, landed in a sparse file at `path`; counts what they cost."""

    def __init__(
        self,
        reader: ObjectReader,
        path: str,
        size: int,
        uri: str,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.reader = reader
        #: what requests to this object's endpoint cost
        self.link: Link = link_for(reader.endpoint or type(reader).__name__)
        #: hears of each piece as it lands (download progress)
        self.on_bytes = on_bytes
        self.path = path
        self.size = size
        self.uri = uri
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(self.fd, size)
        self._map = mmap.mmap(self.fd, size) if size else None
        #: disjoint, sorted [start, end) ranges that have arrived
        self.have: list[tuple[int, int]] = []
        self._last = (0, 0)
        self.transferred = 0
        self.requests = 0
        #: set to a hashlib object to hash the object in the pass that fills it (`hashed`:
        #: how far it got), sparing a second pass over a whole download
        self.hasher: Any = None
        self.hashed = 0
        #: a whole-object stream being hashed (`stream_tapped`): ranged reads are taken off
        #: it as it passes, only what it passed already is requested
        self.tap: Tap | None = None

    def close(self) -> None:
        """Idempotent: the spool file stays, its descriptor and map go."""
        if self._map is not None:
            self._map.close()
            self._map = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # -- what has arrived --------------------------------------------------------------

    def _span(self, pos: int) -> tuple[int, int] | None:
        a, b = self._last
        if a <= pos < b:
            return self._last
        i = bisect.bisect_right(self.have, (pos, 1 << 62)) - 1
        if i >= 0 and self.have[i][0] <= pos < self.have[i][1]:
            self._last = self.have[i]
            return self._last
        return None

    def missing(self, start: int, end: int) -> list[tuple[int, int]]:
        start, end = max(0, start), min(end, self.size)
        gaps = []
        pos = start
        i = max(0, bisect.bisect_right(self.have, (pos, 1 << 62)) - 1)
        for a, b in self.have[i:]:
            if a >= end:
                break
            if b <= pos:
                continue
            if a > pos:
                gaps.append((pos, a))
            pos = max(pos, b)
        if pos < end:
            gaps.append((pos, end))
        return gaps

    def covered(self, start: int, end: int) -> bool:
        return not self.missing(start, end)

    def run_start(self, pos: int) -> int:
        """Where the arrived range holding `pos` begins (`pos` if none holds it)."""
        span = self._span(pos)
        return span[0] if span is not None else pos

    def next_start(self, pos: int) -> int:
        """Where the next arrived range after `pos` begins (the size if none)."""
        i = bisect.bisect_right(self.have, (pos, 1 << 62))
        return self.have[i][0] if i < len(self.have) else self.size

    def _add(self, start: int, end: int) -> None:
        i = bisect.bisect_left(self.have, (start, start))
        if i > 0 and self.have[i - 1][1] >= start:
            i -= 1
            start = self.have[i][0]
        j = i
        while j < len(self.have) and self.have[j][0] <= end:
            end = max(end, self.have[j][1])
            j += 1
        self.have[i:j] = [(start, end)]
        self._last = (0, 0)

    # -- the ByteView the parsers read -------------------------------------------------

    def get(self, start: int, end: int) -> bytes:
        start, end = max(0, start), min(end, self.size)
        if end <= start:
            return b""
        span = self._span(start)
        if span is None or span[1] < end:
            raise NeedBytes(self.missing(start, end))
        assert self._map is not None
        return self._map[start:end]

    @overload
    def __getitem__(self, key: int) -> int: ...
    @overload
    def __getitem__(self, key: slice) -> bytes: ...
    def __getitem__(self, key: int | slice) -> int | bytes:
        if isinstance(key, slice):
            return self.get(key.start or 0, self.size if key.stop is None else key.stop)
        if not 0 <= key < self.size:
            raise IndexError(key)
        if self._span(key) is None:
            raise NeedBytes([(key, key + 1)])
        assert self._map is not None
        return self._map[key]

    def __len__(self) -> int:
        return self.size

    # -- fetching ----------------------------------------------------------------------

    def missing_bytes(self, start: int = 0, end: int | None = None) -> int:
        return sum(b - a for a, b in self.missing(start, self.size if end is None else end))

    async def fetch(self, start: int, end: int) -> None:
        """Land [start, end) (clipped to the object), in requests of at most MAX_REQUEST."""
        await self.fetch_many([(start, end)])

    async def fetch_many(
        self,
        ranges: list[tuple[int, int]],
        split: bool = True,
        parallel: int = PARALLEL,
        by_range: bool = False,
    ) -> None:
        """Land every range, the missing parts of each as their own requests (pieces of at
        most MAX_REQUEST when `split`), up to `parallel` at once. While a stream is tapped,
        only what it passed already (or all of them: `by_range`); the rest is taken off it."""
        if self.tap is not None and not by_range:
            await self._from_stream(self.tap, ranges, split, parallel)
            return
        requests = self.requests_for(ranges, split)
        if requests and self.reader.holding():
            requests = await self._land_held(requests, parallel)
        if not requests:
            # (nothing missing: an empty object, or everything held)
            return
        if self.reader.blocking_fills():
            await self._round_blocking(requests, parallel)
            return
        if len(requests) == 1:
            await self._request(*requests[0])
            return
        limiter = anyio.CapacityLimiter(max(1, parallel))
        failed: list[BaseException] = []
        firsts: list[float] = []
        bodies: list[tuple[int, int, float]] = []
        began = time.monotonic()

        async def one(a: int, b: int, scope: anyio.CancelScope) -> None:
            async with limiter:
                try:
                    firsts.append(await self._request(a, b, bodies))
                except Exception as exc:
                    # the first failure is the object's error; the other requests stop
                    failed.append(exc)
                    scope.cancel()

        async with anyio.create_task_group() as tg:
            for a, b in requests:
                tg.start_soon(one, a, b, tg.cancel_scope)
        if failed:
            raise failed[0]
        # how many of them the endpoint served at once (engine/link.py)
        self.link.observe_round(
            len(requests),
            parallel,
            min(firsts),
            sum(b - a for a, b in requests),
            time.monotonic() - began,
            bodies,
        )

    async def _round_blocking(self, requests: list[tuple[int, int]], parallel: int) -> None:
        """The requests sent from threads over blocking reads on kept-alive connections
        (engine/rounds.py), written where they belong as they arrive; the link learns from
        them as from the same requests sent on the event loop. A cancellation stops the
        round (its sockets aborted) and waits for its threads."""
        work = Round(self.reader, self.fd, requests, parallel, self.uri)
        watch = Watch(lambda: work.bytes, self.on_bytes, work.stop)
        began = time.monotonic()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch.run)
                try:
                    await anyio.to_thread.run_sync(work.run)
                    watch.done = True
                finally:
                    tg.cancel_scope.cancel()
        finally:
            elapsed = time.monotonic() - began
            watch.report()
            self.transferred += work.bytes
            for read in work.done:
                self._add(read.start, read.end)
            self.requests += len(work.done)
        await anyio.lowlevel.checkpoint_if_cancelled()
        if work.error is not None:
            raise work.error
        if len(work.done) != len(requests):
            raise FetchError(f"{self.uri}: the round of reads was stopped")
        if len(requests) == 1:
            (read,) = work.done
            size = read.end - read.start
            self.link.observe(read.first, size, read.seconds, read.first_piece)
            return
        bodies = [
            (r.end - r.start, r.end - r.start - r.first_piece, r.seconds - r.first)
            for r in work.done
        ]
        arrivals = sorted(r.at for r in work.done)
        self.link.observe_round(
            len(requests),
            parallel,
            min(r.first for r in work.done),
            sum(b - a for a, b in requests),
            elapsed,
            bodies,
            middle=arrivals[len(arrivals) // 2],
        )

    async def _land_held(
        self, requests: list[tuple[int, int]], parallel: int
    ) -> list[tuple[int, int]]:
        """Land what the reader already holds from the listing's first reads (sent in
        place of a HEAD); the link learns what those reads cost, as if sent now. Returns the
        requests still to send."""
        rest: list[tuple[int, int]] = []
        held = []
        for a, b in requests:
            # all of what the first read brought there, not only the range asked
            wide = self.reader.held_span(a, b)
            got = await self.reader.held(*wide)
            if got is None:
                rest.append((a, b))
                continue
            await self._write(bytearray(got.data), wide[0])
            held.append(got)
        self.requests += len(held)
        if len(held) == 1:
            self.link.observe(held[0].first, len(held[0].data), held[0].seconds)
        elif held:
            self.link.observe_round(
                len(held),
                parallel,
                min(h.first for h in held),
                sum(len(h.data) for h in held),
                max(h.seconds for h in held),
            )
        return rest

    async def _from_stream(
        self, tap: Tap, ranges: list[tuple[int, int]], split: bool, parallel: int
    ) -> None:
        wanted = [gap for a, b in ranges for gap in self.missing(a, b)]
        behind = tap.ask(wanted)
        if behind:
            await self.fetch_many(behind, split, parallel, by_range=True)
        if not await anyio.to_thread.run_sync(tap.wait, wanted, abandon_on_cancel=True):
            raise FetchError(f"{self.uri}: the stream ended before the bytes the scan reads")
        self._take(tap)

    def _take(self, tap: Tap) -> None:
        for a, b in tap.taken():
            self._add(a, b)

    async def stream_tapped(self, tap: Tap) -> None:
        """The whole object in one streamed request, hashed from its first byte and not
        kept, except what `tap` is asked for while it passes (engine/tap.py). A stream cut
        short (the planner chose ranged reads) counts what it moved and hashed nothing: its
        caller replaces `hasher`, which saw only the stream's first bytes."""
        hasher = self.hasher
        try:
            done = await fill(
                self.reader,
                None,
                0,
                self.size,
                self.uri,
                hasher=hasher,
                hashed=0,
                on_bytes=self.on_bytes,
                tap=tap,
            )
        except BaseException:
            self.transferred += tap.passed
            self.requests += 1
            raise
        finally:
            tap.end()
        self._take(tap)
        if self.hasher is hasher:
            self.hashed = done.hashed
        self.transferred += done.landed
        self.requests += 1
        self.link.observe(done.first, done.landed, done.seconds)
        if done.landed != self.size:
            raise FetchError(f"{self.uri}: short read at bytes 0-{self.size}")

    def requests_for(
        self, ranges: list[tuple[int, int]], split: bool = True
    ) -> list[tuple[int, int]]:
        """The requests that would land `ranges`: what is missing, in pieces."""
        out: list[tuple[int, int]] = []
        for start, end in ranges:
            for a, b in self.missing(start, end):
                while a < b:
                    stop = min(b, a + MAX_REQUEST) if split else b
                    out.append((a, stop))
                    a = stop
        return out

    async def _request(
        self, start: int, end: int, round_bodies: list[tuple[int, int, float]] | None = None
    ) -> float:
        """One request for [start, end), written where it belongs as it arrives; returns
        the seconds to its first byte. Sent by itself, the link learns from it; sent in a
        round (`round_bodies`), its body is put there for the round (Link.observe_round)."""
        pos = start
        began = time.monotonic()
        first: float | None = None
        first_piece = 0
        pending = bytearray()
        at = start
        async with aclosing(self.reader.chunks(start, end)) as chunks:
            async for chunk in chunks:
                if first is None:
                    first = time.monotonic() - began
                    first_piece = len(chunk)
                pending += chunk
                pos += len(chunk)
                if len(pending) >= _WRITE_BATCH:
                    await self._write(pending, at)
                    at = pos
                    pending = bytearray()
        if pending:
            await self._write(pending, at)
        self.requests += 1
        elapsed = time.monotonic() - began
        if round_bodies is None:
            self.link.observe(first or 0.0, pos - start, elapsed, first_piece)
        else:
            size = pos - start
            round_bodies.append((size, size - min(size, first_piece), elapsed - (first or 0.0)))
        if pos != end:
            raise FetchError(f"{self.uri}: short read at bytes {start}-{end}")
        return first or 0.0

    async def _write(self, data: bytearray, at: int) -> None:
        if len(data) > _INLINE_WRITE:
            await anyio.to_thread.run_sync(write_all_at, self.fd, data, at)
        else:
            write_all_at(self.fd, data, at)
        self.transferred += len(data)
        if self.on_bytes is not None:
            self.on_bytes(len(data))
        self._add(at, at + len(data))

    async def stream_rest(self, start: int = 0) -> None:
        """Everything still missing from `start` on, in one streamed request (cheaper than
        more rounds of ranged reads once a plan costs more): a fill (engine/fill.py), hashed
        in the same pass when `hasher` is set."""
        gaps = self.missing(start, self.size)
        if gaps:
            # from the first gap to the end of the last: what arrived at the end (the tail)
            # is not fetched again
            first, last = gaps[0][0], gaps[-1][1]
            self._hash_arrived(first)
            done = await fill(
                self.reader,
                self.fd,
                first,
                last,
                self.uri,
                hasher=self.hasher,
                hashed=self.hashed,
                on_bytes=self.on_bytes,
            )
            self.hashed = done.hashed
            self.transferred += done.landed
            self.requests += 1
            self._add(first, first + done.landed)
            self.link.observe(done.first, done.landed, done.seconds)
            if done.landed != last - first:
                raise FetchError(f"{self.uri}: short read at bytes {first}-{last}")
        self._hash_arrived(self.size)

    def digest(self) -> str | None:
        """The hasher's digest once it has seen every byte (hashing what arrived by ranged
        reads that no fill hashed); None otherwise."""
        self._hash_arrived(self.size)
        if self.hasher is None or self.hashed != self.size:
            return None
        return str(self.hasher.hexdigest())

    def _hash_arrived(self, end: int) -> None:
        """Feed the hasher what has arrived from where it stands up to `end`, so a fill can
        go on hashing from its first byte (the head and tail came before it)."""
        if self.hasher is None or self._map is None:
            return
        while self.hashed < end:
            span = self._span(self.hashed)
            if span is None:
                return
            stop = min(span[1], end)
            self.hasher.update(self._map[self.hashed : stop])
            self.hashed = stop

    async def read(self, start: int, end: int) -> bytes:
        """Bytes [start, end) (clipped to the object), fetched first where missing."""
        await self.fetch(start, end)
        return self.get(start, end)
