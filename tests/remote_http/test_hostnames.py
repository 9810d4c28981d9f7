"""Name resolution for blocking connects (fetchers/hostnames.py): one lookup per host shared by
parallel connects, and a lookup that hangs neither outlives a stop nor the connect bound.

The machine has no DNS server to stall, so a hanging resolver is `socket.getaddrinfo` held on
an event for one made-up name; every other name resolves for real (`localhost` from the
hosts file) and the connects go to a real loopback server."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from modelaudit.fetchers import hostnames, http_connect
from modelaudit.fetchers.http_connect import ConnectTimeout, StoppableHTTPConnection

HANGING = "resolver-hangs.test"


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[str], threading.Event]]:
    """Every getaddrinfo call's host, in order; `HANGING` blocks until the event is set."""
    real = socket.getaddrinfo
    calls: list[str] = []
    release = threading.Event()

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(host)
        if host == HANGING:
            release.wait(30)
            raise socket.gaierror(socket.EAI_NONAME, "no such name")
        return real(host, *args, **kwargs)

    hostnames.forget()
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    try:
        yield calls, release
    finally:
        release.set()
        hostnames.forget()


@pytest.fixture
def server() -> Iterator[int]:
    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def _connect_in_thread(conn: StoppableHTTPConnection) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        started = time.monotonic()
        try:
            conn.connect()
            out.append(None)
        except BaseException as exc:
            out.append(exc)
        out.append(time.monotonic() - started)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_a_stop_ends_a_connect_waiting_for_its_name(
    lookups: tuple[list[str], threading.Event],
) -> None:
    conn = StoppableHTTPConnection(HANGING, 80)
    thread, out = _connect_in_thread(conn)
    time.sleep(0.3)
    conn.abort()
    thread.join(5)
    assert not thread.is_alive(), "the connect waited for the resolver"
    error, seconds = out
    assert isinstance(error, ConnectionAbortedError), error
    assert seconds < 2


def test_a_lookup_slower_than_the_bound_is_a_connect_timeout(
    lookups: tuple[list[str], threading.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_connect, "CONNECT_TIMEOUT", 0.5)
    thread, out = _connect_in_thread(StoppableHTTPConnection(HANGING, 80))
    thread.join(5)
    assert not thread.is_alive(), "the connect waited for the resolver"
    error, seconds = out
    assert isinstance(error, ConnectTimeout), error
    assert f"{HANGING}:80" in str(error)
    assert seconds < 2


def test_parallel_connects_to_one_host_share_one_lookup(
    lookups: tuple[list[str], threading.Event], server: int
) -> None:
    calls, _ = lookups
    conns = [StoppableHTTPConnection("localhost", server) for _ in range(32)]
    started = [_connect_in_thread(conn) for conn in conns]
    for thread, _ in started:
        thread.join(10)
    try:
        assert [out[0] for _, out in started] == [None] * 32
        assert calls.count("localhost") == 1
        # ... and the answer is kept for the next connects
        again = StoppableHTTPConnection("localhost", server)
        again.connect()
        again.close()
        assert calls.count("localhost") == 1
    finally:
        for conn in conns:
            conn.close()


def test_a_failed_lookup_is_asked_again(lookups: tuple[list[str], threading.Event]) -> None:
    calls, release = lookups
    release.set()
    for _ in range(2):
        with pytest.raises(OSError):
            StoppableHTTPConnection(HANGING, 80).connect()
    assert calls.count(HANGING) == 2


def test_an_address_literal_needs_no_lookup_thread(
    lookups: tuple[list[str], threading.Event], server: int
) -> None:
    before = {t.name for t in threading.enumerate()}
    conn = StoppableHTTPConnection("127.0.0.1", server)
    conn.connect()
    conn.close()
    assert "modelaudit-resolve" not in {t.name for t in threading.enumerate()} - before


def test_answers_past_their_time_are_dropped(
    lookups: tuple[list[str], threading.Event], monkeypatch: pytest.MonkeyPatch, server: int
) -> None:
    """A long-lived process meets many hosts: a new lookup drops the answers that expired."""
    _, release = lookups
    release.set()
    conn = StoppableHTTPConnection("localhost", server)
    conn.connect()
    conn.close()
    assert ("localhost", server) in hostnames._lookups
    monkeypatch.setattr(hostnames, "KEEP", -1.0)
    with pytest.raises(OSError):
        StoppableHTTPConnection(HANGING, 80).connect()
    assert ("localhost", server) not in hostnames._lookups
