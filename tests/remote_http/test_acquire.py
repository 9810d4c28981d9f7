"""Range-read acquisition per format, measured by the bytes a real server sent."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import modelaudit
from modelaudit.findings import FileStatus
from modelaudit.formats.format import end_read
from tests.remote_http._relay import Relay
from tests.remote_http._remote_http_servers import (
    CDN,
    Blob,
    FakeHub,
    Server,
    pin_slow_link,
    run_cli,
)

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


@pytest.mark.parametrize("beside", [True, False], ids=["tail-beside", "tail-off-stream"])
@pytest.mark.parametrize(
    "name", ["model.safetensors", "huge_evil.pkl", "model.onnx", "model.gguf", "pytorch_model.bin"]
)
async def test_hash_remote_reads_the_object_once_and_nothing_else(
    files_server: Files, name: str, beside: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--hash-remote without a published digest: the object streams once through the hasher
    and the plan's reads are taken off that stream, the tail too where the stream's first
    bytes came slowly, else read by range beside it (a planned format: the stream brings
    the tail last), or the stream lands whole (a format needing every byte): one GET of the
    whole object and at most that tail read."""
    import hashlib

    from modelaudit.engine import acquire
    from tests.remote_http._remote_http_servers import EVIL_PICKLE

    monkeypatch.setattr(acquire, "TAP_ABOVE", 0)
    monkeypatch.setattr(acquire, "BESIDE_WITHIN", math.inf if beside else -1.0)
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
    gets = [r.headers.get("range", "") for r in server.requests if r.method == "GET"]
    tail = end_read(name, len(data))
    ranged = [f"bytes={len(data) - tail}-{len(data) - 1}"] if beside else []
    if name == "huge_evil.pkl":
        ranged = []
    assert sorted(gets) == sorted(["", *ranged])
    assert server.sent() == len(data) + (tail if ranged else 0)


class _Order:
    """What the scan's progress hears, in order, with what the server did meanwhile: the
    server holds the last 64 KiB of the whole-object GET until the scan is heard to have
    ended (`scanned`), or for at most a minute."""

    def __init__(self) -> None:
        import threading

        self.events: list[str] = []
        self.scanned_event = threading.Event()

    def hold(self, seen: Any) -> None:
        # the whole object's stream (no Range: the listing opened it)
        if seen.headers.get("range", "bytes=0-").startswith("bytes=0-"):
            heard = self.scanned_event.wait(60)
            self.events.append("stream end sent" if heard else "stream end sent unheard")

    def scanned(self, uri: str) -> None:
        self.events.append("scanned")
        self.scanned_event.set()

    def __call__(self, file: Any) -> None:
        self.events.append(f"reported {file.sha256}")


async def test_hash_remote_scans_while_the_stream_is_being_hashed(
    files_server: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--hash-remote without a published digest: the file's scan runs as soon as the plan's
    reads are served, while the rest of the object still streams through the hasher, and
    its result waits for the hash. The server holds the end of the stream until the scan
    is heard to have ended (the old order, scanning after the last byte, never gets there)
    and the report, with the sha256 of every byte, comes after the stream's end."""
    import hashlib

    from safetensors.numpy import save

    from modelaudit.engine import acquire

    # the tail beside the stream, however long the machine took to bring the first bytes
    monkeypatch.setattr(acquire, "BESIDE_WITHIN", math.inf)
    server, blobs, _ = files_server
    data = save({f"w{i}": np.full((512, 512), i, dtype=np.float32) for i in range(20)})
    assert len(data) > 16 << 20
    blobs["held.safetensors"] = Blob(data)
    order = _Order()
    server.hold = order.hold
    report = await modelaudit.scan(
        f"{server.url}/held.safetensors", hashes=True, hash_remote=True, progress=order
    )
    digest = hashlib.sha256(data).hexdigest()
    assert order.events == ["scanned", "stream end sent", f"reported {digest}"]
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert file.sha256 == digest
    gets = sorted(r.headers.get("range", "") for r in server.requests if r.method == "GET")
    tail = end_read("held.safetensors", len(data))
    assert gets == sorted(["", f"bytes={len(data) - tail}-{len(data) - 1}"])


async def test_hash_remote_stream_failing_after_the_scan_is_an_error_with_the_scan_kept(
    files_server: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream breaks after the file was scanned (the connection is cut short of its
    end, and the object is gone when the read resumes): the file is an error naming the
    fetch failure, never clean, and keeps what its scan found (its scanner), with no hash."""
    from safetensors.numpy import save

    from modelaudit.engine import acquire

    monkeypatch.setattr(acquire, "BESIDE_WITHIN", math.inf)
    server, blobs, _ = files_server
    data = save({f"w{i}": np.full((512, 512), i, dtype=np.float32) for i in range(20)})
    blobs["cut.safetensors"] = Blob(data)
    order = _Order()

    def cut(seen: Any) -> bool:
        if not seen.headers.get("range", "bytes=0-").startswith("bytes=0-"):
            return True
        order.hold(seen)
        blobs.pop("cut.safetensors", None)
        return False

    server.hold = cut
    report = await modelaudit.scan(
        f"{server.url}/cut.safetensors", hashes=True, hash_remote=True, progress=order
    )
    assert order.events == ["scanned", "stream end sent", "reported None"]
    (file,) = report.files
    assert file.status is FileStatus.ERROR
    assert file.status_reason is not None and "not found" in file.status_reason.lower()
    assert file.scanner is not None and file.sha256 is None


def _onnx_of(tensors: int, floats: int) -> bytes:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.full(floats, i, np.float32), name=f"w{i}")
        for i in range(tensors)
    ]
    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [floats])
    node = helper.make_node("Add", ["x", "w0"], ["y"], name="add")
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [floats])
    graph = helper.make_graph([node], "g", [value], [out], initializer=inits)
    return bytes(helper.make_model(graph).SerializeToString())


def test_cli_sarif_hash_remote_of_many_tensors_is_one_get(files_server: Files) -> None:
    """`modelaudit scan URL --format sarif --hash-remote` as a user runs it, through a relay
    adding 50 ms: an ONNX model of 96 embedded tensors (above the size whose plan is taken
    off the stream) costs one GET of the whole object and at most one of its tail beside
    it (none if the machine was slow to bring the stream's first bytes), counted by the
    server, and SARIF carries the sha256 of every byte."""
    import hashlib
    import json

    server, blobs, _ = files_server
    data = _onnx_of(96, 48 * 1024)
    assert len(data) > 16 << 20
    blobs["many.onnx"] = Blob(data)
    relay = Relay(int(server.url.rsplit(":", 1)[1]), latency=0.05)
    try:
        server.reset()
        proc = run_cli(f"{relay.url}/many.onnx", "--format", "sarif", "--hash-remote")
    finally:
        relay.stop()
    assert proc.returncode == 0, proc.stderr
    (artifact,) = json.loads(proc.stdout)["runs"][0]["artifacts"]
    assert artifact["hashes"]["sha-256"] == hashlib.sha256(data).hexdigest()
    gets = [r.headers.get("range", "") for r in server.requests if r.method == "GET"]
    tail = end_read("many.onnx", len(data))
    whole, end = "", f"bytes={len(data) - tail}-{len(data) - 1}"
    assert sorted(gets) in ([whole], sorted([whole, end]))
    assert server.sent() == len(data) + (tail if end in gets else 0)
