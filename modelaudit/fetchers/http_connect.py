"""`http.client` connections whose connect a stop ends at once, and that gives up in 15 s.

http.client connects with `socket.create_connection`, whose socket exists only inside that
call: nothing another thread does reaches it, so a stop (a cancelled scan, `--timeout`, a
failed read of the round) waited for the connect to give up, after the 60 s that bound
reads. Here the socket is made first, where `abort` finds it, and connected without
blocking, waited for in short slices (on Linux the abort's shutdown ends the wait at once,
elsewhere the next slice does). A connect bound as httpx's (`CONNECT_TIMEOUT`, the TLS
handshake included) fails as `ConnectTimeout`, a transient failure retried like a reset,
naming the host and port. Names are resolved by `hostnames.addresses`: one lookup per host
shared by every connect and kept a short while, waited for in slices, so a stop meanwhile
ends the connect at once and a lookup slower than the bound is a `ConnectTimeout` too.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import select
import socket
import threading
import time
from typing import Any

from .base import ShownFailure
from .hostnames import addresses as host_addresses

#: Seconds a connect may take, TCP and TLS together (httpx's connect timeout).
CONNECT_TIMEOUT = 15.0
#: Connects that time out before a request gives up: a host that let the bound pass twice
#: without answering is down or filtered, not busy (five tries took 75 s and more).
CONNECT_ATTEMPTS = 2
#: Seconds between two looks at the stop while a connect is pending.
SLICE = 0.1

_PENDING = (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY)


class ConnectTimeout(ShownFailure, TimeoutError):
    """No connection within `CONNECT_TIMEOUT`."""

    attempts = CONNECT_ATTEMPTS


class StoppableHTTPConnection(http.client.HTTPConnection):
    """An `http.client` connection that `abort` unblocks from another thread, from the
    moment it starts connecting; once connected, its socket has the connection's timeout."""

    def __init__(
        self, host: str, port: int | None = None, *, timeout: float = 60.0, **kwargs: Any
    ) -> None:
        super().__init__(host, port, timeout=timeout, **kwargs)
        self._stopped = False
        #: the socket being connected (the TLS handshake included), for `abort`
        self._pending: socket.socket | None = None
        #: (`abort` never shuts a socket down as `connect` closes it: its number may be reused)
        self._pending_lock = threading.Lock()
        # (http.client's own hook for how `connect` makes its socket)
        self._create_connection = self._connect_socket

    def abort(self) -> None:
        """End what this connection blocks in, from another thread: a connect at once
        (and any later one), a send or a read."""
        self._stopped = True
        with self._pending_lock:
            for sock in (self._pending, self.sock):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    def connect(self) -> None:
        try:
            super().connect()
        except ConnectTimeout:
            raise
        except OSError as exc:
            if self._stopped:
                raise self._aborted() from None
            if isinstance(exc, TimeoutError):
                # (the TLS handshake, which had what the TCP connect left of the bound)
                raise ConnectTimeout(self._no_connection()) from None
            raise
        finally:
            self._let_go()
        self.sock.settimeout(self.timeout)

    def _let_go(self) -> None:
        """The connect is over: `abort` reaches the connection through `sock` alone."""
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is not None and pending is not self.sock:
            pending.close()

    def _no_connection(self) -> str:
        return f"no connection to {self.host}:{self.port} within {CONNECT_TIMEOUT:g} s"

    def _connect_socket(
        self,
        address: tuple[str, int],
        timeout: float | None = None,
        source_address: tuple[str, int] | None = None,
    ) -> socket.socket:
        """`socket.create_connection`, each address in turn, stoppable: the addresses
        left share what remains of the bound, so one that drops every packet leaves the
        others time. The socket returned has what remains for the TLS handshake."""
        host, port = address
        deadline = time.monotonic() + CONNECT_TIMEOUT
        addresses = host_addresses(
            host,
            port,
            lambda: self._stopped,
            deadline,
            self._aborted,
            lambda: ConnectTimeout(self._no_connection()),
        )
        error: OSError | None = None
        for i, (family, kind, proto, _name, sockaddr) in enumerate(addresses):
            sock = socket.socket(family, kind, proto)
            self._pending = sock
            try:
                if source_address:
                    sock.bind(source_address)
                share = (deadline - time.monotonic()) / (len(addresses) - i)
                self._connect_one(sock, sockaddr, time.monotonic() + share)
                sock.settimeout(max(deadline - time.monotonic(), SLICE))
                return sock
            except OSError as exc:
                with self._pending_lock:
                    self._pending = None
                    sock.close()
                if self._stopped:
                    raise
                error = exc
        if error is None:
            raise OSError(f"getaddrinfo gave no address for {host}:{port}")
        raise error

    def _connect_one(self, sock: socket.socket, sockaddr: Any, until: float) -> None:
        sock.setblocking(False)
        if self._stopped:
            raise self._aborted()
        err = sock.connect_ex(sockaddr)
        while err in _PENDING:
            if self._stopped:
                raise self._aborted()
            now = time.monotonic()
            if now >= until:
                raise ConnectTimeout(self._no_connection())
            if _writable(sock, min(SLICE, until - now)):
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if self._stopped:
            raise self._aborted()
        if err:
            raise OSError(err, os.strerror(err))

    def _aborted(self) -> ConnectionAbortedError:
        return ConnectionAbortedError(f"connecting to {self.host}:{self.port}: stopped")


class StoppableHTTPSConnection(StoppableHTTPConnection, http.client.HTTPSConnection):
    """The same over TLS: http.client wraps the socket once connected (server_hostname
    set), within what the connect left of the bound."""

    def _connect_socket(
        self,
        address: tuple[str, int],
        timeout: float | None = None,
        source_address: tuple[str, int] | None = None,
    ) -> socket.socket:
        sock = super()._connect_socket(address, timeout, source_address)
        # `wrap_socket` takes the socket's number over (the socket `abort` would find is
        # left without one) before its handshake: a duplicate keeps the connection within
        # reach until the handshake is over
        with self._pending_lock:
            self._pending = sock.dup()
        return sock


def _writable(sock: socket.socket, seconds: float) -> bool:
    """Whether `sock` became writable (its connect ended, for better or worse) in time."""
    if hasattr(select, "poll"):
        poll = select.poll()
        poll.register(sock, select.POLLOUT | select.POLLERR | select.POLLHUP)
        return bool(poll.poll(seconds * 1000))
    _, writable, failed = select.select([], [sock], [sock], seconds)
    return bool(writable or failed)
