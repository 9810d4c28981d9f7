"""Whole-object fills: one long streamed request landed in a spool file, as fast as a download.

A format that needs every byte, `--hash-remote`, or a plan that costs more than the rest of
the object ends in one streamed request for everything still missing. Its bytes cross three
stages that each get a thread: the network (the reader's blocking stream, `ObjectReader.pump`,
reading straight into large buffers; readers without one are read on the event loop and
copied into the same buffers), then a writer thread that hashes each buffer and writes it at
its offset while the next one arrives. hashlib and `os.pwrite` release the GIL on buffers
this large, so hashing and writing overlap the network instead of adding to it. A fill that
writes nothing only hashes; with a `Tap` (engine/tap.py) it writes what the planner asks for.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread

from ..fetchers.base import BlockingBody, FetchError, ObjectReader, ObjectTooLarge
from ..fetchers.stopper import Stopper
from .tap import Tap
from .watch import Watch

#: Bytes per buffer: one read, one hash update and one write each.
BUFFER = 8 << 20
#: Buffers per fill: one being read, one being written, two spare for a slow disk or hash.
BUFFERS = 4


class _Stopped(Exception):
    """The fill was called off (cancelled, or its writer failed)."""


class Landing(Stopper):
    """The receiving end of a fill (a `fetchers.base.BufferSink`): hands out buffers and
    writes those handed back, in order, in a thread of its own; hashes bytes that continue
    what the hasher has seen (`hashed`). Its stop aborts the connection the read holds
    here, also while it connects."""

    def __init__(
        self,
        fd: int | None,
        uri: str,
        hasher: Any = None,
        hashed: int = 0,
        limit: int = 0,
        tap: Tap | None = None,
    ) -> None:
        super().__init__(uri)
        #: where the bytes land; None: they are only hashed (and those `tap` wants written)
        self.fd = fd
        self.tap = tap
        self.uri = uri
        self.hasher = hasher
        #: the hasher has seen the object's bytes [0, hashed)
        self.hashed = hashed
        self.limit = limit
        #: bytes handled (written and/or hashed) so far; read by the progress reporter
        self.landed = 0
        #: when the first response opened (time.monotonic), for the link's latency
        self.first: float | None = None
        #: seconds the first response took to open before this fill took it (`waited`)
        self.ahead = 0.0
        self.error: BaseException | None = None
        self._free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
        for _ in range(BUFFERS):
            self._free.put(memoryview(bytearray(BUFFER)))
        self._full: queue.SimpleQueue[tuple[memoryview, int, int, int] | None] = queue.SimpleQueue()
        self._body: BlockingBody | None = None
        self._thread = threading.Thread(target=self._write_all, name="modelaudit-fill")
        self._thread.start()

    # -- the BufferSink the producer uses ------------------------------------------------

    def take(self) -> memoryview:
        while True:
            if self.stopped():
                raise _Stopped
            try:
                return self._free.get(timeout=0.25)
            except queue.Empty:
                continue

    def take_nowait(self) -> memoryview | None:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            return None

    def put(self, buf: memoryview, start: int, stop: int, at: int) -> None:
        if self.limit and at + stop - start > self.limit:
            self._free.put(buf)
            raise ObjectTooLarge(f"{self.uri}: larger than --max-size while downloading")
        if self.tap is not None:
            self.tap.arrived(at + stop - start)
        self._full.put((buf, start, stop, at))

    def opened(self, body: BlockingBody | None, waited: float = 0.0) -> None:
        if self.first is None:
            self.first = time.monotonic()
            if body is not None:
                waited = body.waited
            if waited:
                # opened ahead (by the listing): it answered after `waited`, not at once
                self.ahead = waited
            if self.tap is not None:
                self.tap.opened = max(self.first, self.tap.began + self.ahead)
        self._body = body

    # -- control -----------------------------------------------------------------------

    def stop(self) -> None:
        """Call the fill off: a blocked connect or read is aborted, waits end."""
        super().stop()
        body = self._body
        if body is not None:
            body.abort()

    def finish(self) -> None:
        """Blocking: wait until every buffer handed back is written."""
        self._full.put(None)
        self._thread.join()

    def _write_all(self) -> None:
        while (item := self._full.get()) is not None:
            buf, start, stop, at = item
            try:
                if self.error is None and stop > start:
                    self._write(buf[start:stop], at)
            except BaseException as exc:
                self.error = exc
                self.stop()
            finally:
                self._free.put(buf)

    def _write(self, data: memoryview, at: int) -> None:
        if self.hasher is not None and at == self.hashed:
            self.hasher.update(data)
            self.hashed += len(data)
        n = len(data)
        if self.tap is not None:
            self.tap.land(data, at, self.stopped)
        fd = self.fd
        while fd is not None and data:
            wrote = os.pwrite(fd, data, at)
            data, at = data[wrote:], at + wrote
        self.landed += n


@dataclass
class Filled:
    landed: int
    #: the hasher has seen [0, hashed)
    hashed: int
    #: seconds to the first response, and in all (what the link learns)
    first: float
    seconds: float


async def fill(
    reader: ObjectReader,
    fd: int | None,
    start: int,
    end: int | None,
    uri: str,
    hasher: Any = None,
    hashed: int = 0,
    limit: int = 0,
    on_bytes: Callable[[int], None] | None = None,
    tap: Tap | None = None,
) -> Filled:
    """Land the object's bytes [start, end) (to its end when None) at their offsets in `fd`
    in one streamed request (resumed where a cut leaves it); `hasher` takes them too when
    they continue the `hashed` bytes it has seen. `fd` None: only hash them (the scanner
    needs none of them), or with `tap`, write only what it wants. `limit`: ObjectTooLarge past that many."""
    began = time.monotonic()
    landing = Landing(fd, uri, hasher, hashed, limit, tap)
    # (once the read ended whole, the writer finishes what it holds: a tap may hold it a while)
    watch = Watch(lambda: landing.landed, on_bytes, landing.stop)
    failure: Exception | None = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch.run)
            try:
                if reader.blocking_fills():
                    await anyio.to_thread.run_sync(reader.pump, start, end, landing)
                else:
                    await _pump_async(reader, start, end, landing)
                watch.done = True
            except Exception as exc:
                # raised after the group, not wrapped in an exception group
                failure = exc
                landing.stop()
            finally:
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(landing.finish)
    # a fill stopped by a cancellation ends in that cancellation, whatever the read raised
    await anyio.lowlevel.checkpoint_if_cancelled()
    if landing.error is not None:
        raise FetchError(f"{uri}: could not write the local copy: {landing.error}")
    if isinstance(failure, _Stopped):
        raise FetchError(f"{uri}: the download was stopped")
    if failure is not None:
        raise failure
    watch.report()
    first = (landing.first or began) - began + landing.ahead
    seconds = time.monotonic() - began + landing.ahead
    return Filled(landing.landed, landing.hashed, first, seconds)


async def _pump_async(reader: ObjectReader, start: int, end: int | None, sink: Landing) -> None:
    """The fill's producer for readers without a blocking stream: their chunks, read on
    the event loop, copied into the sink's buffers."""
    buf: memoryview | None = None
    filled = 0
    at = pos = start
    waited = reader.ahead_waited(start)
    try:
        async with aclosing(reader.chunks(start, end)) as chunks:
            async for chunk in chunks:
                if sink.first is None:
                    sink.opened(None, waited)
                view = memoryview(chunk)
                while view:
                    if buf is None:
                        buf = sink.take_nowait()
                        if buf is None:
                            buf = await anyio.to_thread.run_sync(sink.take)
                        filled, at = 0, pos
                    n = min(len(buf) - filled, len(view))
                    buf[filled : filled + n] = view[:n]
                    filled += n
                    pos += n
                    view = view[n:]
                    if filled == len(buf):
                        full, buf = buf, None
                        sink.put(full, 0, filled, at)
    finally:
        if buf is not None:
            sink.put(buf, 0, filled, at)
