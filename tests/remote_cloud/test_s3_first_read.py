"""One S3 key that is its run's only target is sized by its first reads (a ranged GetObject of
its head and a suffix GetObject of its end, in parallel), not by a HeadObject before them:
one round trip fewer before the first byte (issue 13). Requests counted at a real front of
the moto server; HeadObject stays where it is still needed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelaudit
from modelaudit.fetchers import ObjectChanged, resolve
from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.formats.format import END_READ, FIRST_READ, GGUF_FIRST_READ, LONG_END_READ
from tests.remote_cloud._remote_cloud_servers import (
    EVIL_PICKLE,
    S3_BUCKET,
    FlakyProxy,
    MotoServer,
    run_cli,
)
from tests.remote_cloud.test_s3 import s3_env, use_env

FIRST_READS = [("GET", f"bytes=-{END_READ}"), ("GET", f"bytes=0-{FIRST_READ - 1}")]
#: ... of an object whose name says it may be a zip (a PyTorch checkpoint): its end read has
#: room for a large checkpoint's central directory
ZIP_FIRST_READS = [("GET", f"bytes=-{LONG_END_READ}"), ("GET", f"bytes=0-{FIRST_READ - 1}")]


def _model(fill: float = 0.0) -> bytes:
    from safetensors.numpy import save

    return save({"w": np.full((512, 512), fill, dtype=np.float32)})


@pytest.fixture
def proxy(s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlakyProxy]:
    """A front of the moto server that logs every request (none failed or cut), the scans'
    endpoint."""
    front = FlakyProxy(s3_server.endpoint, fail_first=0, cut=False)
    use_env(monkeypatch, s3_env(s3_server) | {"AWS_ENDPOINT_URL": front.url})
    try:
        yield front
    finally:
        front.close()


def _seen(proxy: FlakyProxy) -> list[tuple[str, str]]:
    return [(method, rng) for method, rng, _ in proxy.requests]


def _put(server: MotoServer, key: str, data: bytes, **extra: str) -> str:
    server.admin().put_object(Bucket=S3_BUCKET, Key=key, Body=data, **extra)
    return f"s3://{S3_BUCKET}/{key}"


async def test_one_key_takes_its_size_from_the_head_and_end_reads(
    s3_server: MotoServer, proxy: FlakyProxy
) -> None:
    data = _model()
    uri = _put(s3_server, "first/model.safetensors", data)
    report = await modelaudit.scan(uri)
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert file.size == len(data)
    assert sorted(_seen(proxy)) == FIRST_READS


async def test_reads_after_the_first_are_pinned_to_its_etag(
    s3_server: MotoServer, proxy: FlakyProxy
) -> None:
    """The first reads' ETag pins the object: a later read of a replaced object fails."""
    data = _model()
    uri = _put(s3_server, "first/mutable.safetensors", data)
    source = resolve(uri, {"one_target": True})
    [obj] = [o async for o in source.objects()]
    await source.aclose()
    assert obj.reader is not None
    try:
        assert sorted(_seen(proxy)) == FIRST_READS
        assert obj.etag and obj.size == len(data)
        assert await obj.reader.read_range(FIRST_READ, FIRST_READ + 8) == data[FIRST_READ:][:8]
        assert proxy.requests[-1][2].get("if-match") == obj.etag
        _put(s3_server, "first/mutable.safetensors", _model(1.0))
        with pytest.raises(ObjectChanged):
            await obj.reader.read_range(FIRST_READ, FIRST_READ + 8)
    finally:
        await obj.reader.aclose()


async def test_hash_remote_opens_the_whole_objects_get_first(
    s3_server: MotoServer, proxy: FlakyProxy
) -> None:
    """--hash-remote with no published sha256: the listing's request is the whole object's
    GetObject itself (its answer gives the size, the ETag and the md5), kept open for the
    stream that hashes it; no HeadObject."""
    from modelaudit.engine import acquire

    data = _model()
    assert len(data) <= acquire.TAP_ABOVE
    uri = _put(s3_server, "first/hashed.safetensors", data)
    report = await modelaudit.scan(uri, hashes=True, hash_remote=True)
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    assert file.digests["md5"] == hashlib.md5(data).hexdigest()
    assert _seen(proxy) == [("GET", "whole")]
    assert proxy.requests[0][2].get("x-amz-checksum-mode") == "ENABLED"


