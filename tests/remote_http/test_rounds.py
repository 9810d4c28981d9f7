"""A walk's rounds of ranged reads, sent from threads over kept-alive connections
(engine/rounds.py): counted and checked on the servers' side of real sockets."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import modelaudit
from modelaudit.findings import FileStatus
from tests.remote_http._remote_http_servers import (
    CDN,
    HF_GOOD_TOKEN,
    Blob,
    FakeHub,
    Handler,
    Repo,
    Server,
    onnx_with_tensors,
    pin_link,
    same_findings_as_local,
    serve_blob,
)

Files = tuple[Server, dict[str, Blob], dict[str, Any]]


@pytest.fixture(scope="module")
def many() -> bytes:
    """512 embedded tensors of 64 KiB: a walk of one small read per tensor."""
    return onnx_with_tensors(512, 16384)


def _pin(url: str) -> None:
    """Requests cheap next to a download of the model, whatever this machine's load: the
    planner walks."""
    pin_link(url, 0.05, 2e6)


def _gets(server: Server, name: str) -> int:
    return sum(1 for r in server.requests if r.method == "GET" and name in r.path)


async def test_a_walk_keeps_its_connections_alive(
    files_server: Files, many: bytes, tmp_path: Path
) -> None:
    """512 reads, 64 at a time, each answered after 20 ms: the server accepts no more
    connections than the walk has reads in flight (httpx kept 20 idle and opened a new one
    for nearly every read past them: 282 to 483 for 512 reads)."""
    from modelaudit.engine.range_plan import WALK_PARALLEL_BLOCKING

    server, blobs, opts = files_server
    blobs["many.onnx"] = Blob(many)
    _pin(server.url)
    opts["delay"] = 0.02
    report = await modelaudit.scan(f"{server.url}/many.onnx")
    await same_findings_as_local(report, many, tmp_path)
    assert _gets(server, "many.onnx") >= 512
    # (one more for the listing's HEAD, which goes through httpx)
    assert server.connections <= WALK_PARALLEL_BLOCKING + 1, server.connections
    assert opts["peak"] > 32, opts["peak"]


async def test_a_server_closing_kept_connections_still_gives_a_correct_scan(
    files_server: Files, many: bytes, tmp_path: Path
) -> None:
    """A server that closes every connection after one response without saying so (its
    keep-alive timeout passed): each read sent on a kept connection finds it closed and goes
    again on a fresh one, which is not a failure: the scan completes as the local one."""
    server, blobs, _ = files_server
    blobs["many.onnx"] = Blob(many)
    _pin(server.url)
    server.drop_kept = True
    report = await modelaudit.scan(f"{server.url}/many.onnx")
    await same_findings_as_local(report, many, tmp_path)
    assert server.connections >= _gets(server, "many.onnx") >= 512


async def test_an_object_changing_mid_walk_fails_the_file(files_server: Files, many: bytes) -> None:
    """The object is replaced (a new ETag) after the walk's first rounds: a read of the
    round sees the new ETag and the file is an error, never clean."""
    server, blobs, _ = files_server
    changed = bytearray(many)
    changed[-1] ^= 1
    blobs["many.onnx"] = Blob(many, change_after=40, changed=bytes(changed))
    _pin(server.url)
    report = await modelaudit.scan(f"{server.url}/many.onnx")
    (file,) = report.files
    assert file.status is FileStatus.ERROR
    assert "changed" in (file.status_reason or ""), file.status_reason
    assert _gets(server, "many.onnx") > 40


async def test_a_hub_walk_goes_to_the_cdn_on_kept_connections_without_the_token(
    hub: FakeHub, cdn: CDN, many: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Hub file walked by ranges: the token goes to the Hub once, for the redirect; every
    read of the walk goes straight to the CDN (another port), over connections kept alive
    from read to read, and none of them carries the token."""
    from modelaudit.engine.range_plan import WALK_PARALLEL_BLOCKING

    monkeypatch.setenv("HF_TOKEN", HF_GOOD_TOKEN)
    hub.add("acme/walk", Repo({"model.onnx": many}))
    _pin(hub.server.url)
    report = await modelaudit.scan("hf://acme/walk/model.onnx")
    await same_findings_as_local(report, many, tmp_path)
    resolves = [r for r in hub.server.requests if "/resolve/" in r.path]
    assert len(resolves) == 1
    assert resolves[0].headers.get("authorization") == f"Bearer {HF_GOOD_TOKEN}"
    gets = [r for r in cdn.server.requests if r.method == "GET"]
    assert len(gets) >= 512
    assert not any("authorization" in r.headers for r in gets)
    assert cdn.server.connections <= WALK_PARALLEL_BLOCKING, cdn.server.connections


def _our_threads() -> list[threading.Thread]:
    """This process's threads but the test servers' (one per connection they serve)."""
    return [t for t in threading.enumerate() if "process_request" not in t.name]


def test_cancelling_a_scan_mid_round_leaves_no_thread_behind(many: bytes) -> None:
    """The server stops answering once the walk's big round is in flight; the scan is
    cancelled there. Every read of the round is aborted (its socket shut), so the scan
    returns at once and, its event loop closed, no thread of it is left, although the
    server still holds every request."""
    stall = threading.Event()
    lock = threading.Lock()
    seen = {"gets": 0, "stalled": 0}
    blob = Blob(many)

    def route(h: Handler) -> tuple[int, dict[str, str], bytes]:
        if h.command == "GET":
            with lock:
                seen["gets"] += 1
                held = seen["gets"] > 4
                if held:
                    seen["stalled"] += 1
            if held:
                stall.wait(60)
        return serve_blob(h, blob)

    server = Server(route)
    try:
        _pin(server.url)
        before = len(_our_threads())

        async def scan_and_cancel() -> float:
            async with anyio.create_task_group() as tg:
                tg.start_soon(modelaudit.scan, f"{server.url}/many.onnx")
                with anyio.fail_after(30):
                    while seen["stalled"] < 16:
                        await anyio.sleep(0.01)
                began = time.monotonic()
                tg.cancel_scope.cancel()
            return time.monotonic() - began

        took = anyio.run(scan_and_cancel)
        assert took < 20, took
        deadline = time.monotonic() + 10
        while len(_our_threads()) > before and time.monotonic() < deadline:
            time.sleep(0.05)
        left = _our_threads()
        assert len(left) <= before, [t.name for t in left]
        assert not any(t.name == "modelaudit-round" for t in left)
    finally:
        stall.set()
        server.stop()
        from modelaudit.engine import link

        link.forget()
