"""Host names resolved once per host and port for a short while, off the connecting thread.

A walk's round of ranged reads opens up to 128 connections to one origin at once. Each one
resolving the name itself asked the system resolver 128 times (with no caching resolver on
the machine, each is a DNS query), and `getaddrinfo` cannot be interrupted: a stop (a
cancelled scan, `--timeout`, a failed read of the round) waited for the resolver to give up
on its own. Here one lookup per host and port runs in a daemon thread; every connect that
needs it waits in short slices, looking at its stop and its deadline, and the answer is kept
for `KEEP` seconds. A failed lookup is not kept: the next connect asks again. An address
literal (`127.0.0.1`, `::1`) needs no lookup and is resolved in place.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

#: Seconds an answer is reused (a short TTL: a host moving to another address is seen soon).
KEEP = 30.0
#: Seconds between two looks at the stop while a lookup is pending.
SLICE = 0.1

AddrInfo = list[tuple[Any, ...]]


class _Lookup:
    """One lookup in flight or done, shared by every connect to the same host and port."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: AddrInfo = []
        self.error: OSError | None = None
        self.at = 0.0

    def run(self, host: str, port: int) -> None:
        try:
            self.answer = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except OSError as exc:
            self.error = exc
        except Exception as exc:  # (a malformed name: UnicodeError from the IDNA codec)
            self.error = OSError(f"cannot resolve {host!r}: {exc}")
        finally:
            self.at = time.monotonic()
            self.done.set()

    def stale(self, now: float) -> bool:
        return self.done.is_set() and (self.error is not None or now - self.at > KEEP)


_lock = threading.Lock()
_lookups: dict[tuple[str, int], _Lookup] = {}


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def addresses(
    host: str,
    port: int,
    stopped: Callable[[], bool],
    until: float,
    on_stop: Callable[[], BaseException],
    on_timeout: Callable[[], BaseException],
) -> AddrInfo:
    """`getaddrinfo(host, port)` for a stream socket, shared and kept (see the module's
    doc). Raises `on_stop()` as soon as `stopped()` says so and `on_timeout()` once
    `until` (time.monotonic) passes while the lookup is pending; the lookup itself goes on
    for the next connect."""
    if _literal(host):
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    key = (host, port)
    now = time.monotonic()
    with _lock:
        lookup = _lookups.get(key)
        if lookup is None or lookup.stale(now):
            # (a long-lived Scanner meets many hosts: answers past their time go)
            for old in [k for k, v in _lookups.items() if v.stale(now)]:
                del _lookups[old]
            lookup = _lookups[key] = _Lookup()
            threading.Thread(
                target=lookup.run, args=(host, port), name="modelaudit-resolve", daemon=True
            ).start()
    while not lookup.done.is_set():
        if stopped():
            raise on_stop()
        left = until - time.monotonic()
        if left <= 0:
            raise on_timeout()
        lookup.done.wait(min(SLICE, left))
    if lookup.error is not None:
        raise lookup.error
    return lookup.answer


def forget() -> None:
    """Drop every kept answer (tests; a process that knows its names moved)."""
    with _lock:
        _lookups.clear()