async def test_hash_remote_with_a_published_sha256_takes_only_the_head_off_its_get(
    s3_server: MotoServer, proxy: FlakyProxy
) -> None:
    """The whole object's GetObject says ChecksumSHA256 is published: that is the hash, no
    download; the head comes off that GetObject and the end is a ranged read."""
    data = _model()
    uri = _put(s3_server, "first/sha.safetensors", data, ChecksumAlgorithm="SHA256")
    report = await modelaudit.scan(uri, hashes=True, hash_remote=True)
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    assert "ChecksumSHA256" in (file.digest_source or "")
    assert "computed" not in (file.digest_source or "")
    size = len(data)
    assert _seen(proxy) == [("GET", "whole"), ("GET", f"bytes={size - END_READ}-{size - 1}")]


async def test_a_folder_prefix_named_without_its_slash_is_listed(
    s3_server: MotoServer, proxy: FlakyProxy
) -> None:
    """NoSuchKey on the first reads falls back to listing the prefix, as HeadObject's 404
    did; no HeadObject."""
    report = await modelaudit.scan(f"s3://{S3_BUCKET}/sweep")
    assert {f.path for f in report.files} == {
        f"s3://{S3_BUCKET}/sweep/a/evil.pkl",
        f"s3://{S3_BUCKET}/sweep/b/clean.safetensors",
    }
    assert report.exit_code == 1
    seen = _seen(proxy)
    assert sorted(seen[:2]) == ZIP_FIRST_READS
    assert "HEAD" not in {method for method, _ in seen}
    assert any("list-type=2" in path for path in proxy.paths)


async def test_empty_object_falls_back_to_head(s3_server: MotoServer, proxy: FlakyProxy) -> None:
    """S3 refuses a range of an empty object (416 InvalidRange): the HeadObject decides."""
    uri = _put(s3_server, "first/empty.bin", b"")
    report = await modelaudit.scan(uri)
    (file,) = report.files
    assert file.size == 0
    assert file.status is not FileStatus.ERROR, file.status_reason
    seen = _seen(proxy)
    assert sorted(seen[:2]) == ZIP_FIRST_READS and seen[2] == ("HEAD", "whole"), seen


def test_wrong_secret_is_named_from_the_first_reads_error(
    s3_server: MotoServer, proxy: FlakyProxy
) -> None:
    """A GetObject's 403 has an error document: the refused secret is named from it, with
    no HeadObject and no one-byte probe after it."""
    env = s3_env(s3_server) | {
        "AWS_ENDPOINT_URL": proxy.url,
        "AWS_SECRET_ACCESS_KEY": "wrong-secret-for-a-real-key",
    }
    proc = run_cli(["-f", "json", f"s3://{S3_BUCKET}/evil.pkl"], env)
    assert proc.returncode == 2
    [err] = json.loads(proc.stdout)["target_errors"]
    assert "refused" in err["error"] and "SignatureDoesNotMatch" in err["error"], err
    assert "wrong-secret-for-a-real-key" not in proc.stdout + proc.stderr
    assert sorted(_seen(proxy)) == ZIP_FIRST_READS


def test_denied_without_credentials_names_the_variables(
    s3_server: MotoServer, proxy: FlakyProxy
) -> None:
    env = s3_env(s3_server, signed=False) | {"AWS_ENDPOINT_URL": proxy.url}
    proc = run_cli(["-f", "json", f"s3://{S3_BUCKET}/evil.pkl"], env)
    assert proc.returncode == 2
    [err] = json.loads(proc.stdout)["target_errors"]
    assert "set AWS_ACCESS_KEY_ID" in err["error"], err
    assert sorted(_seen(proxy)) == ZIP_FIRST_READS


