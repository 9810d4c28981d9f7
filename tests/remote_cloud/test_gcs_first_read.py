"""One GCS key that is its run's only target is sized by its first reads (a ranged media GET
of its head and a suffix one of its end, in parallel), not by a metadata GET before them: one
round trip fewer before the first byte (issue 13). gcp-storage-emulator answers a suffix Range
with the whole object and sends no x-goog-generation, so the scans go through `GcsFront`,
which answers media GETs as GCS does from the emulator's own objects; requests are counted
there, on the server side."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

import modelaudit
from modelaudit.fetchers import ObjectChanged, resolve
from modelaudit.findings import FileStatus
from modelaudit.formats.format import END_READ, FIRST_READ, LONG_END_READ
from tests.remote_cloud._remote_cloud_servers import (
    GCS_BUCKET,
    GcsAuthProxy,
    GcsEmulator,
    GcsFront,
    clean_env,
    run_cli,
)
from tests.remote_cloud.test_gcs import use_env

FIRST_READS = [("media", f"bytes=-{END_READ}"), ("media", f"bytes=0-{FIRST_READ - 1}")]
#: ... of a name that may be a zip (no extension): its end read has room for a large
#: checkpoint's central directory
ZIP_FIRST_READS = [("media", f"bytes=-{LONG_END_READ}"), ("media", f"bytes=0-{FIRST_READ - 1}")]


def _model(fill: float = 0.0) -> bytes:
    from safetensors.numpy import save

    return save({"w": np.full((512, 512), fill, dtype=np.float32)})


@pytest.fixture
def front(gcs_emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[GcsFront]:
    """The emulator behind a front that answers media GETs as GCS does: the scans' endpoint."""
    server = GcsFront(gcs_emulator.url)
    use_env(monkeypatch, clean_env(STORAGE_EMULATOR_HOST=server.url))
    try:
        yield server
    finally:
        server.close()


def _put(emulator: GcsEmulator, key: str, data: bytes) -> str:
    emulator.upload(GCS_BUCKET, key, data)
    return f"gs://{GCS_BUCKET}/{key}"


def _metadata(emulator: GcsEmulator, key: str) -> dict[str, str]:
    url = f"{emulator.url}/storage/v1/b/{GCS_BUCKET}/o/{quote(key, safe='')}"
    with urllib.request.urlopen(url, timeout=10) as response:
        meta: dict[str, str] = json.loads(response.read())
    return meta


def _media(front: GcsFront) -> list[tuple[str, str]]:
    return [r for r in front.requests if r[0] == "media"]


async def test_one_key_takes_its_size_from_the_head_and_end_reads(
    gcs_emulator: GcsEmulator, front: GcsFront
) -> None:
    data = _model()
    uri = _put(gcs_emulator, "first/model.safetensors", data)
    report = await modelaudit.scan(uri)
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert file.size == len(data)
    assert sorted(front.requests) == FIRST_READS


async def test_reads_after_the_first_are_pinned_to_its_generation(
    gcs_emulator: GcsEmulator, front: GcsFront
) -> None:
    """The first reads' x-goog-generation is the metadata's generation and pins the object:
    a later read of a replaced object fails."""
    data = _model()
    key = "first/mutable.safetensors"
    uri = _put(gcs_emulator, key, data)
    generation = _metadata(gcs_emulator, key)["generation"]
    source = resolve(uri, {"one_target": True})
    [obj] = [o async for o in source.objects()]
    await source.aclose()
    assert obj.reader is not None
    try:
        assert sorted(front.requests) == FIRST_READS
        assert obj.size == len(data) and obj.explicit
        assert obj.etag == generation and (obj.locator or {})["generation"] == generation
        assert await obj.reader.read_range(FIRST_READ, FIRST_READ + 8) == data[FIRST_READ:][:8]
        _put(gcs_emulator, key, _model(1.0))
        with pytest.raises(ObjectChanged):
            await obj.reader.read_range(FIRST_READ, FIRST_READ + 8)
    finally:
        await obj.reader.aclose()


async def test_sarif_digests_come_from_a_metadata_get_beside_the_reads(
    gcs_emulator: GcsEmulator, front: GcsFront
) -> None:
    """A run that reports hashes sends the metadata GET beside the two ranged reads, not
    before them: md5 and crc32c exactly as the object's metadata publishes them."""
    import google_crc32c

    data = _model(2.0)
    key = "first/hashed.safetensors"
    uri = _put(gcs_emulator, key, data)
    meta = _metadata(gcs_emulator, key)
    report = await modelaudit.scan(uri, hashes=True)
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert file.digests["md5"] == hashlib.md5(data).hexdigest()
    assert file.digests["md5"] == base64.b64decode(meta["md5Hash"]).hex()
    assert file.digests["crc32c"] == base64.b64decode(meta["crc32c"]).hex()
    assert file.digests["crc32c"] == google_crc32c.Checksum(data).digest().hex()
    assert "md5Hash" in (file.digest_source or "") and "crc32c" in (file.digest_source or "")
    path = f"/storage/v1/b/{GCS_BUCKET}/o/{quote(key, safe='')}"
    assert sorted(front.requests) == sorted([*FIRST_READS, ("meta", f"{path}?alt=json")])


