"""Hub reads go to the CDN the Hub redirects to, once per object while the redirect is valid;
hashes come from what the Hub publishes. Counted and checked on the servers' side."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import modelaudit
from modelaudit.findings import FileStatus
from tests.remote_http._remote_http_servers import CDN, HF_GOOD_TOKEN, FakeHub, pin_slow_link

FILE = "hf://acme/clean/model.safetensors"


def _resolves(hub: FakeHub) -> list[str]:
    return [r.path for r in hub.server.requests if "/resolve/" in r.path]


def _cdn_gets(cdn: CDN) -> list[dict[str, str]]:
    return [r.headers for r in cdn.server.requests if r.method == "GET"]


async def test_one_redirect_serves_every_read_of_the_object(
    hub: FakeHub, cdn: CDN, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", HF_GOOD_TOKEN)
    pin_slow_link(cdn.server.url)
    report = await modelaudit.scan(FILE)
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    gets = _cdn_gets(cdn)
    assert len(gets) >= 2  # head and tail at least
    assert len(_resolves(hub)) == 1
    # the token went to the Hub and never to the CDN
    assert all(
        r.headers.get("authorization") == f"Bearer {HF_GOOD_TOKEN}" for r in hub.server.requests
    )
    assert not any("authorization" in h for h in gets)


async def test_an_expiring_redirect_is_not_reused(hub: FakeHub, cdn: CDN) -> None:
    """A signed URL about to expire is asked for again rather than used past its time."""
    hub.cdn_ttl = 5
    pin_slow_link(cdn.server.url)
    report = await modelaudit.scan(FILE)
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert len(_resolves(hub)) == len(_cdn_gets(cdn)) >= 2


async def test_a_refused_redirect_is_renewed_through_the_hub(hub: FakeHub, cdn: CDN) -> None:
    """The CDN refusing a remembered URL (its signature expired early) sends the reader
    back to the Hub for a fresh one, once, and the scan completes."""
    from modelaudit.fetchers import resolve

    source = resolve(FILE)
    [obj] = [o async for o in source.objects()]
    await source.aclose()
    assert obj.reader is not None
    try:
        assert await obj.reader.read_range(0, 8)
        cdn.revoked.update(hub.signed)
        assert await obj.reader.read_range(8, 16)
        assert await obj.reader.read_range(16, 24)
    finally:
        await obj.reader.aclose()
    assert len(_resolves(hub)) == 2
    statuses = [r.path for r in cdn.server.requests]
    assert len(statuses) == 4  # first read, refused reuse, two reads on the renewed URL


async def test_sarif_hash_is_the_hubs_sha256_without_a_download(
    hub: FakeHub, cdn: CDN, samples: dict[str, bytes]
) -> None:
    data = samples["big_safetensors"]
    report = await modelaudit.scan(FILE, hashes=True)
    (file,) = report.files
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    assert file.digest_source is not None and "Hugging Face" in file.digest_source
    assert cdn.server.sent() < len(data) // 4
    from modelaudit.reporters import get_renderer

    sarif = json.loads(get_renderer("sarif")(report))
    (artifact,) = sarif["runs"][0]["artifacts"]
    assert artifact["hashes"] == {"sha-256": file.sha256}
    assert "Hugging Face" in artifact["properties"]["hashSource"]


async def test_a_whole_fill_follows_the_redirect_itself_and_keeps_the_token_home(
    hub: FakeHub,
    cdn: CDN,
    samples: dict[str, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fill (http.client in a thread, not httpx) as the first read of a Hub file: it asks
    the Hub with the token, follows the 302 to the CDN without it, learns the LFS sha256
    from the redirect, and a later read goes straight to the CDN."""
    import os

    from modelaudit.engine.fill import fill
    from modelaudit.fetchers import resolve

    monkeypatch.setenv("HF_TOKEN", HF_GOOD_TOKEN)
    data = samples["big_safetensors"]
    source = resolve(FILE)
    [obj] = [o async for o in source.objects()]
    await source.aclose()
    reader = obj.reader
    assert reader is not None and reader.blocking_fills()
    hub.server.reset()
    fd = os.open(tmp_path / "copy", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        done = await fill(reader, fd, 0, len(data), FILE, hasher=hashlib.sha256())
        assert await reader.read_range(0, 8) == data[:8]
    finally:
        os.close(fd)
        await reader.aclose()
    assert done.landed == len(data)
    assert (tmp_path / "copy").read_bytes() == data
    assert reader.digests["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(_resolves(hub)) == 1
    assert all(
        r.headers.get("authorization") == f"Bearer {HF_GOOD_TOKEN}" for r in hub.server.requests
    )
    gets = _cdn_gets(cdn)
    assert len(gets) == 2 and not any("authorization" in h for h in gets)
