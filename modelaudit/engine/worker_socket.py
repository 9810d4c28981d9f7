"""The parent's end of a forked worker's socket, as an anyio byte stream on asyncio.

anyio's own UNIX socket stream waits for readiness with `loop.add_reader(sock,
future.set_result, None)` and removes the reader in the future's done callback, one loop turn
later. A receive cancelled in the turn its socket became readable (a deadline, a cancelled
call, a worker given back) then has the reader fire on the cancelled future, and the loop
logs "Exception in callback Future.set_result" (InvalidStateError) as an ERROR: on the CLI's
stderr and, worse, in the log of every service whose loop runs a `Scanner`. Nothing was lost
(the bytes stay in the socket), but a service cannot tell that from a real failure.

Here the readiness callback completes only a future still pending, and the reader is removed
before the waiting task goes on, whatever ended the wait. Errors are anyio's: `EndOfStream`,
`BrokenResourceError`, `ClosedResourceError`, `BusyResourceError`.
"""

from __future__ import annotations

import asyncio
import socket

import anyio
from anyio.abc import ByteStream

__all__ = ["WorkerSocket", "worker_stream"]


async def worker_stream(sock: socket.socket) -> ByteStream:
    """A byte stream over a connected socket: `WorkerSocket` on asyncio (the engine's
    loop), anyio's own stream on any other backend."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        from anyio.abc import UNIXSocketStream

        return await UNIXSocketStream.from_socket(sock)
    return WorkerSocket(sock)


class WorkerSocket(ByteStream):
    """Receives and sends on a non-blocking socket, one reader and one writer at a time (a
    second at once is refused: `BusyResourceError`, as anyio's streams do)."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._fd = sock.fileno()
        self._reading: asyncio.Future[None] | None = None
        self._writing: asyncio.Future[None] | None = None
        self._receiving = self._sending = False
        self._closing = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await asyncio.sleep(0)  # a checkpoint, as every anyio receive is
        if self._receiving:
            raise anyio.BusyResourceError("reading from")
        self._receiving = True
        try:
            while True:
                if self._closing:
                    raise anyio.ClosedResourceError
                try:
                    data = self._sock.recv(max_bytes)
                except BlockingIOError:
                    await self._until_ready(True)
                except OSError as exc:
                    if self._closing:
                        raise anyio.ClosedResourceError from None
                    raise anyio.BrokenResourceError from exc
                else:
                    if not data:
                        raise anyio.EndOfStream
                    return data
        finally:
            self._receiving = False

    async def send(self, item: bytes) -> None:
        await asyncio.sleep(0)
        # (a second sender would put its bytes in the middle of a frame still going out)
        if self._sending:
            raise anyio.BusyResourceError("writing to")
        self._sending = True
        try:
            view = memoryview(item)
            while view:
                if self._closing:
                    raise anyio.ClosedResourceError
                try:
                    sent = self._sock.send(view)
                except BlockingIOError:
                    await self._until_ready(False)
                except OSError as exc:
                    if self._closing:
                        raise anyio.ClosedResourceError from None
                    raise anyio.BrokenResourceError from exc
                else:
                    view = view[sent:]
        finally:
            self._sending = False

    async def send_eof(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise anyio.BrokenResourceError from exc

    async def _until_ready(self, reading: bool) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        if reading:
            self._reading = future
            loop.add_reader(self._fd, wake)
        else:
            self._writing = future
            loop.add_writer(self._fd, wake)
        try:
            await future
        finally:
            # (aclose may have taken the registration away already)
            if reading and self._reading is future:
                self._reading = None
                loop.remove_reader(self._fd)
            elif not reading and self._writing is future:
                self._writing = None
                loop.remove_writer(self._fd)

    async def aclose(self) -> None:
        if not self._closing:
            self._closing = True
            loop = asyncio.get_running_loop()
            # Readers and writers go before the socket, whose number the system may reuse.
            for future, remove in (
                (self._reading, loop.remove_reader),
                (self._writing, loop.remove_writer),
            ):
                if future is not None:
                    remove(self._fd)
                    if not future.done():
                        future.set_result(None)
            self._reading = self._writing = None
            self._sock.close()
        await asyncio.sleep(0)
