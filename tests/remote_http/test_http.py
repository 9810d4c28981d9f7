"""Plain http(s) URLs: ranged reads, servers ignoring Range, retries, ETag changes, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import modelaudit
from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.report import ScanReport
from tests.remote_http._remote_http_servers import Blob, Server, run_cli

Files = tuple[Server, dict[str, Blob], dict[str, Any]]


def _critical(report: ScanReport) -> list[str]:
    return [i.location or "" for i in report.issues if i.severity is IssueSeverity.CRITICAL]


def test_malicious_pickle_through_cli(files_server: Files) -> None:
    server, _, _ = files_server
    proc = run_cli(f"{server.url}/evil.pkl")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{server.url}/evil.pkl" in proc.stdout


async def test_clean_safetensors_reads_only_the_header(files_server: Files) -> None:
    server, blobs, _ = files_server
    report = await modelaudit.scan(f"{server.url}/model.safetensors")
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE
    assert not report.findings
    size = len(blobs["model.safetensors"].data)
    assert file.size == size
    assert server.sent() <= 136 * 1024 < size  # the head, and the tail for appended zips
    assert all("range" in r.headers for r in server.requests if r.method == "GET")


async def test_server_ignoring_range(files_server: Files) -> None:
    server, _, opts = files_server
    opts["range"] = False
    report = await modelaudit.scan(
        [f"{server.url}/model.safetensors", f"{server.url}/evil_model.bin"]
    )
    assert all(f.status is FileStatus.COMPLETE for f in report.files), [
        f.status_reason for f in report.files
    ]
    assert any(loc.startswith(f"{server.url}/evil_model.bin") for loc in _critical(report))
    clean = next(f for f in report.files if f.path.endswith("model.safetensors"))
    assert not [i for i in clean.issues if i.severity is not IssueSeverity.INFO]


async def test_retries_then_success(files_server: Files) -> None:
    server, _, opts = files_server
    opts["faults"].plan["/evil.pkl"] = [503, 429, 500]
    report = await modelaudit.scan(f"{server.url}/evil.pkl")
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE
    assert _critical(report)
    assert opts["faults"].plan["/evil.pkl"] == []


def test_one_backoff_with_full_jitter_and_retry_after_as_a_floor() -> None:
    from modelaudit.fetchers import backoff

    assert all(backoff.delay(0, "2") >= 2 for _ in range(20))
    assert all(0 <= backoff.delay(10) <= backoff.MAX_DELAY for _ in range(200))
    assert backoff.delay(0, "Wed, 21 Oct 2015 07:28:00 GMT") <= backoff.BASE_DELAY + 0.1
    # Full jitter draws from [0, ceiling]: half the pauses fall in the lower half.
    ceiling = backoff.BASE_DELAY * 2**3
    pauses = [backoff.delay(3) for _ in range(400)]
    assert max(pauses) <= ceiling
    assert sum(p < ceiling / 2 for p in pauses) > 100


async def test_persistent_failure_is_an_error(files_server: Files, quick_retries: None) -> None:
    server, _, opts = files_server
    opts["faults"].plan["/evil.pkl"] = [502] * 100
    report = await modelaudit.scan(f"{server.url}/evil.pkl")
    assert report.exit_code == 2
    assert not report.files or report.files[0].status is FileStatus.ERROR
    errors = [e["error"] for e in report.target_errors] + [
        f.status_reason or "" for f in report.files
    ]
    assert any("502" in e for e in errors)


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.safetensors"])
async def test_object_changing_between_reads(
    files_server: Files, name: str, tmp_path: Path
) -> None:
    """A later read (for safetensors, the end read sent beside the head read by the
    listing) sees another ETag: never scanned from a mix of two versions. The first answer
    taken pins the version: the old one, and a later read reports the change; or (the two
    first reads race) the new one, and the scan is of the new version alone, as a scan of
    its bytes on disk says."""
    server, blobs, _ = files_server
    blob = blobs[name]
    blob.changed = b"\x00" * len(blob.data)
    blob.change_after = 1
    report = await modelaudit.scan(f"{server.url}/{name}")
    (file,) = report.files
    if file.status is FileStatus.ERROR:
        assert "changed" in (file.status_reason or "")
        return
    local = tmp_path / name
    local.write_bytes(blob.changed)
    (expected,) = (await modelaudit.scan(str(local))).files
    assert (file.status, file.format, file.status_reason) == (
        expected.status,
        expected.format,
        expected.status_reason,
    )


@pytest.mark.parametrize("head", [405, 403])
async def test_missing_url_and_refused_head(files_server: Files, head: int) -> None:
    server, _, opts = files_server
    opts["head"] = head
    report = await modelaudit.scan([f"{server.url}/missing.pkl", f"{server.url}/evil.pkl"])
    (err,) = report.target_errors
    assert "not found" in err["error"]
    (file,) = report.files
    assert file.size is not None and _critical(report)


def test_listed_size_over_max_size_is_not_fetched(files_server: Files) -> None:
    from modelaudit.formats.format import END_READ, FIRST_READ

    server, blobs, _ = files_server
    proc = run_cli(f"{server.url}/model.safetensors", "--max-size", "100")
    assert proc.returncode != 0
    assert "too large" in proc.stdout.lower()
    # the listing took the size from its first reads (head and end): nothing beyond them
    read = FIRST_READ + END_READ
    assert 0 < server.sent("/model.safetensors") <= read < len(blobs["model.safetensors"].data)
    assert [r.method for r in server.requests] == ["GET", "GET"]


async def test_stream_cut_midway_resumes_with_a_range(files_server: Files) -> None:
    server, blobs, opts = files_server
    opts["cut"]["big_evil.pkl"] = [100_000]
    # (two targets: neither listing reads ahead, so the cut falls on acquisition's reads)
    report = await modelaudit.scan([f"{server.url}/big_evil.pkl", f"{server.url}/evil.pkl"])
    (file,) = [f for f in report.files if f.path.endswith("/big_evil.pkl")]
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert _critical(report)
    assert opts["cut"]["big_evil.pkl"] == []
    ranges = [r.headers.get("range", "bytes=0-") for r in server.requests if r.method == "GET"]
    starts = [int(r[len("bytes=") :].split("-")[0]) for r in ranges]
    # the request cut 100 kB into its body is resumed exactly where it stopped
    assert any(a + 100_000 in starts for a in starts), ranges
    assert file.size == len(blobs["big_evil.pkl"].data)


@pytest.mark.parametrize("fetch_jobs", [1, 2])
async def test_fetch_concurrency_is_bounded(files_server: Files, fetch_jobs: int) -> None:
    server, _, opts = files_server
    opts["delay"] = 0.2
    names = ["evil.pkl", "big_evil.pkl", "model.safetensors", "weights.npy", "model.onnx"]
    report = await modelaudit.scan([f"{server.url}/{n}" for n in names], fetch_jobs=fetch_jobs)
    assert len(report.files) == len(names)
    # objects in flight are bounded; one object's independent ranges go out together
    assert opts["peak_objects"] == fetch_jobs


async def _reader(url: str) -> Any:
    from modelaudit.fetchers import resolve

    source = resolve(url)
    [obj] = [o async for o in source.objects()]
    await source.aclose()
    return obj.reader


async def test_stream_cut_many_times_with_progress_completes(files_server: Files) -> None:
    """Seven cuts, each after 40 kB of new bytes: more cuts than retries, yet every resumed
    request made progress, so the download completes."""
    server, blobs, opts = files_server
    opts["cut"]["big_evil.pkl"] = [40_000] * 7
    reader = await _reader(f"{server.url}/big_evil.pkl")
    try:
        data = b"".join([chunk async for chunk in reader.stream()])
    finally:
        await reader.aclose()
    assert data == blobs["big_evil.pkl"].data
    assert opts["cut"]["big_evil.pkl"] == []
    starts = [r.headers.get("range", "") for r in server.requests if r.method == "GET"]
    assert starts[-8:] == [""] + [f"bytes={40_000 * i}-" for i in range(1, 8)]


async def test_stream_cut_without_progress_gives_up(
    files_server: Files, quick_retries: None
) -> None:
    from modelaudit.fetchers import TransientFetchError, backoff

    server, _, opts = files_server
    opts["cut"]["big_evil.pkl"] = [0] * 20
    reader = await _reader(f"{server.url}/big_evil.pkl")
    server.reset()
    try:
        with pytest.raises(TransientFetchError, match="after 5 attempts"):
            async for _ in reader.stream():
                pass
    finally:
        await reader.aclose()
    assert len([r for r in server.requests if r.method == "GET"]) == backoff.ATTEMPTS


async def test_ranged_read_resumes_a_cut_range(files_server: Files) -> None:
    server, blobs, opts = files_server
    opts["cut"]["big_evil.pkl"] = [10_000, 10_000]
    reader = await _reader(f"{server.url}/big_evil.pkl")
    server.reset()
    try:
        data = await reader.read_range(1000, 31_000)
    finally:
        await reader.aclose()
    assert data == blobs["big_evil.pkl"].data[1000:31_000]
    ranges = [r.headers.get("range") for r in server.requests]
    assert ranges == ["bytes=1000-30999", "bytes=11000-30999", "bytes=21000-30999"]


PRESIGNED = {
    "X-Amz-Signature": "SigCanary0001",
    "X-Amz-Credential": "AKIACANARY/20260101/us-east-1/s3/aws4_request",
    "X-Amz-Security-Token": "StCanary0002",
    "Signature": "SigCanary0003",
    "sig": "SigCanary0004",
    "token": "TokCanary0005",
    "access_token": "TokCanary0006",
}


def test_presigned_query_values_are_masked_in_every_format(
    files_server: Files, tmp_path: Any
) -> None:
    """A failed presigned URL is reported (target errors, the text error line, SARIF, SBOM,
    stderr) with its query values masked."""
    from urllib.parse import urlencode

    server, _, _ = files_server
    target = f"{server.url}/missing.pkl?{urlencode(PRESIGNED)}&X-Amz-Expires=300"
    seen = {}
    for fmt in ("text", "json", "sarif"):
        out, sbom = tmp_path / f"report.{fmt}", tmp_path / f"sbom-{fmt}.json"
        proc = run_cli(target, "-f", fmt, "-o", str(out), "--sbom", str(sbom))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        seen[fmt] = out.read_text()
        seen[f"sbom-{fmt}"] = sbom.read_text()
        seen[f"stderr-{fmt}"] = proc.stderr
        assert f"{server.url}/missing.pkl" in proc.stderr  # --output: errors on stderr too
    proc = run_cli(target)
    seen["stdout"] = proc.stdout
    for name, text in seen.items():
        for value in PRESIGNED.values():
            assert value not in text, (name, value)
            assert value.replace("/", "%2F") not in text, (name, value)
    import json

    [err] = json.loads(seen["json"])["target_errors"]
    assert err["target"].startswith(f"{server.url}/missing.pkl?X-Amz-Signature=***")
    assert "X-Amz-Expires=300" in err["target"]
    assert "not found" in err["error"]
    assert f"ERROR: {server.url}/missing.pkl?X-Amz-Signature=***" in seen["stdout"]


def test_cli_does_not_import_httpx_command_line_client(files_server: Files) -> None:
    """A remote scan's first request waits for httpx's import: the CLI keeps out the part of
    it that only httpx's own command line uses (click, rich, pygments; 30-40 ms), in its own
    process only."""
    import subprocess
    import sys

    server, _, _ = files_server
    probe = (
        "import atexit, os, sys\n"
        "pid = os.getpid()\n"
        "def said():\n"
        "    if os.getpid() == pid:\n"
        "        loaded = sorted(m for m in ('httpx', 'httpx._main', 'rich', 'click') if sys.modules.get(m) is not None)\n"
        "        print('LOADED', ','.join(loaded), file=sys.stderr)\n"
        "atexit.register(said)\n"
        "sys.argv = ['modelaudit', 'scan', '--no-progress', '-f', 'json', sys.argv[1]]\n"
        "from modelaudit.cli.main import console\n"
        "console()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, f"{server.url}/model.safetensors"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("LOADED")]
    # (a plain URL's first reads go over http.client: httpx may not be imported at all)
    assert line.split()[1:] in ([], ["httpx"]), line
    import httpx

    assert callable(httpx.main)  # a library caller's httpx keeps its command line
