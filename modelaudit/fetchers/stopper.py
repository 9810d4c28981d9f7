"""The stop of blocking requests made from threads, reachable from any other thread.

A thread blocked in a socket call cannot be cancelled; shutting its socket down is what ends
the call. A `Stopper` (a `base.Hold`) knows the connections its work has in use, each held
from before it connects (fetchers/http_connect.py), so `stop` ends every one of them
wherever it blocks. A round of reads (engine/rounds.py) and a fill (engine/fill.py) are
stoppers; `in_thread` gives one to a blocking call made from the event loop (a listing's first
reads) and stops it when the caller is cancelled, waiting for the thread to return.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from .errors import FetchError

T = TypeVar("T")


class Stopper:
    """Connections in use by `shown`'s blocking requests (`hold`/`drop`) and their stop."""

    #: (a fill's or a first read's connection serves one response; a round keeps its own)
    keep_alive = False

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self._stop = threading.Event()
        self._held_lock = threading.Lock()
        self._held: dict[object, Callable[[], None]] = {}

    def stop(self) -> None:
        """Call the work off: every connection held is aborted, waits end."""
        self._stop.set()
        with self._held_lock:
            aborts = list(self._held.values())
        for abort in aborts:
            abort()

    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        return self._stop.wait(seconds)

    def hold(self, conn: object, abort: Callable[[], None]) -> None:
        with self._held_lock:
            self._held[conn] = abort
        if self._stop.is_set():
            # (stopped meanwhile: the stop may have missed it)
            abort()
            raise FetchError(f"{self.shown}: stopped")

    def drop(self, conn: object) -> None:
        with self._held_lock:
            self._held.pop(conn, None)

    async def in_thread(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)` in a worker thread; a cancellation meanwhile stops this stopper
        (the call must hold its connections here) and waits for the thread, which returns
        at once: no request outlives its caller."""
        finished = False
        outcome: list[T] = []
        failure: BaseException | None = None

        async def stop_when_cancelled() -> None:
            try:
                await anyio.sleep_forever()
            finally:
                if not finished:
                    self.stop()

        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_when_cancelled)
            try:
                outcome.append(await anyio.to_thread.run_sync(call, *args))
            except BaseException as exc:
                # raised after the group, not wrapped in an exception group
                failure = exc
            finally:
                finished = True
                tg.cancel_scope.cancel()
        # a call stopped by a cancellation ends in that cancellation, not in what the stop
        # made it raise (a reset, an abort), which would escape the cancelled scope
        await anyio.lowlevel.checkpoint_if_cancelled()
        if failure is not None:
            raise failure
        return outcome[0]
