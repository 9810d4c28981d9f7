"""SARIF/SBOM hashes of cloud objects come from what the store publishes (S3 ChecksumSHA256
or a single-part ETag's md5, GCS md5Hash/crc32c), named by algorithm, without a download;
--hash-remote downloads to hash when no sha256 is published. Bytes counted by a real relay."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from urllib.parse import urlsplit

import numpy as np
import pytest

import modelaudit
from modelaudit.findings import FileStatus
from modelaudit.formats.format import end_read
from tests.remote_cloud._remote_cloud_servers import (
    GCS_BUCKET,
    S3_BUCKET,
    FlakyProxy,
    GcsEmulator,
    MotoServer,
    clean_env,
)
from tests.remote_cloud.test_gcs import emulator_env
from tests.remote_cloud.test_gcs import use_env as use_gcs_env
from tests.remote_cloud.test_s3 import s3_env, use_env
from tests.remote_http._relay import Relay


def _model() -> bytes:
    from safetensors.numpy import save

    return save({"w": np.zeros((1024, 1024), dtype=np.float32)})


@pytest.fixture
def s3_relay(s3_server: MotoServer) -> Iterator[Relay]:
    relay = Relay(urlsplit(s3_server.endpoint).port or 80)
    yield relay
    relay.stop()


async def test_s3_checksum_sha256_is_the_hash(
    s3_server: MotoServer, s3_relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _model()
    s3_server.admin().put_object(
        Bucket=S3_BUCKET, Key="digests/sha.safetensors", Body=data, ChecksumAlgorithm="SHA256"
    )
    use_env(monkeypatch, s3_env(s3_server) | {"AWS_ENDPOINT_URL": s3_relay.url})
    report = await modelaudit.scan(f"s3://{S3_BUCKET}/digests/sha.safetensors", hashes=True)
    (file,) = report.files
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    assert file.digests["md5"] == hashlib.md5(data).hexdigest()
    assert file.digest_source is not None and "ChecksumSHA256" in file.digest_source
    assert s3_relay.to_client < len(data) // 8


async def test_s3_digests_come_from_a_head_beside_the_first_reads(
    s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SARIF/SBOM run of one key asks for the checksum (a ranged GetObject carries none) in
    one HeadObject sent beside the first reads, not before them: those GETs carry no
    If-Match, the ETag being unknown when they left; a run without hashes asks none."""
    data = _model()
    s3_server.admin().put_object(
        Bucket=S3_BUCKET, Key="digests/one-head.safetensors", Body=data, ChecksumAlgorithm="SHA256"
    )
    uri = f"s3://{S3_BUCKET}/digests/one-head.safetensors"
    proxy = FlakyProxy(s3_server.endpoint, fail_first=0)
    try:
        use_env(monkeypatch, s3_env(s3_server) | {"AWS_ENDPOINT_URL": proxy.url})
        report = await modelaudit.scan(uri, hashes=True)
        hashed = list(proxy.requests)
        proxy.requests.clear()
        plain = await modelaudit.scan(uri)
    finally:
        proxy.close()
    (file,) = report.files
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    assert "ChecksumSHA256" in (file.digest_source or "")
    heads = [h for method, _, h in hashed if method == "HEAD"]
    assert len(heads) == 1, [r[:2] for r in hashed]
    assert heads[0].get("x-amz-checksum-mode") == "ENABLED"
    firsts = [h for method, rng, h in hashed[:3] if method == "GET"]
    assert len(firsts) == 2 and not any("if-match" in h for h in firsts), hashed[:3]
    assert plain.files[0].status == FileStatus.COMPLETE
    assert [method for method, _, _ in proxy.requests] == ["GET", "GET"]


