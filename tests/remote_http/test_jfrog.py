"""JFrog Artifactory targets against a fake Artifactory (storage API, Range, both token styles)."""

from __future__ import annotations

import json

import pytest

import modelaudit
from modelaudit.findings import FileStatus, IssueSeverity
from tests.remote_http._remote_http_servers import (
    JFROG_ACCESS,
    JFROG_API_KEY,
    FakeArtifactory,
    run_cli,
)


def _url(art: FakeArtifactory, path: str) -> str:
    return f"{art.server.url}/artifactory/{path}"


def test_malicious_file_through_cli(artifactory: FakeArtifactory) -> None:
    url = _url(artifactory, "models/evil/model.pkl")
    proc = run_cli(url, "--format", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    critical = [i for i in json.loads(proc.stdout)["issues"] if i["severity"] == "critical"]
    assert critical and all(i["location"].startswith(url) for i in critical)


async def test_folder_with_deep_list(artifactory: FakeArtifactory) -> None:
    report = await modelaudit.scan(_url(artifactory, "models/clean"))
    assert sorted(f.path for f in report.files) == [
        _url(artifactory, "models/clean/model.safetensors"),
        _url(artifactory, "models/clean/nested/small.safetensors"),
    ]
    assert all(f.status is FileStatus.COMPLETE for f in report.files)
    assert report.exit_code == 0
    assert any("list" in r.path for r in artifactory.server.requests)
    big = 4 * 1024 * 1024
    assert artifactory.server.sent("/artifactory/models/clean/model.safetensors") < big // 16


async def test_folder_walked_without_deep_list(artifactory: FakeArtifactory) -> None:
    artifactory.deep_list = False
    report = await modelaudit.scan(_url(artifactory, "models"))
    paths = sorted(f.path for f in report.files)
    assert paths == [
        _url(artifactory, "models/clean/model.safetensors"),
        _url(artifactory, "models/clean/nested/small.safetensors"),
        _url(artifactory, "models/evil/model.pkl"),
    ]
    assert any(i.severity is IssueSeverity.CRITICAL for i in report.issues)


def test_private_without_token_is_one_clear_line(artifactory: FakeArtifactory) -> None:
    proc = run_cli(_url(artifactory, "private-models/team/model.pkl"))
    assert proc.returncode == 2
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "JFROG_" in ln]
    assert len(lines) == 1, proc.stdout + proc.stderr
    assert "JFROG_API_TOKEN" in lines[0] and "JFROG_ACCESS_TOKEN" in lines[0]
    assert "401" in lines[0]


