"""DVC pointer files: local cache (both layouts), a remote on the S3 server, md5 checks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import modelaudit
from tests.remote_cloud._remote_cloud_servers import (
    EVIL_PICKLE,
    S3_BUCKET,
    FlakyProxy,
    MotoServer,
    clean_env,
    clean_safetensors,
    run_cli,
)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def object_path(digest: str, modern: bool) -> str:
    return f"files/md5/{digest[:2]}/{digest[2:]}" if modern else f"{digest[:2]}/{digest[2:]}"


def make_repo(root: Path, config: str = "") -> Path:
    (root / ".dvc" / "cache").mkdir(parents=True)
    (root / ".dvc" / "config").write_text(config)
    return root


def cache(root: Path, data: bytes, modern: bool = True, digest: str | None = None) -> str:
    digest = digest or md5(data)
    path = root / ".dvc" / "cache" / object_path(digest, modern)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def pointer(
    root: Path, name: str, digest: str, size: int | None, modern: bool = True, folder: str = ""
) -> Path:
    where = root / folder
    where.mkdir(parents=True, exist_ok=True)
    lines = ["outs:", f"- md5: {digest}"]
    if size is not None:
        lines.append(f"  size: {size}")
    if modern:
        lines.append("  hash: md5")
    lines.append(f"  path: {name}")
    path = where / f"{name}.dvc"
    path.write_text("\n".join(lines) + "\n")
    return path


def s3_remote_config(prefix: str) -> str:
    return (
        "[core]\n    remote = storage\n"
        f"['remote \"storage\"']\n    url = s3://{S3_BUCKET}/{prefix}\n"
    )


def s3_env(server: MotoServer) -> dict[str, str]:
    return clean_env(
        AWS_ENDPOINT_URL=server.endpoint,
        AWS_ACCESS_KEY_ID=server.key_id,
        AWS_SECRET_ACCESS_KEY=server.secret,
    )


def test_cli_local_cache_hit_names_the_output(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    digest = cache(root, EVIL_PICKLE)
    target = pointer(root, "model.pkl", digest, len(EVIL_PICKLE), folder="models")
    proc = run_cli(["-f", "json", str(target)], clean_env())
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    shown = str(root / "models" / "model.pkl")
    assert [f["path"] for f in report["files"]] == [shown]
    critical = [i for i in report["issues"] if i["severity"] == "critical"]
    assert critical and all(i["location"].startswith(shown) for i in critical)


async def test_api_legacy_cache_layout_clean(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    data = clean_safetensors()
    digest = cache(root, data, modern=False)
    target = pointer(root, "model.safetensors", digest, len(data), modern=False)
    report = await modelaudit.scan(str(target))
    assert report.exit_code == 0, [f.to_dict() for f in report.files]
    assert [f.path for f in report.files] == [str(root / "model.safetensors")]


async def test_api_directory_output(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    clean = clean_safetensors()
    entries = [
        {"md5": cache(root, clean), "relpath": "weights/model.safetensors"},
        {"md5": cache(root, EVIL_PICKLE), "relpath": "extra.pkl"},
    ]
    manifest = json.dumps(sorted(entries, key=lambda e: e["relpath"])).encode()
    digest = cache(root, manifest, digest=md5(manifest) + ".dir")
    target = pointer(root, "model_dir", digest, None)
    report = await modelaudit.scan(str(target))
    paths = {f.path: f for f in report.files}
    assert set(paths) == {
        str(root / "model_dir" / "extra.pkl"),
        str(root / "model_dir" / "weights" / "model.safetensors"),
    }
    assert any(
        i.severity.value == "critical" for i in paths[str(root / "model_dir" / "extra.pkl")].issues
    )
    assert report.exit_code == 1


def test_cli_remote_on_s3(tmp_path: Path, s3_server: MotoServer) -> None:
    root = make_repo(tmp_path / "repo", s3_remote_config("dvcstore"))
    digest = md5(EVIL_PICKLE)
    key = f"dvcstore/{object_path(digest, True)}"
    s3_server.admin().put_object(Bucket=S3_BUCKET, Key=key, Body=EVIL_PICKLE)
    target = pointer(root, "model.pkl", digest, len(EVIL_PICKLE))
    proc = run_cli(["-f", "json", str(target)], s3_env(s3_server))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert [f["path"] for f in report["files"]] == [str(root / "model.pkl")]
    assert any(i["severity"] == "critical" for i in report["issues"])


async def test_api_remote_md5_mismatch_is_an_error(
    tmp_path: Path, s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(tmp_path / "repo", s3_remote_config("tampered"))
    data = clean_safetensors()
    recorded = md5(data)
    swapped = data[:-1] + b"\x01"
    key = f"tampered/{object_path(recorded, True)}"
    s3_server.admin().put_object(Bucket=S3_BUCKET, Key=key, Body=swapped)
    target = pointer(root, "model.safetensors", recorded, len(data))
    for name, value in s3_env(s3_server).items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    report = await modelaudit.scan(str(target))
    assert report.exit_code == 2
    [file] = report.files
    assert file.status.value == "error"
    assert "md5 mismatch" in (file.status_reason or "")


def test_cli_corrupt_cache_without_remote_is_an_error(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    data = clean_safetensors()
    digest = cache(root, data[:-4] + b"\x00\x00\x00\x00", digest=md5(data))
    target = pointer(root, "model.safetensors", digest, len(data))
    proc = run_cli(["-f", "json", str(target)], clean_env())
    assert proc.returncode == 2
    [file] = json.loads(proc.stdout)["files"]
    assert file["status"] == "error" and "md5 mismatch" in file["reason"]


def test_cli_missing_everywhere_and_sweep_goes_on(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path / "repo", "[core]\n    remote = local\n['remote \"local\"']\n    url = ../store\n"
    )
    clean = clean_safetensors()
    present = md5(clean)
    store = root / "store" / object_path(present, True)
    store.parent.mkdir(parents=True)
    store.write_bytes(clean)
    target = root / "two.dvc"
    target.write_text(
        "outs:\n"
        f"- md5: {present}\n  size: {len(clean)}\n  hash: md5\n  path: good.safetensors\n"
        f"- md5: {'0' * 32}\n  size: 10\n  hash: md5\n  path: gone.pkl\n"
    )
    proc = run_cli(["-f", "json", str(target)], clean_env())
    assert proc.returncode == 2
    files = {f["path"]: f for f in json.loads(proc.stdout)["files"]}
    assert files[str(root / "good.safetensors")]["status"] == "complete"
    assert files[str(root / "gone.pkl")]["status"] == "error"


def test_cli_unsafe_yaml_is_not_loaded(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    target = root / "evil.dvc"
    target.write_text("outs: !!python/object/apply:os.system ['touch pwned']\n")
    proc = run_cli(["-f", "json", str(target)], clean_env())
    assert proc.returncode == 2
    assert not (root / "pwned").exists() and not Path("pwned").exists()
    [error] = json.loads(proc.stdout)["target_errors"]
    assert error["target"] == str(target)


async def test_api_http_remote_without_range_support(tmp_path: Path) -> None:
    """An http(s) remote served by a plain file server (no Range support), verified by md5."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    store = tmp_path / "store"
    clean = clean_safetensors()
    digests = {name: md5(data) for name, data in (("evil", EVIL_PICKLE), ("clean", clean))}
    for data in (EVIL_PICKLE, clean):
        path = store / object_path(md5(data), True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(store)))
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        root = make_repo(
            tmp_path / "repo", f"[core]\n    remote = web\n['remote \"web\"']\n    url = {url}\n"
        )
        target = root / "models.dvc"
        target.write_text(
            "outs:\n"
            f"- md5: {digests['evil']}\n  size: {len(EVIL_PICKLE)}\n  hash: md5\n  path: a.pkl\n"
            f"- md5: {digests['clean']}\n  size: {len(clean)}\n  hash: md5\n"
            "  path: b.safetensors\n"
        )
        report = await modelaudit.scan(str(target))
    finally:
        server.shutdown()
        server.server_close()
    files = {f.path: f for f in report.files}
    assert set(files) == {str(root / "a.pkl"), str(root / "b.safetensors")}
    assert any(i.severity.value == "critical" for i in files[str(root / "a.pkl")].issues)
    assert files[str(root / "b.safetensors")].status.value == "complete"
    assert report.exit_code == 1


