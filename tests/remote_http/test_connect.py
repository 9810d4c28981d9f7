"""A connect that never completes (issue 13): a stop ends it at once, and it gives up after
`http_connect.CONNECT_TIMEOUT` rather than the reads' 60 s. The connects go to a real
loopback port that drops them (`black_hole`)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

import modelaudit
from modelaudit.fetchers import backoff, http_connect
from modelaudit.fetchers.http_connect import (
    ConnectTimeout,
    StoppableHTTPConnection,
    StoppableHTTPSConnection,
)
from modelaudit.findings import FileStatus
from tests.remote_http._remote_http_servers import (
    Blob,
    Handler,
    Reply,
    Server,
    onnx_with_tensors,
    pin_link,
    serve_blob,
)

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/net/tcp"), reason="counts pending connects in /proc/net/tcp"
)


@contextmanager
def black_hole() -> Iterator[int]:
    """A loopback port whose connects hang: a listener with a backlog of 0 whose accept
    queue one connection fills (Linux then drops every SYN that follows)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    queued = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        with socket.socket() as probe, pytest.raises(TimeoutError):
            probe.settimeout(0.5)
            probe.connect(("127.0.0.1", port))
        yield port
    finally:
        queued.close()
        listener.close()


def connecting(port: int) -> int:
    """Sockets of this machine with a connect to 127.0.0.1:`port` pending (SYN_SENT)."""
    with open("/proc/net/tcp", encoding="ascii") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sum(1 for row in rows if row[2] == f"0100007F:{port:04X}" and row[3] == "02")


def redirecting_to(hole: int, blob: Blob) -> Server:
    """A server that answers HEAD itself and sends every GET to the black hole."""

    def route(h: Handler) -> Reply:
        if h.command == "HEAD":
            return serve_blob(h, blob)
        return 302, {"Location": f"http://127.0.0.1:{hole}{h.path}"}, b""

    return Server(route)


def _reading_threads() -> list[str]:
    return [
        t.name for t in threading.enumerate() if t.name in ("modelaudit-round", "modelaudit-fill")
    ]


async def _scan_cancelled_while_connecting(url: str, hole: int) -> float:
    """Seconds the scan of `url` takes to return once cancelled, which happens as soon as
    one of its connects to the black hole is pending."""
    began = 0.0
    async with anyio.create_task_group() as tg:
        tg.start_soon(modelaudit.scan, url)
        with anyio.fail_after(30):
            while not connecting(hole):
                await anyio.sleep(0.01)
        await anyio.sleep(0.2)
        began = time.monotonic()
        tg.cancel_scope.cancel()
    return time.monotonic() - began