@pytest.mark.parametrize(
    ("variable", "value", "header", "expected"),
    [
        ("JFROG_API_TOKEN", JFROG_API_KEY, "x-jfrog-art-api", JFROG_API_KEY),
        ("JFROG_ACCESS_TOKEN", JFROG_ACCESS, "authorization", f"Bearer {JFROG_ACCESS}"),
    ],
)
def test_private_with_either_token_style(
    artifactory: FakeArtifactory, variable: str, value: str, header: str, expected: str
) -> None:
    proc = run_cli(
        _url(artifactory, "private-models/team"),
        "--format",
        "json",
        env={variable: value, "JFROG_URL": artifactory.server.url},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert value not in proc.stdout + proc.stderr
    assert any(i["severity"] == "critical" for i in json.loads(proc.stdout)["issues"])
    assert all(r.headers.get(header) == expected for r in artifactory.server.requests)


async def test_refused_token_names_the_variable(
    artifactory: FakeArtifactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JFROG_API_TOKEN", "not-the-right-key")
    monkeypatch.setenv("JFROG_URL", artifactory.server.url)
    report = await modelaudit.scan(_url(artifactory, "private-models/team/model.pkl"))
    (err,) = report.target_errors
    assert "JFROG_API_TOKEN was refused" in err["error"]
    assert "not-the-right-key" not in json.dumps(report.to_dict(), default=str)


async def test_token_not_sent_to_another_host(
    artifactory: FakeArtifactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JFROG_URL", "https://artifactory.example.invalid")
    monkeypatch.setenv("JFROG_API_TOKEN", JFROG_API_KEY)
    report = await modelaudit.scan(_url(artifactory, "models/evil/model.pkl"))
    assert report.files and report.files[0].status is FileStatus.COMPLETE
    assert all("x-jfrog-art-api" not in r.headers for r in artifactory.server.requests)


async def test_missing_object_is_an_error_and_the_sweep_goes_on(
    artifactory: FakeArtifactory,
) -> None:
    report = await modelaudit.scan(
        [
            _url(artifactory, "models/nope/model.pkl"),
            _url(artifactory, "no-such-repo/x.pkl"),
            _url(artifactory, "models/clean/nested/small.safetensors"),
        ]
    )
    assert len(report.target_errors) == 2
    assert all("not found" in e["error"] for e in report.target_errors)
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE
    assert report.exit_code == 2


@pytest.mark.parametrize(
    ("variable", "value"),
    [("JFROG_API_TOKEN", JFROG_API_KEY), ("JFROG_ACCESS_TOKEN", JFROG_ACCESS)],
)
def test_without_jfrog_url_no_token_is_sent_and_the_scan_says_so(
    artifactory: FakeArtifactory, variable: str, value: str
) -> None:
    """A URL with /artifactory/ in it is anyone's to serve: without JFROG_URL the token goes
    nowhere (checked by the server), a public file still scans, a private one names JFROG_URL."""
    public = _url(artifactory, "models/evil/model.pkl")
    private = _url(artifactory, "private-models/team/model.pkl")
    proc = run_cli(public, private, "--format", "json", env={variable: value})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert any(i["severity"] == "critical" for i in report["issues"])
    (err,) = report["target_errors"]
    assert err["target"] == private and "JFROG_URL" in err["error"]
    assert "not sent" in err["error"] and variable in err["error"]
    assert f"{variable} is set but JFROG_URL is not" in proc.stderr
    assert artifactory.server.requests
    for request in artifactory.server.requests:
        assert "x-jfrog-art-api" not in request.headers
        assert "authorization" not in request.headers
    assert value not in proc.stdout + proc.stderr


@pytest.mark.parametrize("deep_list", [True, False])
async def test_hashes_are_artifactorys_checksums(
    artifactory: FakeArtifactory, samples: dict[str, bytes], deep_list: bool
) -> None:
    """SARIF/SBOM hashes from the checksums Artifactory lists, naming the algorithms; the
    scan still reads only the header."""
    import hashlib

    artifactory.deep_list = deep_list
    report = await modelaudit.scan(_url(artifactory, "models/clean"), hashes=True)
    by_path = {f.path: f for f in report.files}
    big = by_path[_url(artifactory, "models/clean/model.safetensors")]
    data = samples["big_safetensors"]
    assert big.sha256 == hashlib.sha256(data).hexdigest()
    assert big.digests["sha1"] == hashlib.sha1(data).hexdigest()
    assert big.digest_source is not None and "Artifactory" in big.digest_source
    sent = artifactory.server.sent("/artifactory/models/clean/model.safetensors")
    assert sent < len(data) // 16


async def test_a_file_without_listed_checksums_takes_the_checksum_header(
    artifactory: FakeArtifactory, samples: dict[str, bytes]
) -> None:
    import hashlib

    from modelaudit.fetchers import resolve

    source = resolve(_url(artifactory, "models/clean/model.safetensors"))
    [obj] = [o async for o in source.objects()]
    await source.aclose()
    assert obj.reader is not None
    obj.reader.digests = {}
    try:
        await obj.reader.read_range(0, 8)
        published = await obj.reader.published_digests()
    finally:
        await obj.reader.aclose()
    assert published == {"sha256": hashlib.sha256(samples["big_safetensors"]).hexdigest()}
    assert "X-Checksum-Sha256" in obj.reader.digest_source
