"""Blocking calls run in daemon threads that a deadline may abandon.

A scanner run in the parent (one of the caller's that no worker can import, or any under
`use_processes=False`) cannot be interrupted: at its deadline the call moves on and the thread
is left to finish. anyio's worker threads are not daemons, so the interpreter waited for such
a thread at exit: a script whose scanner ignored a 1 s deadline still took the scanner's whole
time to end. A daemon thread lets the process exit once the run has reported.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

T = TypeVar("T")


async def run_abandonable(
    func: Callable[[], T], limiter: anyio.CapacityLimiter, name: str = "modelaudit-scan"
) -> T:
    """`func()` in a new daemon thread, holding a token of `limiter` while awaited.

    Cancelling the caller abandons the thread (and gives the token back at once, as
    `anyio.to_thread.run_sync(abandon_on_cancel=True)` does)."""
    done = anyio.Event()
    outcome: list[tuple[bool, object]] = []
    token = anyio.lowlevel.current_token()

    def target() -> None:
        try:
            outcome.append((True, func()))
        except BaseException as exc:
            outcome.append((False, exc))
        with contextlib.suppress(Exception):
            # Fails once the loop is gone: nobody waits for this result any more.
            anyio.from_thread.run_sync(done.set, token=token)

    async with limiter:
        threading.Thread(target=target, name=name, daemon=True).start()
        await done.wait()
    ok, value = outcome[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]
