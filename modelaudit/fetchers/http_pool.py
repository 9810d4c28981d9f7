"""Kept-alive `http.client` connections of one HTTP reader, for its rounds of ranged reads.

A walk reads hundreds of small ranges of one object, dozens at once. A connection per read
costs a handshake (TCP, TLS) on both ends, and the server a thread or a socket each; a
connection whose response was read to its end is given back here instead, by origin (the
object's own and its remembered redirect target), and the next read takes it. A server may
close a kept connection whenever it likes: the reader sends a read that failed on one again
on a fresh connection (`HttpReader._request_blocking`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .http_connect import StoppableHTTPConnection

Origin = tuple[str, str, int | None]

#: Idle connections kept per origin: as many as a walk's round has in flight.
KEEP_PER_ORIGIN = 128


def origin_of(conn: StoppableHTTPConnection) -> Origin:
    """The origin `conn` talks to, as `http.origin` spells a URL's."""
    import http.client

    scheme = "https" if isinstance(conn, http.client.HTTPSConnection) else "http"
    return scheme, conn.host.lower(), conn.port


class KeptConnections:
    """Idle connections by origin; threads take and give them under one lock."""

    def __init__(self, limit: int = KEEP_PER_ORIGIN) -> None:
        self._idle: dict[Origin, list[StoppableHTTPConnection]] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def take(self, key: Origin) -> StoppableHTTPConnection | None:
        """An idle connection to `key`, the most recently used (the likeliest still open)."""
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def give(self, conn: StoppableHTTPConnection) -> None:
        """`conn`, its last response read to the end, for the next request (closed when
        its origin already keeps as many)."""
        if conn.sock is not None:
            with self._lock:
                idle = self._idle.setdefault(origin_of(conn), [])
                if len(idle) < self._limit:
                    idle.append(conn)
                    return
        conn.close()

    def idle(self) -> int:
        with self._lock:
            return sum(len(conns) for conns in self._idle.values())

    def close(self) -> None:
        """Close every idle connection (the reader is done with its object)."""
        with self._lock:
            conns = [conn for idle in self._idle.values() for conn in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()
