"""gs:// against gcp-storage-emulator, and behind a token-checking front for the private case."""

from __future__ import annotations

import json

import pytest

import modelaudit
from modelaudit.fetchers import resolve
from tests.remote_cloud._remote_cloud_servers import (
    GCS_BUCKET,
    GCS_PRIVATE_BUCKET,
    GcsAuthProxy,
    GcsEmulator,
    clean_env,
    clean_safetensors,
    run_cli,
)


def emulator_env(emulator: GcsEmulator) -> dict[str, str]:
    return clean_env(STORAGE_EMULATOR_HOST=emulator.url)


def private_env(proxy: GcsAuthProxy, signed: bool = True) -> dict[str, str]:
    env = clean_env(GCS_ENDPOINT_URL=proxy.url)
    if signed:
        env["GOOGLE_APPLICATION_CREDENTIALS"] = proxy.key_file
    return env


def use_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ("STORAGE_EMULATOR_HOST", "GCS_ENDPOINT_URL", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
        if name in env:
            monkeypatch.setenv(name, env[name])


def test_cli_malicious_pickle(gcs_emulator: GcsEmulator) -> None:
    uri = f"gs://{GCS_BUCKET}/evil.pkl"
    proc = run_cli(["-f", "json", uri], emulator_env(gcs_emulator))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    critical = [i for i in json.loads(proc.stdout)["issues"] if i["severity"] == "critical"]
    assert critical and all(i["location"].startswith(uri) for i in critical)


def test_cli_clean_safetensors(gcs_emulator: GcsEmulator) -> None:
    proc = run_cli(
        ["-f", "json", f"gs://{GCS_BUCKET}/clean.safetensors"], emulator_env(gcs_emulator)
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, report
    assert [f["status"] for f in report["files"]] == ["complete"]


def test_cli_missing_object_and_bucket(gcs_emulator: GcsEmulator) -> None:
    targets = [f"gs://{GCS_BUCKET}/nope/model.pkl", "gs://no-such-bucket-x/model.pkl"]
    proc = run_cli(["-f", "json", *targets], emulator_env(gcs_emulator))
    assert proc.returncode == 2
    errors = {e["target"]: e["error"] for e in json.loads(proc.stdout)["target_errors"]}
    assert set(errors) == set(targets)
    assert all("no such" in error for error in errors.values())


async def test_api_prefix_sweep(gcs_emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(monkeypatch, emulator_env(gcs_emulator))
    report = await modelaudit.scan([f"gs://{GCS_BUCKET}/sweep/"])
    paths = {f.path: f for f in report.files}
    evil = f"gs://{GCS_BUCKET}/sweep/a/evil.pkl"
    clean = f"gs://{GCS_BUCKET}/sweep/b/clean.safetensors"
    assert set(paths) == {evil, clean}
    assert any(i.severity.value == "critical" for i in paths[evil].issues)
    assert paths[clean].status.value == "complete" and not paths[clean].issues


async def test_reader_ranges_and_stream(
    gcs_emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_env(monkeypatch, emulator_env(gcs_emulator))
    data = clean_safetensors()
    source = resolve(f"gs://{GCS_BUCKET}/clean.safetensors")
    [obj] = [o async for o in source.objects()]
    await source.aclose()
    assert obj.reader is not None and obj.size == len(data) and obj.explicit
    try:
        assert await obj.reader.read_range(3, 40) == data[3:40]
        assert await obj.reader.read_range(len(data) - 4, len(data) + 9) == data[-4:]
        assert b"".join([c async for c in obj.reader.stream(50)]) == data
    finally:
        await obj.reader.aclose()


def test_cli_private_without_credentials_one_line(gcs_private: GcsAuthProxy) -> None:
    proc = run_cli([f"gs://{GCS_PRIVATE_BUCKET}/evil.pkl"], private_env(gcs_private, signed=False))
    assert proc.returncode == 2
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "GOOGLE_" in line]
    assert len(lines) == 1, proc.stdout + proc.stderr
    assert "set GOOGLE_APPLICATION_CREDENTIALS" in lines[0]


def test_cli_private_with_credentials(gcs_private: GcsAuthProxy) -> None:
    env = private_env(gcs_private)
    proc = run_cli(["-v", "-f", "json", f"gs://{GCS_PRIVATE_BUCKET}/evil.pkl"], env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert gcs_private.token not in proc.stdout + proc.stderr
    assert "PRIVATE KEY" not in proc.stdout + proc.stderr
    proc = run_cli(["-f", "json", f"gs://{GCS_PRIVATE_BUCKET}/clean.safetensors"], env)
    assert proc.returncode == 0, proc.stdout


async def test_api_private_sweep_with_credentials(
    gcs_private: GcsAuthProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_env(monkeypatch, private_env(gcs_private))
    report = await modelaudit.scan(f"gs://{GCS_PRIVATE_BUCKET}/sweep")
    assert sorted(f.path for f in report.files) == [
        f"gs://{GCS_PRIVATE_BUCKET}/sweep/a/evil.pkl",
        f"gs://{GCS_PRIVATE_BUCKET}/sweep/b/clean.safetensors",
    ]
    assert report.exit_code == 1


def test_cli_bad_key_file(gcs_private: GcsAuthProxy) -> None:
    env = private_env(gcs_private)
    env["GOOGLE_APPLICATION_CREDENTIALS"] = "/nonexistent/key.json"
    proc = run_cli([f"gs://{GCS_PRIVATE_BUCKET}/evil.pkl"], env)
    assert proc.returncode == 2
    assert "GOOGLE_APPLICATION_CREDENTIALS does not point to a readable key file" in proc.stdout