def _none_left(hole: int) -> None:
    """No reading thread and no connect to the black hole outlive the scan (a thread that
    had to wait out its connect would, up to 60 s)."""
    deadline = time.monotonic() + 2
    while (connecting(hole) or _reading_threads()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert connecting(hole) == 0
    assert _reading_threads() == []


@pytest.fixture(scope="module")
def model() -> bytes:
    return onnx_with_tensors(64, 16384)


def test_a_scan_cancelled_while_its_reads_connect_ends_at_once(model: bytes) -> None:
    """The object's reads are redirected to a port that never completes a connect; the
    scan, cancelled meanwhile, returns at once and leaves no thread or connect behind
    (before: the stop could not reach a socket still connecting, and the round waited for
    it: 60 s)."""
    with black_hole() as hole:
        server = redirecting_to(hole, Blob(model))
        try:
            pin_link(server.url, 0.05, 5e6)
            took = anyio.run(_scan_cancelled_while_connecting, f"{server.url}/m.onnx", hole)
            assert took < 10, took
            _none_left(hole)
        finally:
            server.stop()


def test_a_scan_cancelled_while_its_first_reads_connect_ends_at_once(model: bytes) -> None:
    """The same for a listing's first reads (one target sized by them, not by a HEAD):
    their threads are stopped too, not left connecting after the scan returned."""
    with black_hole() as hole:
        server = redirecting_to(hole, Blob(model))
        try:
            took = anyio.run(_scan_cancelled_while_connecting, f"{server.url}/m.safetensors", hole)
            assert took < 10, took
            _none_left(hole)
        finally:
            server.stop()


async def test_a_fill_cancelled_while_it_connects_ends_at_once(tmp_path: Path) -> None:
    """A whole-object fill (engine/fill.py) whose one request is still connecting: its
    cancellation stops it there and joins its threads at once (before: 60 s)."""
    from modelaudit.engine.fill import fill
    from modelaudit.fetchers.http import HttpClient, HttpReader

    with black_hole() as hole:
        client = HttpClient()
        reader = HttpReader(client, f"http://127.0.0.1:{hole}/m.bin", "m.bin", size=1 << 20)
        fd = os.open(tmp_path / "copy", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            began = time.monotonic()
            with anyio.move_on_after(0.5) as scope:
                await fill(reader, fd, 0, None, "test://m.bin")
            assert scope.cancelled_caught
        finally:
            os.close(fd)
            await reader.aclose()
            await client.aclose()
        assert time.monotonic() - began < 5
        _none_left(hole)


async def test_a_connect_that_never_completes_fails_the_file_naming_host_and_port(
    model: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a cancel, each connect gives up after the connect bound (not the reads'
    60 s) and is retried as any transient failure; the file is an error naming where it
    could not connect."""
    monkeypatch.setattr(http_connect, "CONNECT_TIMEOUT", 0.2)
    monkeypatch.setattr(backoff, "BASE_DELAY", 0.01)
    with black_hole() as hole:
        server = redirecting_to(hole, Blob(model))
        try:
            pin_link(server.url, 0.05, 5e6)
            with anyio.fail_after(30):
                report = await modelaudit.scan(f"{server.url}/m.onnx")
        finally:
            server.stop()
        (file,) = report.files
        assert file.status is FileStatus.ERROR, file.status
        reason = file.status_reason or ""
        assert f"no connection to 127.0.0.1:{hole} within 0.2 s" in reason, reason
        # (a host that let the bound pass twice is down or filtered: no third try)
        assert f"after {http_connect.CONNECT_ATTEMPTS} attempts" in reason, reason


async def test_a_listing_whose_host_never_answers_gives_up_after_two_connects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The listing's own requests (httpx: a HEAD when the call has several targets) give up
    after `CONNECT_ATTEMPTS` connects that timed out, not `backoff.ATTEMPTS` (five tries of
    15 s held a run 75 s and more on a host that drops its connects)."""
    monkeypatch.setattr(http_connect, "CONNECT_TIMEOUT", 0.2)
    monkeypatch.setattr(backoff, "BASE_DELAY", 0.01)
    with black_hole() as hole:
        targets = [f"http://127.0.0.1:{hole}/a.pkl", f"http://127.0.0.1:{hole}/b.pkl"]
        with anyio.fail_after(30):
            report = await modelaudit.scan(targets)
    errors = {e["target"]: e["error"] for e in report.target_errors}
    assert set(errors) == set(targets), report.target_errors
    for error in errors.values():
        assert f"no connection within 0.2 s after {http_connect.CONNECT_ATTEMPTS} attempts" in (
            error
        ), error


# -- the connection itself ------------------------------------------------------------


def test_an_abort_ends_a_pending_connect_at_once() -> None:
    with black_hole() as hole:
        conn = StoppableHTTPConnection("127.0.0.1", hole)
        threading.Timer(0.3, conn.abort).start()
        began = time.monotonic()
        with pytest.raises(ConnectionAbortedError, match=f"127.0.0.1:{hole}"):
            conn.connect()
        assert time.monotonic() - began < 5
        assert connecting(hole) == 0


async def test_a_request_in_a_thread_cancelled_ends_in_the_cancellation() -> None:
    """`Stopper.in_thread` (a listing's first reads): a cancel stops the connect and waits
    for the thread, and the caller's scope then ends in its cancellation, not in the
    ConnectionAbortedError the stop made the connect raise (before, that escaped the
    cancelled scope as if the request had failed)."""
    from modelaudit.fetchers.stopper import Stopper

    with black_hole() as hole:
        conn = StoppableHTTPConnection("127.0.0.1", hole)
        stopper = Stopper("m.bin")
        stopper.hold(conn, conn.abort)
        began = time.monotonic()
        with anyio.move_on_after(0.3) as scope:
            await stopper.in_thread(conn.connect)
        assert scope.cancelled_caught
        assert stopper.stopped()
        assert time.monotonic() - began < 5
        assert connecting(hole) == 0


def test_a_connect_gives_up_after_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_connect, "CONNECT_TIMEOUT", 0.3)
    with black_hole() as hole:
        conn = StoppableHTTPConnection("127.0.0.1", hole)
        began = time.monotonic()
        with pytest.raises(ConnectTimeout, match=f"no connection to 127.0.0.1:{hole} within"):
            conn.connect()
        assert 0.25 < time.monotonic() - began < 5
        assert isinstance(ConnectTimeout("x"), TimeoutError)


def test_a_tls_handshake_never_answered_counts_against_the_connect_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A listener that takes the connection (the kernel's accept queue) but never answers
    the TLS hello: the handshake shares the connect's bound."""
    import ssl

    monkeypatch.setattr(http_connect, "CONNECT_TIMEOUT", 0.3)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        conn = StoppableHTTPSConnection("127.0.0.1", port, context=ssl.create_default_context())
        began = time.monotonic()
        with pytest.raises(ConnectTimeout, match=f"127.0.0.1:{port}"):
            conn.connect()
        assert time.monotonic() - began < 5
        conn.close()
    finally:
        listener.close()


def test_an_abort_ends_a_tls_handshake_at_once() -> None:
    """A stop while the TLS handshake waits for a server that took the connection but never
    answers its hello: `wrap_socket` has taken the socket's number over from the socket the
    abort would find, and before, the abort reached nothing (the handshake ran out the
    connect bound: 15 s)."""
    import ssl

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    context = ssl.create_default_context()
    fds = len(os.listdir("/proc/self/fd"))
    try:
        conn = StoppableHTTPSConnection("127.0.0.1", port, context=context)
        threading.Timer(0.3, conn.abort).start()
        began = time.monotonic()
        with pytest.raises(ConnectionAbortedError, match=f"127.0.0.1:{port}: stopped"):
            conn.connect()
        assert time.monotonic() - began < 5
        conn.close()
        # (the duplicate that kept the connection within reach is closed too)
        assert len(os.listdir("/proc/self/fd")) == fds
    finally:
        listener.close()


def test_a_connected_socket_keeps_the_reads_timeout() -> None:
    server = Server(lambda h: (200, {}, b"ok"))
    try:
        conn = StoppableHTTPConnection("127.0.0.1", server.server_address[1], timeout=60.0)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"ok"
        assert conn.sock is not None and conn.sock.gettimeout() == 60.0
        conn.close()
    finally:
        server.stop()


def test_each_address_is_tried_in_turn_sharing_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name with two addresses, the first dropping every connect: the second still gets
    its share of the bound and connects (as `socket.create_connection` tries each in turn).
    The resolver's answer is fixed here; both addresses are real loopback ports."""
    monkeypatch.setattr(http_connect, "CONNECT_TIMEOUT", 1.0)
    server = Server(lambda h: (200, {}, b"ok"))
    try:
        with black_hole() as hole:
            good = server.server_address[1]
            answer = [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))
                for port in (hole, good)
            ]
            monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answer)
            conn = StoppableHTTPConnection("two.example", 80)
            began = time.monotonic()
            conn.request("GET", "/")
            assert conn.getresponse().read() == b"ok"
            assert 0.4 < time.monotonic() - began < 5
            conn.close()
    finally:
        server.stop()