@pytest.mark.parametrize("hash_remote", [False, True])
def test_max_size_stops_after_the_first_reads(
    s3_server: MotoServer, proxy: FlakyProxy, hash_remote: bool
) -> None:
    """Over --max-size: the listing's ranged first reads (never the whole object's GET,
    even with --hash-remote; beside them the checksums' HeadObject of a SARIF run) and
    nothing after."""
    data = _model()
    uri = _put(s3_server, "first/large.safetensors", data)
    env = s3_env(s3_server) | {"AWS_ENDPOINT_URL": proxy.url}
    extra = ["-f", "sarif", "--hash-remote"] if hash_remote else []
    proc = run_cli([uri, "--max-size", "100", *extra], env)
    assert "too large" in proc.stdout.lower()
    expected = FIRST_READS + ([("HEAD", "whole")] if hash_remote else [])
    assert sorted(_seen(proxy)) == sorted(expected)


async def test_cache_and_several_targets_keep_head(
    s3_server: MotoServer, proxy: FlakyProxy, tmp_path: Path
) -> None:
    """--cache identifies an object before reading it, and a call with several targets
    leaves its reads to the engine's bound on objects fetched at once: HeadObject first."""
    uri = _put(s3_server, "first/cached.safetensors", _model())
    report = await modelaudit.scan(uri, cache_dir=str(tmp_path / "cache"))
    assert report.files[0].status is FileStatus.COMPLETE
    assert _seen(proxy)[0] == ("HEAD", "whole")
    proxy.requests.clear()
    report = await modelaudit.scan([uri, f"s3://{S3_BUCKET}/evil.pkl"])
    assert any(i.severity is IssueSeverity.CRITICAL for i in report.issues)
    assert [m for m, _ in _seen(proxy)].count("HEAD") == 2


async def test_pickle_read_whole_reuses_the_first_reads(
    s3_server: MotoServer, proxy: FlakyProxy
) -> None:
    """A format read whole takes the head and end the listing read (all of the long end
    read, not only the end acquisition asked for), and only the rest."""
    size = len(EVIL_PICKLE) + (600 << 10)
    uri = _put(s3_server, "first/evil.pkl", EVIL_PICKLE + b"\0" * (600 << 10))
    report = await modelaudit.scan(uri)
    assert any(i.severity is IssueSeverity.CRITICAL for i in report.issues)
    seen = _seen(proxy)
    assert sorted(seen[:2]) == ZIP_FIRST_READS
    assert seen[2:] == [("GET", f"bytes={FIRST_READ}-{size - LONG_END_READ - 1}")], seen


