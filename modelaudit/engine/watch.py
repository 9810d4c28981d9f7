"""Progress of work done in threads, reported from the event loop, and its stop on a cancel.

A fill (engine/fill.py) and a round of ranged reads (engine/rounds.py) move bytes in threads
that the event loop cannot interrupt: a task beside them reports what they moved every
`PROGRESS_EVERY` seconds and, when the scan is cancelled before they are done, stops them
(their sockets aborted), so the thread they run in returns.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

#: How often the event loop reports progress while threads move bytes.
PROGRESS_EVERY = 0.2


class Watch:
    """Reports `count()` to `on_bytes` by increments; calls `stop` when cancelled before
    `done` is set."""

    def __init__(
        self,
        count: Callable[[], int],
        on_bytes: Callable[[int], None] | None,
        stop: Callable[[], None],
    ) -> None:
        self.count = count
        self.on_bytes = on_bytes
        self.stop = stop
        #: the work ended by itself: a cancellation that follows stops nothing
        self.done = False
        self._reported = 0

    def report(self) -> None:
        now = self.count()
        if self.on_bytes is not None and now > self._reported:
            self.on_bytes(now - self._reported)
        self._reported = now

    async def run(self) -> None:
        try:
            while True:
                await anyio.sleep(PROGRESS_EVERY)
                self.report()
        except anyio.get_cancelled_exc_class():
            if not self.done:
                self.stop()
            raise
