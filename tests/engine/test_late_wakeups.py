"""A receive on a worker socket cancelled in the turn the socket became readable: anyio's
readiness callback then completes a cancelled future, and the loop would log an ERROR."""

from __future__ import annotations

import asyncio
import logging
import socket

import anyio
import pytest
from anyio._backends._asyncio import UNIXSocketStream

from modelaudit.engine.late_wakeups import ignore_late_wakeups


def _race(use_uvloop: bool, quiet: bool, yield_first: bool) -> list[str]:
    """The race as a run meets it; returns what the loop logged as errors."""
    seen: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    catch = Catch(logging.ERROR)
    log = logging.getLogger("asyncio")
    log.addHandler(catch)

    async def main() -> None:
        if quiet:
            ignore_late_wakeups()
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)
            stream = UNIXSocketStream(a)
            task = asyncio.ensure_future(stream.receive())
            await asyncio.sleep(0.01)
            b.send(b"x")
            if yield_first:
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.sleep(0.05)
            # what the cancelled receive did not read is still there
            assert a.recv(1) == b"x"

    try:
        anyio.run(main, backend_options={"use_uvloop": use_uvloop})
    finally:
        log.removeHandler(catch)
    return seen


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_a_cancelled_receive_leaves_no_error_on_a_loop_we_own(use_uvloop: bool) -> None:
    # The race is real on this loop (one of the two orders shows it) ...
    loud = _race(use_uvloop, False, True) + _race(use_uvloop, False, False)
    assert any("set_result" in m for m in loud), loud
    # ... and the handler keeps it out of the log, in both orders.
    assert _race(use_uvloop, True, True) + _race(use_uvloop, True, False) == []


def test_other_loop_errors_still_reach_the_log() -> None:
    seen: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    catch = Catch(logging.ERROR)
    logging.getLogger("asyncio").addHandler(catch)

    def boom() -> None:
        raise RuntimeError("a real callback failure")

    async def main() -> None:
        ignore_late_wakeups()
        asyncio.get_running_loop().call_soon(boom)
        await asyncio.sleep(0.01)

    try:
        anyio.run(main)
    finally:
        logging.getLogger("asyncio").removeHandler(catch)
    assert any("boom" in m or "Exception in callback" in m for m in seen), seen
