"""The parent's end of a worker's socket (engine/worker_socket.py): a receive cancelled in the
turn the socket became readable logs nothing on any loop, a service's own included, and
loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
from anyio._backends._asyncio import UNIXSocketStream

from modelaudit.engine.worker_socket import WorkerSocket, worker_stream


@contextlib.contextmanager
def _loop_errors() -> Iterator[list[str]]:
    """What the asyncio logger reports as errors meanwhile (a loop with no handler of ours)."""
    seen: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    catch = Catch(logging.ERROR)
    log = logging.getLogger("asyncio")
    log.addHandler(catch)
    try:
        yield seen
    finally:
        log.removeHandler(catch)


def _race(make: Callable[[socket.socket], Any], use_uvloop: bool, yield_first: bool) -> list[str]:
    """The race as a run meets it, on a loop with no handler of ours; returns what the loop
    logged as errors."""

    async def main() -> None:
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)
            stream = make(a)
            task = asyncio.ensure_future(stream.receive())
            await asyncio.sleep(0.01)
            b.send(b"x")
            if yield_first:
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.sleep(0.05)
            # what the cancelled receive did not read is still there
            assert a.recv(1) == b"x"

    with _loop_errors() as seen:
        anyio.run(main, backend_options={"use_uvloop": use_uvloop})
    return seen


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_a_cancelled_receive_logs_nothing(use_uvloop: bool) -> None:
    # The race is real (anyio's own stream shows it in one of the two orders) ...
    loud = _race(UNIXSocketStream, use_uvloop, True) + _race(UNIXSocketStream, use_uvloop, False)
    assert any("set_result" in m for m in loud), loud
    # ... and the worker's socket meets it in both orders without a word.
    quiet = _race(WorkerSocket, use_uvloop, True) + _race(WorkerSocket, use_uvloop, False)
    assert quiet == []


def test_bytes_both_ways_and_the_end_of_the_stream() -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        stream = await worker_stream(a)
        assert isinstance(stream, WorkerSocket)
        with b:
            big = bytes(range(256)) * 8192  # 2 MiB: more than the socket buffers hold
            got = bytearray()

            async def drain() -> None:
                while len(got) < len(big):
                    got.extend(await anyio.to_thread.run_sync(b.recv, 1 << 20))

            async with anyio.create_task_group() as tg:
                tg.start_soon(drain)
                await stream.send(big)
            assert bytes(got) == big
            b.sendall(b"reply")
            assert await stream.receive() == b"reply"
            b.shutdown(socket.SHUT_WR)
            with pytest.raises(anyio.EndOfStream):
                await stream.receive()
        await stream.aclose()

    anyio.run(main)


def test_closing_wakes_a_waiting_receive_and_lets_go_of_the_socket() -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        stream = WorkerSocket(a)
        fd = a.fileno()
        with b:
            outcome: list[type[BaseException]] = []

            async def receive() -> None:
                try:
                    await stream.receive()
                except anyio.ClosedResourceError as exc:
                    outcome.append(type(exc))

            async with anyio.create_task_group() as tg:
                tg.start_soon(receive)
                await asyncio.sleep(0.01)
                await stream.aclose()
            assert outcome == [anyio.ClosedResourceError]
            assert a.fileno() == -1
            # The loop holds no reader for the number, which a new socket may take.
            c, d = socket.socketpair()
            with c, d:
                loop = asyncio.get_running_loop()
                if c.fileno() == fd:
                    assert not loop.remove_reader(fd)
                d.send(b"y")
                await asyncio.sleep(0.01)
                assert c.recv(1) == b"y"

    anyio.run(main)


def test_a_second_reader_or_writer_at_once_is_refused() -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        stream = WorkerSocket(a)
        with b:
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.receive)
                # more than the socket buffers hold: this send waits for the peer
                tg.start_soon(stream.send, bytes(8 << 20))
                await asyncio.sleep(0.01)
                with pytest.raises(anyio.BusyResourceError):
                    await stream.receive()
                # a frame of another sender would land in the middle of the one going out
                with pytest.raises(anyio.BusyResourceError):
                    await stream.send(b"frame")
                tg.cancel_scope.cancel()
        await stream.aclose()

    anyio.run(main)


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_closing_the_fork_server_link_during_a_fork_logs_nothing(use_uvloop: bool) -> None:
    """The pool boots a worker ahead (a fork in flight) when a run ends at once (a missing
    target): the fork server's reply arrives in the turn the launcher closes its control
    socket. anyio's stream completed the pending receive on close and its reader then fired
    on that finished future: "Exception in callback Future.set_result" on the CLI's stderr
    (about 1 run in 15). Closing now lets the fork in flight take its reply first."""
    from modelaudit.engine.launch import ForkServerLauncher
    from modelaudit.engine.protocol import ProtocolError, frame

    async def main() -> None:
        ours, server = socket.socketpair()
        with server:
            launcher = ForkServerLauncher(early=(ours, 0))
            await launcher.start()
            failed: list[BaseException] = []

            async def fork() -> None:
                try:
                    await launcher.spawn()
                except ProtocolError as exc:
                    failed.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(fork)
                await anyio.sleep(0.05)
                assert server.recv(1 << 16)  # the fork request
                server.send(frame(("forked", 1, False)))  # a reply (without the socket)
                await launcher.aclose()
            await asyncio.sleep(0.05)
            assert failed, "the fork in flight was answered"

    with _loop_errors() as seen:
        anyio.run(main, backend_options={"use_uvloop": use_uvloop})
    assert not [m for m in seen if "set_result" in m], seen
