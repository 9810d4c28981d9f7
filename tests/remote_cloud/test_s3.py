"""s3:// and r2:// against moto servers with IAM enforced."""

from __future__ import annotations

import json
import os

import anyio
import pytest

import modelaudit
from modelaudit.fetchers import ObjectChanged, resolve
from tests.remote_cloud._remote_cloud_servers import (
    EVIL_PICKLE,
    R2_BUCKET,
    S3_BUCKET,
    FlakyProxy,
    MotoServer,
    clean_env,
    clean_safetensors,
    run_cli,
)


def s3_env(server: MotoServer, signed: bool = True) -> dict[str, str]:
    extra = {"AWS_ENDPOINT_URL": server.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    if signed:
        extra |= {"AWS_ACCESS_KEY_ID": server.key_id, "AWS_SECRET_ACCESS_KEY": server.secret}
    return clean_env(**extra)


def use_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)


def test_cli_malicious_pickle_is_critical_with_remote_location(s3_server: MotoServer) -> None:
    uri = f"s3://{S3_BUCKET}/evil.pkl"
    proc = run_cli(["-v", "-f", "json", uri], s3_env(s3_server))
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    critical = [i for i in report["issues"] if i["severity"] == "critical"]
    assert critical, report["issues"]
    assert all(i["location"].startswith(uri) for i in critical)
    assert "system" in json.dumps(critical)
    assert s3_server.secret not in proc.stdout + proc.stderr
    assert s3_server.key_id not in proc.stdout + proc.stderr


def test_cli_clean_safetensors_is_clean(s3_server: MotoServer) -> None:
    proc = run_cli(["-f", "json", f"s3://{S3_BUCKET}/clean.safetensors"], s3_env(s3_server))
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, report
    assert [f["status"] for f in report["files"]] == ["complete"]
    assert report["files"][0]["path"] == f"s3://{S3_BUCKET}/clean.safetensors"


def test_cli_without_credentials_gives_one_line_naming_the_variables(
    s3_server: MotoServer,
) -> None:
    proc = run_cli([f"s3://{S3_BUCKET}/evil.pkl"], s3_env(s3_server, signed=False))
    assert proc.returncode == 2
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "AWS_" in line]
    assert len(lines) == 1, proc.stdout + proc.stderr
    assert "AWS_ACCESS_KEY_ID" in lines[0] and "AWS_SECRET_ACCESS_KEY" in lines[0]
    assert "Traceback" not in proc.stderr


def test_cli_refused_credentials_are_named_but_not_shown(s3_server: MotoServer) -> None:
    env = s3_env(s3_server)
    env |= {"AWS_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG1", "AWS_SECRET_ACCESS_KEY": "s3cr3t-WRONG"}
    proc = run_cli([f"s3://{S3_BUCKET}/sweep/"], env)
    assert proc.returncode == 2
    out = proc.stdout + proc.stderr
    assert "refused" in out and "AWS_ACCESS_KEY_ID" in out
    assert "s3cr3t-WRONG" not in out and "AKIAWRONGWRONGWRONG1" not in out


def test_cli_missing_object_and_bucket_are_errors(s3_server: MotoServer) -> None:
    targets = [f"s3://{S3_BUCKET}/nope/model.pkl", "s3://no-such-bucket-here/model.pkl"]
    proc = run_cli(["-f", "json", *targets], s3_env(s3_server))
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    errors = {e["target"]: e["error"] for e in report["target_errors"]}
    assert "no such object" in errors[targets[0]]
    assert "no such bucket" in errors[targets[1]]
    assert report["has_errors"] is True


