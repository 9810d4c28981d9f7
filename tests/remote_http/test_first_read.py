"""A one-target plain URL is sized by its first reads, not by a HEAD before them: one round
trip fewer before the first byte (issue 13). Counted at a real server."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import struct
import threading
import time
from typing import Any

import numpy as np
import pytest

import modelaudit
from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.formats.format import END_READ, FIRST_READ
from tests.remote_http._remote_http_servers import Blob, Server, run_cli

Files = tuple[Server, dict[str, Blob], dict[str, Any]]


def _seen(server: Server) -> list[tuple[str, str]]:
    return [(r.method, r.headers.get("range", "")) for r in server.requests]


async def test_one_target_takes_its_size_from_the_head_and_end_reads(files_server: Files) -> None:
    server, blobs, _ = files_server
    data = blobs["model.safetensors"].data
    report = await modelaudit.scan(f"{server.url}/model.safetensors")
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert file.size == len(data)
    assert sorted(_seen(server)) == [
        ("GET", f"bytes=-{END_READ}"),
        ("GET", f"bytes=0-{FIRST_READ - 1}"),
    ]
    assert server.sent() == FIRST_READ + END_READ


async def test_hash_remote_of_one_target_opens_its_stream_first(
    files_server: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--hash-remote: the listing's request is the whole object's GET itself (its headers
    give the size), the one request of the run when the tail is taken off the stream."""
    from safetensors.numpy import save

    from modelaudit.engine import acquire

    monkeypatch.setattr(acquire, "BESIDE_WITHIN", -1.0)
    server, blobs, _ = files_server
    data = save({f"w{i}": np.full((512, 512), i, dtype=np.float32) for i in range(12)})
    assert len(data) > acquire.TAP_ABOVE
    blobs["big.safetensors"] = Blob(data)
    report = await modelaudit.scan(f"{server.url}/big.safetensors", hashes=True, hash_remote=True)
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    assert _seen(server) == [("GET", "")]
    assert server.sent() == len(data)


async def test_server_ignoring_range_scans_off_the_first_reads_response(
    files_server: Files,
) -> None:
    """A server that ignores Range answers the head read with the whole object: that
    response is the download (no HEAD, no third request)."""
    server, blobs, opts = files_server
    opts["range"] = False
    data = blobs["evil_model.bin"].data
    report = await modelaudit.scan(f"{server.url}/evil_model.bin")
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert file.size == len(data)
    assert any(i.severity is IssueSeverity.CRITICAL for i in report.issues)
    assert [method for method, _ in _seen(server)] == ["GET", "GET"]


@pytest.mark.parametrize("hash_remote", [False, True])
def test_max_size_stops_after_the_first_reads(files_server: Files, hash_remote: bool) -> None:
    """Over --max-size: what the listing read first (head and end), never a stream, and
    nothing after."""
    server, blobs, _ = files_server
    extra = ["-f", "sarif", "--hash-remote"] if hash_remote else []
    proc = run_cli(f"{server.url}/model.safetensors", "--max-size", "100", *extra)
    assert "too large" in proc.stdout.lower()
    assert sorted(_seen(server)) == [
        ("GET", f"bytes=-{END_READ}"),
        ("GET", f"bytes=0-{FIRST_READ - 1}"),
    ]
    assert server.sent() == FIRST_READ + END_READ < len(blobs["model.safetensors"].data)


async def test_one_missing_target_is_a_target_error(files_server: Files) -> None:
    server, _, _ = files_server
    report = await modelaudit.scan(f"{server.url}/missing.safetensors")
    (err,) = report.target_errors
    assert "not found" in err["error"]
    assert not report.files


async def test_empty_object_falls_back_to_head(files_server: Files) -> None:
    """A first read the server refuses (416 for a range of an empty object) is no error:
    the HEAD decides."""
    server, blobs, _ = files_server
    blobs["empty.bin"] = Blob(b"")
    report = await modelaudit.scan(f"{server.url}/empty.bin")
    (file,) = report.files
    assert file.size == 0
    assert file.status is not FileStatus.ERROR, file.status_reason
    assert ("HEAD", "") in _seen(server)