async def test_s3_single_part_etag_is_an_md5_and_no_download(
    s3_server: MotoServer, s3_relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _model()
    s3_server.admin().put_object(Bucket=S3_BUCKET, Key="digests/md5.safetensors", Body=data)
    use_env(monkeypatch, s3_env(s3_server) | {"AWS_ENDPOINT_URL": s3_relay.url})
    uri = f"s3://{S3_BUCKET}/digests/md5.safetensors"
    report = await modelaudit.scan(uri, hashes=True)
    (file,) = report.files
    assert file.sha256 is None
    assert file.digests == {"md5": hashlib.md5(data).hexdigest()}
    assert file.digest_source is not None and "ETag" in file.digest_source
    assert s3_relay.to_client < len(data) // 8
    before = s3_relay.to_client
    report = await modelaudit.scan(uri, hashes=True, hash_remote=True)
    (file,) = report.files
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    assert s3_relay.to_client - before >= len(data)


async def test_gcs_md5_and_crc32c_are_the_hashes(
    gcs_emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _model()
    gcs_emulator.upload(GCS_BUCKET, "digests/model.safetensors", data)
    use_gcs_env(monkeypatch, emulator_env(gcs_emulator))
    report = await modelaudit.scan(f"gs://{GCS_BUCKET}/digests/model.safetensors", hashes=True)
    (file,) = report.files
    assert file.digests["md5"] == hashlib.md5(data).hexdigest()
    assert len(bytes.fromhex(file.digests.get("crc32c", "00000000"))) == 4
    assert file.sha256 is None
    assert file.digest_source is not None and "md5Hash" in file.digest_source


class _GetCounter(Relay):
    """Counts the GETs clients send through the relay, and those carrying a Range."""

    def __init__(self, port: int) -> None:
        self.gets = 0
        self.ranged = 0
        #: GCS reads of an object's bytes (its other GETs read metadata)
        self.media = 0
        super().__init__(port)

    def observe(self, data: bytes, upstream: bool) -> None:
        if upstream:
            self.gets += data.count(b"GET /")
            self.ranged += data.lower().count(b"\r\nrange: bytes=")
            self.media += data.count(b"alt=media")


@pytest.mark.parametrize("beside", [True, False], ids=["tail-beside", "tail-off-stream"])
async def test_s3_hash_remote_reads_at_most_the_tail_beside_the_stream(
    s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch, beside: bool
) -> None:
    """No published sha256 and --hash-remote: one GetObject streams the object and the plan's
    reads come off it; its tail too where the stream's first bytes came slowly (moto reads
    the whole object for every GetObject, ranged or not, so a read beside the stream costs
    it a download's worth of work), else one ranged GetObject beside the stream."""
    from safetensors.numpy import save

    from modelaudit.engine import acquire

    monkeypatch.setattr(acquire, "BESIDE_WITHIN", math.inf if beside else -1.0)
    data = save({f"w{i}": np.full((512, 512), i, dtype=np.float32) for i in range(12)})
    assert len(data) > 8 << 20
    s3_server.admin().put_object(Bucket=S3_BUCKET, Key="digests/big.safetensors", Body=data)
    relay = _GetCounter(urlsplit(s3_server.endpoint).port or 80)
    try:
        use_env(monkeypatch, s3_env(s3_server) | {"AWS_ENDPOINT_URL": relay.url})
        uri = f"s3://{S3_BUCKET}/digests/big.safetensors"
        report = await modelaudit.scan(uri, hashes=True, hash_remote=True)
    finally:
        relay.stop()
    (file,) = report.files
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    tail = end_read("big.safetensors", len(data)) if beside else 0
    assert relay.gets == (2 if beside else 1) and relay.ranged <= relay.gets
    assert len(data) + tail <= relay.to_client < len(data) + tail + (64 << 10)


@pytest.mark.parametrize("name", ["big.safetensors", "many.onnx"])
async def test_gcs_hash_remote_reads_nothing_beside_the_stream_but_the_tail(
    gcs_emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """GCS publishes md5 and crc32c, no sha256: --hash-remote streams the object once
    through the hasher and the plan's reads come off that stream (an ONNX walk over 96
    tensors too), but for the tail, one ranged read beside it. Counted at a relay in front
    of gcp-storage-emulator: two media GETs, one of them ranged, and the object's bytes
    plus its tail to the client."""
    from safetensors.numpy import save

    from modelaudit.engine import acquire
    from tests.remote_http.test_acquire import _onnx_of

    monkeypatch.setattr(acquire, "BESIDE_WITHIN", math.inf)
    if name.endswith(".onnx"):
        data = _onnx_of(96, 48 * 1024)
    else:
        data = save({f"w{i}": np.full((512, 512), i, dtype=np.float32) for i in range(12)})
    assert len(data) > 8 << 20
    gcs_emulator.upload(GCS_BUCKET, f"digests/{name}", data)
    relay = _GetCounter(urlsplit(gcs_emulator.url).port or 80)
    try:
        use_gcs_env(monkeypatch, clean_env(STORAGE_EMULATOR_HOST=relay.url))
        uri = f"gs://{GCS_BUCKET}/digests/{name}"
        report = await modelaudit.scan(uri, hashes=True, hash_remote=True)
    finally:
        relay.stop()
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    assert file.digests["md5"] == hashlib.md5(data).hexdigest()
    assert relay.media == 2 and relay.ranged == 2
    tail = end_read(name, len(data))
    assert len(data) + tail <= relay.to_client < len(data) + tail + (64 << 10)
