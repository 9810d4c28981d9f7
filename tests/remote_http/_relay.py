"""A real TCP relay on 127.0.0.1 in front of a test server: adds latency, counts, cuts.

Every byte crosses a real socket pair. Latency is a delay line (each piece is forwarded
`latency` seconds after it arrived, in both directions, without slowing the bytes behind it),
so a request costs a round trip more while bandwidth stays the server's. `cuts` closes the
n-th server-to-client connection after a given number of bytes, as a broken network would.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque


class Relay:
    def __init__(self, upstream_port: int, latency: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.latency = latency
        self.to_client = 0
        self.to_server = 0
        self.connections = 0
        #: bytes after which to cut server-to-client streams, one entry per connection
        self.cuts: deque[int] = deque()
        self.port = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("relay did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        # Pending pipes are ended here, on a live loop: left to the garbage collector they
        # would raise into whatever the test process runs next.
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def stop(self) -> None:
        def close() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(close)
        self._thread.join(5)

    def observe(self, data: bytes, upstream: bool) -> None:
        """Called with every piece that arrives, before it is delayed and forwarded."""

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: bool,
        cut: int | None,
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def forward() -> None:
            sent = 0
            try:
                while True:
                    due, data = await queue.get()
                    if not data:
                        break
                    wait = due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    if cut is not None and sent + len(data) >= cut:
                        writer.write(data[: cut - sent])
                        await writer.drain()
                        writer.transport.abort()
                        return
                    sent += len(data)
                    with self._lock:
                        if upstream:
                            self.to_server += len(data)
                        else:
                            self.to_client += len(data)
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        task = asyncio.ensure_future(forward())
        try:
            while data := await reader.read(1 << 16):
                self.observe(data, upstream)
                queue.put_nowait((time.monotonic() + self.latency, data))
        except OSError:
            pass
        queue.put_nowait((0.0, b""))
        await task

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.connections += 1
            cut = self.cuts.popleft() if self.cuts else None
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer, True, None),
            self._pipe(up_reader, writer, False, cut),
        )