async def test_link_learns_the_first_reads_round_trip(files_server: Files, tmp_path: Any) -> None:
    """The reads sent by the listing are what the endpoint's latency is first measured by
    (the planner weighs requests with it), not a zero for bytes already held."""
    from modelaudit.engine.link import link_for
    from modelaudit.engine.spool import Spool
    from modelaudit.fetchers import resolve

    server, _, opts = files_server
    opts["delay"] = 0.2
    source = resolve(f"{server.url}/model.safetensors", {"one_target": True})
    try:
        [obj] = [o async for o in source.objects()]
        assert obj.reader is not None and obj.size is not None
        requests = len(server.requests)
        spool = Spool(obj.reader, str(tmp_path / "x"), obj.size, obj.uri)
        try:
            await spool.fetch_many([(0, FIRST_READ), (obj.size - END_READ, obj.size)])
        finally:
            spool.close()
        assert len(server.requests) == requests  # served from what the listing read
        assert 0.2 <= link_for(obj.reader.endpoint).latency < 1.0
    finally:
        await source.aclose()


async def test_server_refusing_suffix_ranges_keeps_the_head_reads_answer(
    samples: dict[str, bytes],
) -> None:
    """A server that serves ranges but refuses a suffix range (416): the head read's
    Content-Range sized the object, so no HEAD follows; acquisition reads the end itself."""
    from tests.remote_http._remote_http_servers import serve_blob

    blob = Blob(samples["big_safetensors"])

    def route(h: Any) -> tuple[int, dict[str, str], bytes]:
        if h.headers.get("Range", "").startswith("bytes=-"):
            return 416, {}, b""
        return serve_blob(h, blob)

    server = Server(route)
    try:
        report = await modelaudit.scan(f"{server.url}/model.safetensors")
    finally:
        server.stop()
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert file.size == len(blob.data)
    seen = _seen(server)
    assert [method for method, _ in seen] == ["GET", "GET", "GET"], seen
    size = len(blob.data)
    assert ("GET", f"bytes={size - END_READ}-{size - 1}") in seen


async def test_a_large_pytorch_zips_directory_comes_with_the_first_reads(
    files_server: Files, tmp_path: Any
) -> None:
    """A name that may be a zip gets a long end read: a checkpoint of 64 MiB or more, whose
    central directory acquisition reads from its last 256 KiB, needs no third request."""
    import torch

    from modelaudit.formats.format import LONG_END_READ

    server, blobs, _ = files_server
    path = tmp_path / "pytorch_model.bin"
    torch.save({"w": torch.zeros((64 << 20) // 4 + 1024)}, path)
    blobs["pytorch_model.bin"] = Blob(path.read_bytes())
    report = await modelaudit.scan(f"{server.url}/pytorch_model.bin")
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert sorted(_seen(server)) == [
        ("GET", f"bytes=-{LONG_END_READ}"),
        ("GET", f"bytes=0-{FIRST_READ - 1}"),
    ]


async def test_a_first_reads_response_reset_while_its_head_is_read_is_read_again() -> None:
    """A server that ignores Range answers the head read with the whole object, kept open
    for the head; the connection is reset while the head is read off it: the head is read
    again by a ranged read with its retries (before: the reset was the file's error, with
    no other try)."""
    from safetensors.numpy import save

    data = save({"w": np.zeros(10000, dtype=np.float32)})
    assert len(data) <= FIRST_READ
    seen: list[str] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def serve(conn: socket.socket) -> None:
        # (the end read's connection is closed with its body unread)
        with conn, conn.makefile("rb") as requests, contextlib.suppress(OSError):
            while line := requests.readline():
                asked = ""
                while line not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "range":
                        asked = value.strip()
                    line = requests.readline()
                seen.append(asked)
                head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data)
                if asked == f"bytes=0-{FIRST_READ - 1}":
                    conn.sendall(head + data[:1000])
                    time.sleep(0.2)
                    # (a reset, not an end: RST at once on close)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                conn.sendall(head + data)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        report = await modelaudit.scan(
            f"http://127.0.0.1:{listener.getsockname()[1]}/m.safetensors"
        )
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        acceptor.join(5)
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert sorted(seen) == sorted(
        [f"bytes=0-{FIRST_READ - 1}", f"bytes=-{END_READ}", f"bytes=0-{len(data) - 1}"]
    )


def test_a_listings_head_goes_without_httpx(files_server: Files) -> None:
    """An ONNX model's listing sizes it by a HEAD (its first read is a stream, or ranges),
    sent over http.client like every read that follows: httpx is not imported by such a
    run (its import, TLS context and client took 0.06-0.12 s before the HEAD went out)."""
    import subprocess
    import sys

    server, _, _ = files_server
    code = (
        "import sys, anyio, modelaudit\n"
        "report = anyio.run(modelaudit.scan, sys.argv[1])\n"
        "(file,) = report.files\n"
        "print(file.status.value, 'httpx' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, f"{server.url}/model.onnx"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.split() == ["complete", "False"], proc.stdout + proc.stderr
    assert _seen(server)[0] == ("HEAD", "")
