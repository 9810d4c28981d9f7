"""Whole-object fills (engine/fill.py) against a real server: the bytes that land, the
requests that carried them, the digest taken in the same pass, and how a fill ends."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from modelaudit.engine import fill as fill_module
from modelaudit.engine.fill import fill
from modelaudit.fetchers import FetchError, ObjectTooLarge, TransientFetchError, backoff
from tests.remote_http._remote_http_servers import Blob, Server

Files = tuple[Server, dict[str, Blob], dict[str, Any]]
NAME = "big_evil.pkl"


@pytest.fixture(autouse=True)
def _small_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    # many buffers per object, so handing them round is exercised by a 300 kB blob
    monkeypatch.setattr(fill_module, "BUFFER", 16 * 1024)


async def _reader(url: str) -> Any:
    from modelaudit.fetchers import resolve

    source = resolve(url)
    [obj] = [o async for o in source.objects()]
    await source.aclose()
    return obj.reader


def _gets(server: Server) -> list[str]:
    return [r.headers.get("range", "") for r in server.requests if r.method == "GET"]


async def _fill_file(reader: Any, path: Path, **options: Any) -> fill_module.Filled:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return await fill(reader, fd, 0, reader.size, "test://object", **options)
    finally:
        os.close(fd)


async def test_a_fill_reads_a_plain_socket_and_hashes_as_it_writes(
    files_server: Files, tmp_path: Path
) -> None:
    server, blobs, _ = files_server
    data = blobs[NAME].data
    reader = await _reader(f"{server.url}/{NAME}")
    server.reset()
    hasher = hashlib.sha256()
    try:
        assert reader.blocking_fills()
        done = await _fill_file(reader, tmp_path / "copy", hasher=hasher)
    finally:
        await reader.aclose()
    assert (tmp_path / "copy").read_bytes() == data
    assert done.landed == done.hashed == len(data)
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    assert _gets(server) == [f"bytes=0-{len(data) - 1}"]
    assert not [t for t in threading.enumerate() if t.name == "modelaudit-fill"]


async def test_a_fill_only_hashes_when_given_no_file(files_server: Files) -> None:
    server, blobs, _ = files_server
    data = blobs[NAME].data
    reader = await _reader(f"{server.url}/{NAME}")
    server.reset()
    hasher = hashlib.sha256(data[:1000])
    try:
        done = await fill(reader, None, 1000, len(data), "test://o", hasher=hasher, hashed=1000)
    finally:
        await reader.aclose()
    assert done.landed == len(data) - 1000 and done.hashed == len(data)
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    assert server.sent() == len(data) - 1000


async def test_a_fill_resumes_every_cut_that_made_progress(
    files_server: Files, tmp_path: Path
) -> None:
    server, blobs, opts = files_server
    data = blobs[NAME].data
    opts["cut"][NAME] = [40_000] * 7
    reader = await _reader(f"{server.url}/{NAME}")
    server.reset()
    hasher = hashlib.sha256()
    try:
        await _fill_file(reader, tmp_path / "copy", hasher=hasher)
    finally:
        await reader.aclose()
    assert opts["cut"][NAME] == []
    assert (tmp_path / "copy").read_bytes() == data
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    last = len(data) - 1
    assert _gets(server) == [f"bytes={40_000 * i}-{last}" for i in range(8)]


async def test_a_fill_without_progress_gives_up(
    files_server: Files, tmp_path: Path, quick_retries: None
) -> None:
    server, _, opts = files_server
    opts["cut"][NAME] = [0] * 20
    reader = await _reader(f"{server.url}/{NAME}")
    server.reset()
    try:
        with pytest.raises(TransientFetchError, match="after 5 attempts"):
            await _fill_file(reader, tmp_path / "copy")
    finally:
        await reader.aclose()
    assert len(_gets(server)) == backoff.ATTEMPTS


async def test_a_fill_past_the_limit_is_too_large(files_server: Files, tmp_path: Path) -> None:
    server, _, _ = files_server
    reader = await _reader(f"{server.url}/{NAME}")
    try:
        with pytest.raises(ObjectTooLarge):
            await _fill_file(reader, tmp_path / "copy", limit=100_000)
    finally:
        await reader.aclose()


async def test_a_fill_that_cannot_write_stops(files_server: Files, tmp_path: Path) -> None:
    server, _, _ = files_server
    (tmp_path / "copy").write_bytes(b"")
    fd = os.open(tmp_path / "copy", os.O_RDONLY)
    reader = await _reader(f"{server.url}/{NAME}")
    try:
        with pytest.raises(FetchError, match="could not write"):
            await fill(reader, fd, 0, reader.size, "test://object")
    finally:
        os.close(fd)
        await reader.aclose()


async def test_behind_a_proxy_setting_the_fill_reads_through_httpx(
    files_server: Files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A configured proxy is httpx's to honour: the fill reads on the event loop instead
    (here the proxy is bypassed for 127.0.0.1), landing the same bytes."""
    server, blobs, _ = files_server
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    reader = await _reader(f"{server.url}/{NAME}")
    server.reset()
    hasher = hashlib.sha256()
    try:
        assert not reader.blocking_fills()
        await _fill_file(reader, tmp_path / "copy", hasher=hasher)
    finally:
        await reader.aclose()
    assert (tmp_path / "copy").read_bytes() == blobs[NAME].data
    assert hasher.hexdigest() == hashlib.sha256(blobs[NAME].data).hexdigest()
    assert len(_gets(server)) == 1


@pytest.fixture
def stalling_server() -> Iterator[str]:
    """Answers with a 10 MB body, sends 1 MB of it and then nothing, connection open."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)
            conn.recv(65536)
            conn.sendall(
                b'HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\nETag: "x"\r\n\r\n'
                + bytes(1_000_000)
            )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/stall.bin"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


async def test_a_cancelled_fill_aborts_its_read_and_ends_its_threads(
    stalling_server: str, tmp_path: Path
) -> None:
    from modelaudit.fetchers.http import HttpClient, HttpReader

    client = HttpClient()
    reader = HttpReader(client, stalling_server, "stall.bin", size=10_000_000)
    fd = os.open(tmp_path / "copy", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with anyio.move_on_after(1.0) as scope:
            await fill(reader, fd, 0, None, "test://stall")
        assert scope.cancelled_caught
    finally:
        os.close(fd)
        await reader.aclose()
        await client.aclose()
    # the megabyte that came landed; the writer and the reading thread are gone
    assert os.path.getsize(tmp_path / "copy") == 1_000_000
    assert not [t for t in threading.enumerate() if t.name == "modelaudit-fill"]