def _answer_once(listener: socket.socket, body: bytes, tls: Any = None) -> threading.Thread:
    """A thread that takes one connection off `listener` (over TLS with `tls`, an
    `ssl.SSLContext`) and answers its request with 200 and `body`."""

    def serve() -> None:
        raw, _ = listener.accept()
        with tls.wrap_socket(raw, server_side=True) if tls is not None else raw as sock:
            sock.recv(65536)
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_an_ipv6_address_connects() -> None:
    try:
        listener = socket.socket(socket.AF_INET6)
        listener.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    listener.listen(8)
    try:
        thread = _answer_once(listener, b"six")
        conn = StoppableHTTPConnection("::1", listener.getsockname()[1])
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"six"
        assert conn.sock is not None and conn.sock.family == socket.AF_INET6
        conn.close()
        thread.join(5)
    finally:
        listener.close()


def test_tls_is_wrapped_after_the_connect_for_the_host_named(tmp_path: Path) -> None:
    """A real TLS server with a certificate for localhost: the handshake checks the name
    (server_hostname), and the connection then reads with its own timeout."""
    import ssl

    cert, key = _self_signed(tmp_path, "localhost")
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        thread = _answer_once(listener, b"tls", served)
        trusting = ssl.create_default_context(cafile=str(cert))
        conn = StoppableHTTPSConnection(
            "localhost", listener.getsockname()[1], timeout=60.0, context=trusting
        )
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"tls"
        assert isinstance(conn.sock, ssl.SSLSocket)
        assert conn.sock.server_hostname == "localhost"
        assert conn.sock.gettimeout() == 60.0
        conn.close()
        thread.join(5)
    finally:
        listener.close()


def _self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