async def test_a_large_pytorch_zips_directory_comes_with_the_first_reads(
    s3_server: MotoServer, proxy: FlakyProxy, tmp_path: Path
) -> None:
    """A name that may be a zip gets a long end read: a checkpoint of 64 MiB or more, whose
    central directory acquisition reads from its last 256 KiB, needs no second round trip
    for it (the listing's two GETs are all)."""
    import torch

    path = tmp_path / "pytorch_model.bin"
    torch.save({"w": torch.zeros((64 << 20) // 4 + 1024)}, path)
    uri = _put(s3_server, "first/pytorch_model.bin", path.read_bytes())
    report = await modelaudit.scan(uri)
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert sorted(_seen(proxy)) == ZIP_FIRST_READS


async def test_a_fill_off_the_listings_get_counts_its_time_to_answer(
    s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole object's GetObject the listing opened gives a fill its first bytes at once;
    the fill's time to answer is still that GetObject's (what decides whether a large ONNX
    model's first stream is kept: moto reads the whole object before answering, so ranged
    reads are dear there, and a stream that looked instant was cut for a walk of 8 whole-
    object reads)."""
    from urllib.parse import urlsplit

    from modelaudit.engine.fill import fill
    from tests.remote_http._relay import Relay

    data = _model()
    uri = _put(s3_server, "first/timed.safetensors", data)
    relay = Relay(urlsplit(s3_server.endpoint).port or 80, latency=0.2)
    use_env(monkeypatch, s3_env(s3_server) | {"AWS_ENDPOINT_URL": relay.url})
    config = {"one_target": True, "hashes": True, "hash_remote": True}
    source = resolve(uri, config)
    try:
        [obj] = [o async for o in source.objects()]
        assert obj.reader is not None and obj.reader.holding()
        done = await fill(obj.reader, None, 0, obj.size, uri)
        await obj.reader.aclose()
    finally:
        await source.aclose()
        relay.stop()
    assert done.landed == len(data)
    assert done.first >= 0.2, done


async def test_reads_ask_for_no_checksum_the_scan_does_not_use(
    s3_server: MotoServer, proxy: FlakyProxy
) -> None:
    """A JSON scan wants no digest: none of its GetObjects asks for the object's checksums
    (botocore would, and would hash every checksummed body it streams)."""
    uri = _put(s3_server, "first/sums.pkl", EVIL_PICKLE, ChecksumAlgorithm="SHA256")
    report = await modelaudit.scan(uri)
    assert any(i.severity is IssueSeverity.CRITICAL for i in report.issues)
    assert proxy.requests
    assert [h for _m, _r, h in proxy.requests if "x-amz-checksum-mode" in h] == []


async def test_first_reads_answered_whole_read_no_more_than_they_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An S3-compatible endpoint that ignores Range answers each first read with the whole
    object: the reads take what they asked for and let the rest go (before: each read the
    whole object into memory, 64 MiB twice here; a large model's, twice over). Moto honours
    Range, so the endpoint is a loopback stand-in that answers every GET with the whole
    object; bytes sent are counted there."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    data = _model()
    data += b"\0" * ((64 << 20) - len(data))
    #: (the Range of each GET, in the order they came; the bytes sent for it)
    asked: list[str] = []
    sent: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            asked.append(self.headers.get("Range", "whole"))
            sent.append(0)
            at = len(sent) - 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", '"whole"')
            self.end_headers()
            try:
                for i in range(0, len(data), 1 << 20):
                    self.wfile.write(data[i : i + (1 << 20)])
                    sent[at] += len(data[i : i + (1 << 20)])
            except OSError:
                self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    use_env(monkeypatch, env)
    try:
        report = await modelaudit.scan(f"s3://{S3_BUCKET}/whole/model.safetensors")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert file.size == len(data)
    assert set(asked[:2]) == {rng for _, rng in FIRST_READS}, asked
    # (what the sockets' buffers took before the reads let go; far from the object)
    assert all(n < 32 << 20 for n in sent[:2]), sent


def _gguf_with_vocabulary(tokens: int, floats: int) -> bytes:
    """A llama-style GGUF whose token list puts the tensor list past `FIRST_READ`."""
    import os
    import tempfile

    import gguf

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "m.gguf")
        writer = gguf.GGUFWriter(path, "llama")
        writer.add_token_list([f"token-{i}" for i in range(tokens)])
        writer.add_tensor("w", np.zeros(floats, dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return Path(path).read_bytes()


async def test_a_gguf_header_past_the_usual_first_read_takes_one_round(
    s3_server: MotoServer, proxy: FlakyProxy
) -> None:
    """A GGUF's vocabulary comes before its tensor list: the first read of a GGUF name
    takes the whole header of a 32,000-token model, not a second request (each of which,
    on moto, costs a whole-object read)."""
    data = _gguf_with_vocabulary(32_000, 3 << 20)
    assert FIRST_READ < data.index(b"\x01\x00\x00\x00\x00\x00\x00\x00w") < GGUF_FIRST_READ
    uri = _put(s3_server, "first/model.gguf", data)
    report = await modelaudit.scan(uri)
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert sorted(_seen(proxy)) == [
        ("GET", f"bytes=-{END_READ}"),
        ("GET", f"bytes=0-{GGUF_FIRST_READ - 1}"),
    ]


async def test_a_listed_gguf_reads_a_share_of_its_size_first(
    s3_server: MotoServer, proxy: FlakyProxy
) -> None:
    """Listed (sized), a GGUF's first read is 1/128 of it (here enough for the header), so
    that a header-only scan stays under 1% of the object's bytes."""
    data = _gguf_with_vocabulary(32_000, 24 << 20)
    _put(s3_server, "sized/model.gguf", data)
    report = await modelaudit.scan(f"s3://{S3_BUCKET}/sized/")
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    size = len(data)
    # (the listing's own GET has no range)
    gets = sorted(rng for method, rng in _seen(proxy) if rng.startswith("bytes="))
    assert gets == [f"bytes=0-{(size >> 7) - 1}", f"bytes={size - END_READ}-{size - 1}"]
    assert sum(_moved(rng, size) for rng in gets) < size // 100


def _moved(rng: str, size: int) -> int:
    a, b = rng.removeprefix("bytes=").split("-")
    return int(b) - int(a) + 1