async def test_api_prefix_sweep(s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(monkeypatch, s3_env(s3_server))
    report = await modelaudit.scan([f"s3://{S3_BUCKET}/sweep"])
    paths = {f.path: f for f in report.files}
    evil = f"s3://{S3_BUCKET}/sweep/a/evil.pkl"
    clean = f"s3://{S3_BUCKET}/sweep/b/clean.safetensors"
    assert set(paths) == {evil, clean}
    assert paths[clean].status.value == "complete" and not paths[clean].issues
    assert any(i.severity.value == "critical" for i in paths[evil].issues)
    assert all(i.location and i.location.startswith(evil) for i in paths[evil].issues)
    assert report.exit_code == 1


async def test_safetensors_is_acquired_from_ranged_reads(
    s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large safetensors object is spooled from its header alone, not downloaded."""
    import numpy as np
    from safetensors.numpy import save

    from modelaudit.config import ScanConfig
    from modelaudit.engine.acquire import acquire

    big = save({"w": np.zeros((1024, 1024), dtype=np.float32)})
    s3_server.admin().put_object(Bucket=S3_BUCKET, Key="big/model.safetensors", Body=big)
    use_env(monkeypatch, s3_env(s3_server))
    source = resolve(f"s3://{S3_BUCKET}/big/model.safetensors")
    [obj] = [o async for o in source.objects()]
    await source.aclose()
    assert obj.reader is not None
    try:
        async with acquire(obj, ScanConfig()) as got:
            with open(got.path, "rb") as f:
                assert f.read(8) == big[:8]
            assert os.path.getsize(got.path) == len(big)
    finally:
        await obj.reader.aclose()
    assert 0 < obj.metadata["bytes_transferred"] < len(big) // 8


async def test_api_without_credentials_is_a_target_error(
    s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_env(monkeypatch, s3_env(s3_server, signed=False))
    report = await modelaudit.scan([f"s3://{S3_BUCKET}/clean.safetensors"])
    assert report.exit_code == 2
    assert "set AWS_ACCESS_KEY_ID" in report.target_errors[0]["error"]


async def test_reader_pins_the_etag(s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(monkeypatch, s3_env(s3_server))
    source = resolve(f"s3://{S3_BUCKET}/mutable.safetensors")
    [obj] = [o async for o in source.objects()]
    await source.aclose()
    assert obj.reader is not None and obj.etag
    assert await obj.reader.read_range(0, 8) == clean_safetensors()[:8]
    s3_server.admin().put_object(Bucket=S3_BUCKET, Key="mutable.safetensors", Body=EVIL_PICKLE)
    try:
        with pytest.raises(ObjectChanged):
            await obj.reader.read_range(0, 8)
        with pytest.raises(ObjectChanged):
            async for _ in obj.reader.stream():
                pass
    finally:
        await obj.reader.aclose()
        s3_server.admin().put_object(
            Bucket=S3_BUCKET, Key="mutable.safetensors", Body=clean_safetensors()
        )


async def test_reader_streams_and_clamps_ranges(
    s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_env(monkeypatch, s3_env(s3_server))
    data = clean_safetensors()
    source = resolve(f"s3://{S3_BUCKET}/clean.safetensors")
    [obj] = [o async for o in source.objects()]
    await source.aclose()
    assert obj.reader is not None and obj.size == len(data) and obj.explicit
    try:
        assert b"".join([c async for c in obj.reader.stream(100)]) == data
        assert await obj.reader.read_range(10, 50) == data[10:50]
        assert await obj.reader.read_range(len(data) - 5, len(data) + 100) == data[-5:]
        assert await obj.reader.read_range(len(data), len(data) + 10) == b""
    finally:
        await obj.reader.aclose()


def test_r2_malicious_and_clean(r2_server: MotoServer) -> None:
    env = s3_env(r2_server)
    proc = run_cli(["-f", "json", f"r2://{R2_BUCKET}/evil.pkl"], env)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert any(
        i["severity"] == "critical" and i["location"].startswith(f"r2://{R2_BUCKET}/evil.pkl")
        for i in report["issues"]
    )
    proc = run_cli(["-f", "json", f"r2://{R2_BUCKET}/clean.safetensors"], env)
    assert proc.returncode == 0, proc.stdout


def test_r2_needs_its_endpoint(r2_server: MotoServer) -> None:
    env = s3_env(r2_server)
    del env["AWS_ENDPOINT_URL"]
    proc = run_cli([f"r2://{R2_BUCKET}/evil.pkl"], env)
    assert proc.returncode == 2
    lines = [line for line in proc.stdout.splitlines() if "AWS_ENDPOINT_URL" in line]
    assert len(lines) == 1 and "R2 endpoint" in lines[0]


def test_r2_without_credentials_and_missing_object(r2_server: MotoServer) -> None:
    proc = run_cli([f"r2://{R2_BUCKET}/evil.pkl"], s3_env(r2_server, signed=False))
    assert proc.returncode == 2 and "set AWS_ACCESS_KEY_ID" in proc.stdout
    proc = run_cli([f"r2://{R2_BUCKET}/missing.pkl"], s3_env(r2_server))
    assert proc.returncode == 2 and "no such object" in proc.stdout


async def test_r2_api_scan(r2_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(monkeypatch, s3_env(r2_server))
    with anyio.fail_after(120):
        report = await modelaudit.scan([f"r2://{R2_BUCKET}/sweep/"])
    assert sorted(f.path for f in report.files) == [
        f"r2://{R2_BUCKET}/sweep/a/evil.pkl",
        f"r2://{R2_BUCKET}/sweep/b/clean.safetensors",
    ]
    assert report.exit_code == 1


async def test_throttling_and_a_cut_stream_are_retried(
    s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """503s are retried and a body cut halfway resumes with a ranged GET at the right offset."""
    import pickle

    # (larger than the head and end reads by more than 64 KiB: the rest is one GET to cut)
    benign = pickle.dumps(list(range(200_000)), protocol=4)
    s3_server.admin().put_object(Bucket=S3_BUCKET, Key="flaky/data.pkl", Body=benign)
    proxy = FlakyProxy(s3_server.endpoint, fail_first=2)
    try:
        use_env(monkeypatch, s3_env(s3_server) | {"AWS_ENDPOINT_URL": proxy.url})
        with anyio.fail_after(120):
            report = await modelaudit.scan(f"s3://{S3_BUCKET}/flaky/data.pkl")
    finally:
        proxy.close()
    assert report.exit_code == 0, [f.to_dict() for f in report.files]
    assert proxy.events[:2] == ["503", "503"]
    (cut,) = [e for e in proxy.events if e.startswith("cut")]
    start, end = _span(cut)
    # Ranges are fetched in parallel, so the resume is not necessarily the next event: it is
    # the later GET that asks for the rest of the same range.
    after = proxy.events[proxy.events.index(cut) + 1 :]
    resumes = [e for e in after if e.startswith("GET") and _span(e)[1] == end]
    assert resumes, proxy.events
    # it starts at the first byte not received, not where the cut request did
    assert _span(resumes[0])[0] == start + proxy.cut_sent, proxy.events


def _span(event: str) -> tuple[int, int | None]:
    """(first byte, last byte or None) of a proxy event's Range ("whole": the object)."""
    if event.endswith("whole"):
        return 0, None
    first, _, last = event.split("=")[1].partition("-")
    return int(first), int(last) if last else None


def test_cli_object_gone_after_listing_is_an_error_and_the_sweep_goes_on(
    s3_server: MotoServer,
) -> None:
    admin = s3_server.admin()
    admin.put_object(Bucket=S3_BUCKET, Key="sweep2/gone.pkl", Body=EVIL_PICKLE)
    admin.put_object(Bucket=S3_BUCKET, Key="sweep2/kept.safetensors", Body=clean_safetensors())
    proxy = FlakyProxy(s3_server.endpoint, fail_first=0, gone=[f"/{S3_BUCKET}/sweep2/gone.pkl"])
    try:
        env = s3_env(s3_server) | {"AWS_ENDPOINT_URL": proxy.url}
        proc = run_cli(["-f", "json", f"s3://{S3_BUCKET}/sweep2/"], env)
    finally:
        proxy.close()
    assert proc.returncode == 2, proc.stdout
    files = {f["path"]: f for f in json.loads(proc.stdout)["files"]}
    gone = files[f"s3://{S3_BUCKET}/sweep2/gone.pkl"]
    assert gone["status"] == "error" and "no such object" in gone["reason"]
    assert files[f"s3://{S3_BUCKET}/sweep2/kept.safetensors"]["status"] == "complete"
    assert proxy.events.count("gone") == 1


async def test_listing_is_lazy(s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first object comes out after one page is listed, not after the whole prefix."""
    admin = s3_server.admin()
    for i in range(5):
        admin.put_object(Bucket=S3_BUCKET, Key=f"many/m{i}.safetensors", Body=b"x")
    proxy = FlakyProxy(s3_server.endpoint, fail_first=0)
    use_env(monkeypatch, s3_env(s3_server) | {"AWS_ENDPOINT_URL": proxy.url})
    source = resolve(f"s3://{S3_BUCKET}/many/", {"list_page_size": 2})
    seen: list[str] = []
    try:
        async for obj in source.objects():
            lists = sum("list-type=2" in path for path in proxy.paths)
            seen.append(f"{obj.name}@{lists}")
            assert obj.reader is not None
            await obj.reader.aclose()
    finally:
        await source.aclose()
        proxy.close()
    assert seen == [
        "m0.safetensors@1",
        "m1.safetensors@1",
        "m2.safetensors@2",
        "m3.safetensors@2",
        "m4.safetensors@3",
    ]


def test_client_set_up_never_blocks_the_event_loop(s3_server: MotoServer) -> None:
    """SDK imports, session creation and service-model loading happen in threads: in a fresh
    process, a ticker task beside a first and a later S3 prefix scan is never held up by
    running code for 0.1 s (client set-up once held it 586 ms, then 116-238 ms per scan)."""
    from tests.remote_http._remote_loop_probe import busy_stalls

    out = busy_stalls(f"s3://{S3_BUCKET}/sweep/", s3_env(s3_server), threshold=0.1)
    assert out["exit_code"] == 1
    assert not out["busy"], out["busy"]


def test_cli_wrong_secret_on_a_single_object_says_refused(s3_server: MotoServer) -> None:
    """HeadObject's 403 has no body, so no reason: the scanner asks again with a one-byte GET
    and reports the refused secret, not a missing permission."""
    env = s3_env(s3_server) | {"AWS_SECRET_ACCESS_KEY": "wrong-secret-for-a-real-key"}
    proc = run_cli(["-f", "json", f"s3://{S3_BUCKET}/evil.pkl"], env)
    assert proc.returncode == 2
    [err] = json.loads(proc.stdout)["target_errors"]
    assert "refused" in err["error"] and "SignatureDoesNotMatch" in err["error"], err
    assert "s3:GetObject" not in err["error"]
    assert "AWS_SECRET_ACCESS_KEY" in proc.stderr  # -f json: the line goes to stderr too
    assert "wrong-secret-for-a-real-key" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_cli_credential_error_reaches_stderr_with_output(
    s3_server: MotoServer, tmp_path: object, fmt: str
) -> None:
    """In CI the report goes to a file: the line naming the variable to set is on stderr."""
    out = os.path.join(str(tmp_path), f"report.{fmt}")
    proc = run_cli(
        ["-f", fmt, "-o", out, f"s3://{S3_BUCKET}/evil.pkl"], s3_env(s3_server, signed=False)
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if "AWS_ACCESS_KEY_ID" in line]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"modelaudit: error: s3://{S3_BUCKET}/evil.pkl")
    assert "AWS_SECRET_ACCESS_KEY" in lines[0]


async def test_mlflow_model_under_a_prefix_reports_its_shipped_code(
    s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote sweep scans an MLflow model's objects one by one, so the MLmodel's check of
    the code it names (MA4905, which reads the folder beside it) cannot run; the loader
    module is judged by MLflow's `_load_pyfunc` contract on its own, CRITICAL as on disk."""
    from tests.dataformats._mlflow_code_models import HOSTILE_LOADER

    mlmodel = (
        "flavors:\n  python_function:\n    code: code\n    loader_module: shipped_loader\n"
        "    python_version: 3.11.0\n"
    )
    s3 = s3_server.admin()
    s3.put_object(Bucket=S3_BUCKET, Key="mlflow-loader/MLmodel", Body=mlmodel.encode())
    s3.put_object(
        Bucket=S3_BUCKET,
        Key="mlflow-loader/code/shipped_loader.py",
        Body=HOSTILE_LOADER.encode(),
    )
    use_env(monkeypatch, s3_env(s3_server))
    report = await modelaudit.scan([f"s3://{S3_BUCKET}/mlflow-loader/"])
    paths = {f.path: f for f in report.files}
    code = paths[f"s3://{S3_BUCKET}/mlflow-loader/code/shipped_loader.py"]
    critical = [i for i in code.issues if i.severity.value == "critical"]
    assert [i.rule for i in critical] == ["MA4950"], code.issues
    assert "os.system" in critical[0].message and "_load_pyfunc" in critical[0].message
    mlmodel_rules = {i.rule for i in paths[f"s3://{S3_BUCKET}/mlflow-loader/MLmodel"].issues}
    assert mlmodel_rules == {"MA4903"}
    assert report.exit_code == 1