def _remote_section(name: str, url: str, **extra: str) -> str:
    lines = [f"['remote \"{name}\"']", f"    url = {url}"]
    lines += [f"    {key} = {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def endpoint_repo(tmp_path: Path, s3_server: MotoServer) -> tuple[Path, Path, FlakyProxy]:
    """A repo whose default S3 remote holds an evil pickle, and a proxy in front of the S3
    server that records every request's headers."""
    root = make_repo(tmp_path / "repo", "[core]\n    remote = storage\n")
    digest = md5(EVIL_PICKLE)
    key = f"endpoint-store/{object_path(digest, True)}"
    s3_server.admin().put_object(Bucket=S3_BUCKET, Key=key, Body=EVIL_PICKLE)
    return (
        root,
        pointer(root, "model.pkl", digest, len(EVIL_PICKLE)),
        FlakyProxy(s3_server.endpoint, fail_first=0),
    )


def _signed(proxy: FlakyProxy) -> list[bool]:
    return [
        "authorization" in h or "x-amz-security-token" in h or "x-amz-credential" in str(h)
        for h in proxy.headers
    ]


def test_cli_endpointurl_from_config_local_gets_the_credentials(
    endpoint_repo: tuple[Path, Path, FlakyProxy], s3_server: MotoServer
) -> None:
    root, target, proxy = endpoint_repo
    url = f"s3://{S3_BUCKET}/endpoint-store"
    with open(root / ".dvc" / "config", "a") as f:
        f.write(_remote_section("storage", url))
    (root / ".dvc" / "config.local").write_text(
        _remote_section("storage", url, endpointurl=proxy.url)
    )
    env = clean_env(AWS_ACCESS_KEY_ID=s3_server.key_id, AWS_SECRET_ACCESS_KEY=s3_server.secret)
    try:
        proc = run_cli(["-f", "json", str(target)], env)
    finally:
        proxy.close()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert [f["path"] for f in json.loads(proc.stdout)["files"]] == [str(root / "model.pkl")]
    assert proxy.headers and all(_signed(proxy))


def test_cli_endpointurl_from_the_repository_gets_no_credentials(
    endpoint_repo: tuple[Path, Path, FlakyProxy], s3_server: MotoServer
) -> None:
    """`.dvc/config` is the scanned repository's: its endpoint receives no AWS credentials
    (checked on the server side), and the error says how to allow it."""
    root, target, proxy = endpoint_repo
    with open(root / ".dvc" / "config", "a") as f:
        f.write(
            _remote_section("storage", f"s3://{S3_BUCKET}/endpoint-store", endpointurl=proxy.url)
        )
    env = clean_env(
        AWS_ACCESS_KEY_ID=s3_server.key_id,
        AWS_SECRET_ACCESS_KEY=s3_server.secret,
        AWS_SESSION_TOKEN="session-token-canary-0042",
    )
    try:
        proc = run_cli(["-f", "json", str(target)], env)
    finally:
        proxy.close()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [file] = json.loads(proc.stdout)["files"]
    assert file["status"] == "error"
    assert f"AWS_ENDPOINT_URL={proxy.url}" in file["reason"]
    assert proxy.headers and not any(_signed(proxy))
    assert not any("session-token-canary" in str(h) for h in proxy.headers)
    # Naming the same endpoint in AWS_ENDPOINT_URL is the user's consent.
    proxy = FlakyProxy(s3_server.endpoint, fail_first=0)
    with open(root / ".dvc" / "config", "a") as f:
        f.write(f"    endpointurl = {proxy.url}\n")
    try:
        env = {k: v for k, v in env.items() if k != "AWS_SESSION_TOKEN"}
        proc = run_cli(["-f", "json", str(target)], env | {"AWS_ENDPOINT_URL": proxy.url})
    finally:
        proxy.close()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proxy.headers and all(_signed(proxy))


def test_cli_output_remote_and_remotes_other_than_the_default(tmp_path: Path) -> None:
    """An output's own `remote:` wins over the default; with no default, every remote is
    tried in turn."""
    digest = md5(EVIL_PICKLE)
    for store in ("first", "second"):
        (tmp_path / store).mkdir()
    path = tmp_path / "second" / object_path(digest, True)
    path.parent.mkdir(parents=True)
    path.write_bytes(EVIL_PICKLE)
    remotes = _remote_section("first", str(tmp_path / "first")) + _remote_section(
        "second", str(tmp_path / "second")
    )
    named = make_repo(tmp_path / "named", "[core]\n    remote = first\n" + remotes)
    target = pointer(named, "model.pkl", digest, len(EVIL_PICKLE))
    target.write_text(target.read_text() + "  remote: second\n")
    undefaulted = make_repo(tmp_path / "undefaulted", remotes)
    other = pointer(undefaulted, "model.pkl", digest, len(EVIL_PICKLE))
    defaulted = make_repo(tmp_path / "defaulted", "[core]\n    remote = first\n" + remotes)
    missing = pointer(defaulted, "model.pkl", digest, len(EVIL_PICKLE))
    proc = run_cli(["-f", "json", str(target), str(other), str(missing)], clean_env())
    files = {f["path"]: f for f in json.loads(proc.stdout)["files"]}
    assert files[str(named / "model.pkl")]["status"] == "complete"
    assert files[str(undefaulted / "model.pkl")]["status"] == "complete"
    assert files[str(defaulted / "model.pkl")]["status"] == "error"
    assert "remote first" in files[str(defaulted / "model.pkl")]["reason"]
    assert proc.returncode == 1


async def test_a_remote_output_is_downloaded_once_without_first_reads(
    tmp_path: Path, s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output is read whole to check its md5: ranged first reads of its head and end
    (what an S3 or GCS key that is a run's only target gets) would only add a round trip and
    128 KiB before that download. A pointer is a local target, so its remote's fetcher is
    never told it is the only one; this keeps it so."""
    root = make_repo(tmp_path / "repo", s3_remote_config("dvcstore"))
    data = clean_safetensors()
    digest = md5(data)
    s3_server.admin().put_object(
        Bucket=S3_BUCKET, Key=f"dvcstore/{object_path(digest, True)}", Body=data
    )
    target = pointer(root, "model.safetensors", digest, len(data))
    front = FlakyProxy(s3_server.endpoint, fail_first=0, cut=False)
    try:
        for name, value in (s3_env(s3_server) | {"AWS_ENDPOINT_URL": front.url}).items():
            monkeypatch.setenv(name, value)
        report = await modelaudit.scan(str(target))
    finally:
        front.close()
    assert report.exit_code == 0, [f.status_reason for f in report.files]
    ranged = [(method, rng) for method, rng, _ in front.requests if rng != "whole"]
    assert ranged == [], front.requests
