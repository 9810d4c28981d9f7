"""A TCP relay in front of a server that counts the object reads clients send through it."""

from __future__ import annotations

import re

from tests.remote_http._relay import Relay

#: A request line reading an object (not a bucket listing, which carries a query).
_OBJECT_GET = re.compile(rb"^GET /([^?\s]+/[^?\s]+) HTTP/1\.[01]\r$", re.MULTILINE)


class CountingRelay(Relay):
    def __init__(self, upstream_port: int) -> None:
        self.object_gets: list[str] = []
        super().__init__(upstream_port)

    def observe(self, data: bytes, upstream: bool) -> None:
        if upstream:
            self.object_gets.extend(m.decode() for m in _OBJECT_GET.findall(data))