def test_sarif_report_names_the_published_hashes(
    gcs_emulator: GcsEmulator, front: GcsFront
) -> None:
    data = _model(3.0)
    uri = _put(gcs_emulator, "first/report.safetensors", data)
    proc = run_cli(["-f", "sarif", uri], clean_env(STORAGE_EMULATOR_HOST=front.url))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [artifact] = json.loads(proc.stdout)["runs"][0]["artifacts"]
    assert artifact["hashes"]["md5"] == hashlib.md5(data).hexdigest()
    assert sorted(_media(front)) == FIRST_READS and len(front.requests) == 3


async def test_a_key_that_is_not_there_is_listed_as_a_prefix(
    gcs_emulator: GcsEmulator, front: GcsFront
) -> None:
    """A 404 on the first reads falls back to listing the prefix, as the metadata GET's 404
    did; no metadata GET."""
    report = await modelaudit.scan(f"gs://{GCS_BUCKET}/sweep")
    assert {f.path for f in report.files} == {
        f"gs://{GCS_BUCKET}/sweep/a/evil.pkl",
        f"gs://{GCS_BUCKET}/sweep/b/clean.safetensors",
    }
    assert report.exit_code == 1
    assert sorted(front.requests[:2]) == ZIP_FIRST_READS
    metas = [path for kind, path in front.requests if kind == "meta"]
    assert metas and all("prefix=sweep/&" in path for path in metas), metas


async def test_a_folder_target_is_listed_as_before(
    gcs_emulator: GcsEmulator, front: GcsFront
) -> None:
    """(Holds on the old code too: a prefix ending in '/' never had a metadata GET.)"""
    report = await modelaudit.scan(f"gs://{GCS_BUCKET}/sweep/")
    assert len(report.files) == 2 and report.exit_code == 1
    assert front.requests[0][0] == "meta" and "prefix=sweep/&" in front.requests[0][1]
    assert f"bytes=-{LONG_END_READ}" not in {rng for _, rng in front.requests}


async def test_other_runs_keep_the_metadata_get(
    gcs_emulator: GcsEmulator, front: GcsFront, tmp_path: Path
) -> None:
    """--hash-remote (GCS publishes no sha256: the whole object is streamed anyway),
    --cache and a call with several targets ask the metadata first, as before."""
    uri = _put(gcs_emulator, "first/kept.safetensors", _model())
    for kwargs in ({"hashes": True, "hash_remote": True}, {"cache_dir": str(tmp_path)}):
        front.requests.clear()
        report = await modelaudit.scan(uri, **kwargs)  # type: ignore[arg-type]
        assert report.files[0].status is FileStatus.COMPLETE
        assert front.requests[0][0] == "meta", (kwargs, front.requests)
    front.requests.clear()
    await modelaudit.scan([uri, f"gs://{GCS_BUCKET}/evil.pkl"])
    assert [kind for kind, _ in front.requests].count("meta") == 2


@pytest.fixture
def private_front(
    gcs_emulator: GcsEmulator, tmp_path: Path
) -> Iterator[tuple[GcsFront, GcsAuthProxy]]:
    """The front behind the token-checking one: what a private bucket's endpoint answers."""
    inner = GcsFront(gcs_emulator.url)
    proxy = GcsAuthProxy(inner.url, str(tmp_path / "service-account.json"))
    try:
        yield inner, proxy
    finally:
        proxy.close()
        inner.close()


def _ranges(proxy: GcsAuthProxy) -> list[tuple[str, str]]:
    return sorted(("media" if "alt=media" in path else path, rng) for path, rng in proxy.requests)


def test_denied_without_credentials_names_the_variable(
    private_front: tuple[GcsFront, GcsAuthProxy],
) -> None:
    """The first reads' 401 says what the metadata GET's said: set the variable."""
    _inner, proxy = private_front
    proc = run_cli([f"gs://{GCS_BUCKET}/evil.pkl"], clean_env(GCS_ENDPOINT_URL=proxy.url))
    assert proc.returncode == 2
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "GOOGLE_" in line]
    assert len(lines) == 1, proc.stdout + proc.stderr
    assert "set GOOGLE_APPLICATION_CREDENTIALS" in lines[0]
    assert _ranges(proxy) == ZIP_FIRST_READS


def test_denied_service_account_names_the_variable(
    private_front: tuple[GcsFront, GcsAuthProxy],
) -> None:
    """A 403 for a valid token names the service account's variable and its permissions."""
    inner, proxy = private_front
    inner.deny = 403
    env = clean_env(GCS_ENDPOINT_URL=proxy.url, GOOGLE_APPLICATION_CREDENTIALS=proxy.key_file)
    proc = run_cli(["-f", "json", f"gs://{GCS_BUCKET}/evil.pkl"], env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [err] = json.loads(proc.stdout)["target_errors"]
    assert "service account in GOOGLE_APPLICATION_CREDENTIALS" in err["error"], err
    assert proxy.token not in proc.stdout + proc.stderr
    assert sorted(inner.requests) == ZIP_FIRST_READS


def test_private_object_with_credentials_reads_first(
    private_front: tuple[GcsFront, GcsAuthProxy],
) -> None:
    inner, proxy = private_front
    env = clean_env(GCS_ENDPOINT_URL=proxy.url, GOOGLE_APPLICATION_CREDENTIALS=proxy.key_file)
    proc = run_cli(["-f", "json", f"gs://{GCS_BUCKET}/evil.pkl"], env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert sorted(inner.requests) == ZIP_FIRST_READS
