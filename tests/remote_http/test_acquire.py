"""Range-read acquisition per format, measured by the bytes a real server sent."""

from __future__ import annotations

from typing import Any

import pytest

import modelaudit
from modelaudit.findings import FileStatus
from tests.remote_http._remote_http_servers import CDN, Blob, FakeHub, Server, pin_slow_link

Files = tuple[Server, dict[str, Blob], dict[str, Any]]


@pytest.mark.parametrize(
    ("name", "scanner", "share"),
    [
        ("model.safetensors", "safetensors", 16),
        ("model.onnx", "onnx", 4),
        ("model.gguf", "gguf", 2),
        ("weights.npy", "numpy", 6),
        ("pytorch_model.bin", "pytorch_zip", 4),
    ],
)
async def test_header_only_formats_move_a_fraction(
    files_server: Files, name: str, scanner: str, share: int
) -> None:
    server, blobs, _ = files_server
    pin_slow_link(server.url)
    report = await modelaudit.scan(f"{server.url}/{name}")
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert file.scanner is not None and scanner in file.scanner
    assert not report.findings, [i.message for i in report.findings]
    size = len(blobs[name].data)
    # The head, the tail (where an appended zip would be found) and what the parser needs.
    assert 0 < server.sent() < size // share, f"{server.sent()} of {size} bytes"


async def test_object_arrays_are_downloaded_whole(files_server: Files) -> None:
    server, blobs, _ = files_server
    report = await modelaudit.scan(f"{server.url}/objects.npy")
    (file,) = report.files
    assert file.status is not FileStatus.ERROR, file.status_reason
    assert server.sent() >= len(blobs["objects.npy"].data)


async def test_hashes_download_only_when_asked_to(files_server: Files) -> None:
    """A plain web server publishes no digest: hashes (SARIF, SBOM) alone leave the hash out
    and read a header's worth; --hash-remote downloads the object to hash it."""
    import hashlib

    server, blobs, _ = files_server
    data = blobs["model.safetensors"].data
    report = await modelaudit.scan(f"{server.url}/model.safetensors", hashes=True)
    (file,) = report.files
    assert file.sha256 is None and not file.digests
    assert server.sent() < len(data) // 4
    server.reset()
    report = await modelaudit.scan(f"{server.url}/model.safetensors", hashes=True, hash_remote=True)
    (file,) = report.files
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    assert file.digest_source is None  # computed here, from every byte
    assert len(data) <= server.sent() < 2 * len(data)


async def test_small_objects_are_hashed_from_the_bytes_read(files_server: Files) -> None:
    import hashlib

    server, blobs, _ = files_server
    report = await modelaudit.scan(f"{server.url}/evil.pkl", hashes=True)
    (file,) = report.files
    assert file.sha256 == hashlib.sha256(blobs["evil.pkl"].data).hexdigest()


async def test_unclaimed_listed_files_are_not_downloaded(hub: FakeHub, cdn: CDN) -> None:
    report = await modelaudit.scan("hf://acme/assets")
    files = {f.path: f for f in report.files}
    assert files["hf://acme/assets/blob.dat"].status is FileStatus.SKIPPED
    assert cdn.server.sent() < 128 * 1024
    assert files["hf://acme/assets/model.pkl"].issues


async def test_pickle_in_a_record_torch_would_not_skip_is_fetched(files_server: Files) -> None:
    server, blobs, _ = files_server
    report = await modelaudit.scan(f"{server.url}/hidden.bin")
    critical = [i for i in report.issues if i.severity.value == "critical"]
    assert critical and all("extra/data/0" in (i.location or "") for i in critical)
    assert server.sent() < len(blobs["hidden.bin"].data) // 4


async def test_zip64_pytorch_layout_is_planned(files_server: Files) -> None:
    server, blobs, _ = files_server
    report = await modelaudit.scan(f"{server.url}/zip64.pt")
    critical = [i for i in report.issues if i.severity.value == "critical"]
    assert critical and all("data.pkl" in (i.location or "") for i in critical)
    assert server.sent() < len(blobs["zip64.pt"].data) // 4


def _nested_gguf(depth: int) -> bytes:
    """A GGUF whose one value is an array of arrays nested `depth` deep (then cut short)."""
    import struct

    key = b"general.evil"
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
    return head + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * depth + b"\x00" * 70_000


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("nested.gguf", _nested_gguf(50_000)),
        ("bad.safetensors", (70_000).to_bytes(8, "little") + b"{" + b"x" * 100_000),
        (
            "lying.npy",
            b"\x93NUMPY\x01\x00" + (200).to_bytes(2, "little") + b"{" * 200 + bytes(70_000),
        ),
    ],
)
async def test_hostile_headers_are_never_clean_and_read_as_a_local_copy(
    files_server: Files, name: str, data: bytes, tmp_path: Any
) -> None:
    """A header its parser rejects is judged from the ranges that parser read, exactly as the
    whole file would be judged (the same parser, on the same bytes)."""
    server, blobs, _ = files_server
    blobs[name] = Blob(data)
    report = await modelaudit.scan(f"{server.url}/{name}")
    (file,) = report.files
    assert file.status is not FileStatus.COMPLETE or report.findings
    assert report.exit_code != 0
    local = tmp_path / name
    local.write_bytes(data)
    (whole,) = (await modelaudit.scan(str(local))).files
    assert (file.status, file.status_reason) == (whole.status, whole.status_reason)
    assert [i.message for i in file.issues] == [i.message for i in whole.issues]


@pytest.mark.parametrize("name", ["model.safetensors", "huge_evil.pkl", "model.onnx"])
async def test_hash_remote_streams_once_beside_the_plan(
    files_server: Files, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--hash-remote: the object streams through the hasher while the plan runs. A planned
    format keeps only its planned ranges; a format needing every byte turns that same stream
    into its download (what it passed before fetched again by range), never a second one."""
    import hashlib

    from modelaudit.engine import acquire
    from tests.remote_http._remote_http_servers import EVIL_PICKLE

    monkeypatch.setattr(acquire, "HASH_ALONGSIDE", 0)
    server, blobs, _ = files_server
    filler = 24 << 20
    blobs["huge_evil.pkl"] = Blob(
        b"\x80\x02X" + filler.to_bytes(4, "little") + b"A" * filler + b"0" + EVIL_PICKLE[2:]
    )
    data = blobs[name].data
    plain = await modelaudit.scan(f"{server.url}/{name}")
    server.reset()
    report = await modelaudit.scan(f"{server.url}/{name}", hashes=True, hash_remote=True)
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    assert sorted(i.message for i in report.issues) == sorted(i.message for i in plain.issues)
    whole = [r for r in server.requests if r.headers.get("range") == f"bytes=0-{len(data) - 1}"]
    assert len(whole) == 1
    assert len(data) <= server.sent() < 2 * len(data)
