"""Hugging Face targets against a fake Hub (huggingface_hub's own listing code) and its CDN."""

from __future__ import annotations

import json

import pytest

import modelaudit
from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.report import ScanReport
from tests.remote_http._remote_http_servers import CDN, HF_GOOD_TOKEN, FakeHub, run_cli


def _critical(report: ScanReport) -> list[str]:
    return [i.location or "" for i in report.issues if i.severity is IssueSeverity.CRITICAL]


def _by_path(report: ScanReport) -> dict[str, object]:
    return {f.path: f for f in report.files}


def test_malicious_repo_through_cli(hub: FakeHub) -> None:
    proc = run_cli("hf://acme/evil", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    critical = [i for i in data["issues"] if i["severity"] == "critical"]
    locations = {i["location"].split(" (pos")[0] for i in critical}
    assert "hf://acme/evil/model.pkl" in locations
    assert any(loc.startswith("hf://acme/evil/pytorch_model.bin") for loc in locations)
    assert not any("/tmp/" in (i.get("location") or "") for i in data["issues"])


async def test_clean_repo_paginated_through_async_api(hub: FakeHub) -> None:
    report = await modelaudit.scan("https://huggingface.co/acme/clean")
    paths = set(_by_path(report))
    base = "https://huggingface.co/acme/clean/blob/main/"
    assert {base + "model.safetensors", base + "sub/weights.safetensors"} <= paths
    assert base + "config.json" in paths
    assert not report.findings, [i.message for i in report.findings]
    assert report.exit_code == 0
    tree_calls = [r.path for r in hub.server.requests if "/tree/" in r.path]
    assert len(tree_calls) >= 3, "the listing must follow Link pagination"


async def test_safetensors_scan_transfers_only_the_header(hub: FakeHub, cdn: CDN) -> None:
    report = await modelaudit.scan("hf://acme/clean/model.safetensors")
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE
    assert file.scanner and "safetensors" in file.scanner
    assert file.size is not None and file.size > 4_000_000
    sent = cdn.server.sent()
    # The head, and the tail where an appended zip would be found.
    assert 0 < sent <= 136 * 1024, f"{sent} bytes sent for a {file.size}-byte object"


async def test_pytorch_zip_scan_skips_tensor_data(hub: FakeHub, cdn: CDN) -> None:
    report = await modelaudit.scan("hf://acme/torch/pytorch_model.bin")
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert not report.findings
    assert file.size is not None
    assert cdn.server.sent() < file.size // 4


async def test_evil_pytorch_zip_found_from_ranges(hub: FakeHub, cdn: CDN) -> None:
    report = await modelaudit.scan("hf://acme/evil/pytorch_model.bin")
    assert _critical(report)
    assert all(loc.startswith("hf://acme/evil/pytorch_model.bin") for loc in _critical(report))


async def test_cdn_never_sees_the_token(
    hub: FakeHub, cdn: CDN, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", HF_GOOD_TOKEN)
    report = await modelaudit.scan("hf://acme/private")
    critical = _critical(report)
    assert critical and all(loc.startswith("hf://acme/private/model.pkl") for loc in critical)
    resolves = [r for r in hub.server.requests if "/resolve/" in r.path]
    assert resolves and all(r.headers.get("authorization") for r in resolves)
    for request in cdn.server.requests:
        assert "authorization" not in request.headers
        assert HF_GOOD_TOKEN not in json.dumps(request.headers)
    assert HF_GOOD_TOKEN not in json.dumps(report.to_dict(), default=str)


def test_private_repo_without_token_is_one_clear_line(hub: FakeHub) -> None:
    proc = run_cli("hf://acme/private")
    assert proc.returncode == 2
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "HF_TOKEN" in ln]
    assert len(lines) == 1, proc.stdout + proc.stderr
    assert "hf://acme/private" in lines[0] and "401" in lines[0]
    assert "Traceback" not in proc.stderr


def test_private_repo_with_token_through_cli(hub: FakeHub) -> None:
    proc = run_cli(
        "hf://acme/private", "--format", "json", "--verbose", env={"HF_TOKEN": HF_GOOD_TOKEN}
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert HF_GOOD_TOKEN not in proc.stdout + proc.stderr
    assert any(i["severity"] == "critical" for i in json.loads(proc.stdout)["issues"])


@pytest.mark.parametrize("bare", [False, True])
@pytest.mark.parametrize("repo", ["acme/private", "acme/clean"])
async def test_refused_token_names_the_variable(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch, bare: bool, repo: str
) -> None:
    """A wrong HF_TOKEN, on a private or a public repo, answered with or without the Hub's
    X-Error-Code: one error naming the variable and saying it was refused."""
    hub.bare_401 = bare
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_token_value")
    report = await modelaudit.scan(f"hf://{repo}")
    (err,) = report.target_errors
    assert "HF_TOKEN" in err["error"] and "refused" in err["error"], err
    assert "hf_wrong_token_value" not in json.dumps(report.to_dict(), default=str)
    assert report.exit_code == 2


@pytest.mark.parametrize("bare", [False, True])
async def test_token_refused_on_download_names_the_variable(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch, bare: bool
) -> None:
    """The listing works but /resolve/ refuses the token (revoked mid-scan)."""
    from modelaudit.fetchers import resolve

    hub.bare_401 = bare
    source = resolve("hf://acme/clean/model.safetensors")
    [obj] = [o async for o in source.objects()]
    await source.aclose()
    monkeypatch.setenv("HF_TOKEN", "hf_revoked_token_value")
    source = resolve("hf://acme/clean/model.safetensors")
    assert obj.reader is not None
    obj.reader.client = source.client.share()  # type: ignore[attr-defined]
    try:
        with pytest.raises(modelaudit.fetchers.AuthenticationError) as caught:
            await obj.reader.read_range(0, 8)
    finally:
        await obj.reader.aclose()
        await source.aclose()
    assert "HF_TOKEN" in str(caught.value) and "refused" in str(caught.value)


async def test_gated_repo_without_token(hub: FakeHub) -> None:
    report = await modelaudit.scan("hf://acme/gated")
    (err,) = report.target_errors
    assert "gated" in err["error"] and "HF_TOKEN" in err["error"]
    assert report.exit_code == 2


async def test_missing_objects_are_errors_and_the_sweep_goes_on(hub: FakeHub) -> None:
    report = await modelaudit.scan(
        [
            "hf://acme/evil/nope.pkl",
            "hf://acme/nothing-here",
            "hf://acme/clean@no-such-rev",
            "https://huggingface.co/acme/clean/blob/main/sub/weights.safetensors",
        ]
    )
    errors = {e["target"]: e["error"] for e in report.target_errors}
    assert "not found" in errors["hf://acme/evil/nope.pkl"]
    assert "not found" in errors["hf://acme/nothing-here"]
    assert "revision" in errors["hf://acme/clean@no-such-rev"]
    (file,) = report.files
    assert file.path == "https://huggingface.co/acme/clean/blob/main/sub/weights.safetensors"
    assert file.status is FileStatus.COMPLETE
    assert report.exit_code == 2


async def test_dataset_repo(hub: FakeHub) -> None:
    report = await modelaudit.scan("https://huggingface.co/datasets/acme/data")
    assert [f.path for f in report.files] == [
        "https://huggingface.co/datasets/acme/data/blob/main/train/data.pkl"
    ]
    assert _critical(report)
    report = await modelaudit.scan("hf://datasets/acme/data/train")
    assert [f.path for f in report.files] == ["hf://datasets/acme/data/train/data.pkl"]


async def test_tree_blob_and_resolve_urls(hub: FakeHub) -> None:
    report = await modelaudit.scan("https://huggingface.co/acme/clean/tree/main/sub")
    assert [f.path for f in report.files] == [
        "https://huggingface.co/acme/clean/blob/main/sub/weights.safetensors"
    ]
    report = await modelaudit.scan("https://huggingface.co/acme/evil/resolve/main/model.pkl")
    assert [f.path for f in report.files] == [
        "https://huggingface.co/acme/evil/blob/main/model.pkl"
    ]
    assert _critical(report)
    report = await modelaudit.scan("https://huggingface.co/bert-base-uncased")
    assert [f.path for f in report.files] == [
        "https://huggingface.co/bert-base-uncased/blob/main/model.safetensors"
    ]


async def test_cdn_ignoring_range_still_scans_correctly(hub: FakeHub, cdn: CDN) -> None:
    cdn.honour_range = False
    report = await modelaudit.scan("hf://acme/evil")
    files = _by_path(report)
    assert all(f.status is FileStatus.COMPLETE for f in report.files)  # type: ignore[attr-defined]
    assert "hf://acme/evil/model.safetensors" in files
    assert any(loc.startswith("hf://acme/evil/pytorch_model.bin") for loc in _critical(report))


async def test_retries_on_503_and_429_then_success(hub: FakeHub, cdn: CDN) -> None:
    cdn.faults.plan["/blobs/"] = [503, 429, 503]
    report = await modelaudit.scan("hf://acme/evil/model.pkl")
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE
    assert _critical(report)
    assert cdn.faults.plan["/blobs/"] == []


async def test_persistent_failure_is_an_error_never_clean(
    hub: FakeHub, cdn: CDN, quick_retries: None
) -> None:
    cdn.faults.plan["/blobs/"] = [503] * 50
    report = await modelaudit.scan("hf://acme/clean/sub/weights.safetensors")
    (file,) = report.files
    assert file.status is FileStatus.ERROR
    assert "503" in (file.status_reason or "")
    assert report.exit_code == 2


async def test_object_changing_mid_scan(hub: FakeHub) -> None:
    blob = hub.blobs[("model", "acme/torch", "pytorch_model.bin")]
    blob.changed = blob.data[:100] + bytes([blob.data[100] ^ 0xFF]) + blob.data[101:]
    blob.change_after = 1
    report = await modelaudit.scan("hf://acme/torch/pytorch_model.bin")
    (file,) = report.files
    assert file.status is FileStatus.ERROR
    assert "changed" in (file.status_reason or "")
    assert report.exit_code == 2


def test_sync_api_with_the_reference_example(hub: FakeHub) -> None:
    from modelaudit.core import scan_model_directory_or_file

    result = scan_model_directory_or_file("https://huggingface.co/bert-base-uncased")
    assert result["files_scanned"] == 1
    assert not result["has_errors"]
    assert not [i for i in result["issues"] if i["severity"] in ("warning", "critical")]


async def test_files_listed_before_a_failing_page_are_still_scanned(hub: FakeHub) -> None:
    hub.faults.plan["cursor=4"] = [404]
    report = await modelaudit.scan("hf://acme/clean")
    paths = {f.path for f in report.files}
    assert {"hf://acme/clean/README.md", "hf://acme/clean/model.safetensors"} <= paths
    assert "hf://acme/clean/sub/weights.safetensors" not in paths
    assert len(report.target_errors) == 1
    assert report.exit_code == 2


async def test_revision_is_pinned_to_one_commit(hub: FakeHub) -> None:
    report = await modelaudit.scan("hf://acme/clean@main/sub")
    assert [f.path for f in report.files] == ["hf://acme/clean@main/sub/weights.safetensors"]
    assert report.files[0].status is FileStatus.COMPLETE
    sha = hub.repos[("model", "acme/clean")].sha
    resolves = [r.path for r in hub.server.requests if "/resolve/" in r.path]
    assert resolves and all(f"/resolve/{sha}/" in p for p in resolves)


def test_hub_set_up_never_blocks_the_event_loop(hub: FakeHub) -> None:
    """huggingface_hub and httpx are imported and their clients built in threads: in a fresh
    process, a ticker task beside a first and a later Hub repo scan is never held up by
    running code for 0.1 s (the first scan once held it 363 ms)."""
    import os

    from tests.remote_http._remote_loop_probe import busy_stalls

    out = busy_stalls("hf://acme/evil", dict(os.environ), threshold=0.1)
    assert out["exit_code"] == 1
    assert not out["busy"], out["busy"]


async def test_blacklist_matches_the_repository_id(hub: FakeHub) -> None:
    """`--blacklist deepseek` must stop `hf://deepseek-ai/...` although no file in it is
    named so: the pattern is matched against the repository id too (case-insensitively)."""
    report = await modelaudit.scan("hf://acme/torch", blacklist_patterns=["ACME/TOR"])
    (file,) = report.files
    hits = [i for i in file.issues if i.rule and "BLACKLIST" in str(i.rule).upper()] or [
        i for i in file.issues if "Blacklisted" in i.message
    ]
    assert len(hits) == 1 and hits[0].severity is IssueSeverity.CRITICAL
    assert "acme/torch" in hits[0].message
    assert report.exit_code == 1
    report = await modelaudit.scan("hf://acme/torch", blacklist_patterns=["deepseek"])
    assert report.exit_code == 0, [i.message for i in report.issues]
