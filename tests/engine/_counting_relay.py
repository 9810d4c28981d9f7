"""A TCP relay in front of a server that counts the object reads clients send through it."""

from __future__ import annotations

import asyncio
import re
import threading

#: A request line reading an object (not a bucket listing, which carries a query).
_OBJECT_GET = re.compile(rb"^GET /([^?\s]+/[^?\s]+) HTTP/1\.[01]\r$", re.MULTILINE)


class CountingRelay:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.object_gets: list[str] = []
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, inspect: bool
    ) -> None:
        try:
            while data := await reader.read(1 << 16):
                if inspect:
                    self.object_gets.extend(m.decode() for m in _OBJECT_GET.findall(data))
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        await asyncio.gather(
            self._pipe(reader, up_writer, True), self._pipe(up_reader, writer, False)
        )

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
