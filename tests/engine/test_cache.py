"""`--cache DIR`: unchanged objects are reported from their last scan, anything in doubt is
scanned again, and a cache others could have written is not trusted."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

import modelaudit
from modelaudit.engine.cache import cacheable
from modelaudit.findings import FileStatus, Issue, IssueSeverity
from modelaudit.report import FileReport, ScanReport
from tests.engine._counting_relay import CountingRelay
from tests.remote_cloud._remote_cloud_servers import (
    EVIL_PICKLE,
    MotoServer,
    clean_env,
    clean_safetensors,
    start_moto,
    stop,
)

#: A clean pickle exactly as long as EVIL_PICKLE: a string of 26 characters.
CLEAN_SAME_SIZE = b"\x80\x02X" + (26).to_bytes(4, "little") + b"a" * 26 + b"."
assert len(CLEAN_SAME_SIZE) == len(EVIL_PICKLE)


def scan(targets: list[str], **options: Any) -> ScanReport:
    return anyio.run(lambda: modelaudit.scan(targets, **options))


def verdicts(report: ScanReport) -> dict[str, tuple[str, list[tuple[str, str | None, str]]]]:
    return {
        f.path: (
            f.status.value,
            sorted((i.severity.value, i.rule, i.message) for i in f.issues),
        )
        for f in report.files
    }


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "evil.pkl").write_bytes(EVIL_PICKLE)
    (folder / "clean.pkl").write_bytes(CLEAN_SAME_SIZE)
    (folder / "model.safetensors").write_bytes(clean_safetensors())
    (folder / "notes.txt").write_text("not a model\n")
    return folder


def test_unchanged_files_come_from_the_cache(models: Path, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    first = scan([str(models)], cache_dir=cache)
    assert not any(f.cached for f in first.files)
    second = scan([str(models)], cache_dir=cache)
    assert all(f.cached for f in second.files)
    assert verdicts(second) == verdicts(first)
    assert second.exit_code == first.exit_code == 1
    assert [f.to_dict()["cached"] for f in second.files] == [True] * len(second.files)
    assert all(f.duration == 0.0 for f in second.files)
    evil = next(f for f in second.files if f.path.endswith("evil.pkl"))
    assert any(i.severity is IssueSeverity.CRITICAL for i in evil.issues)
    # Without --cache nothing is remembered or replayed.
    assert not any(f.cached for f in scan([str(models)]).files)


def test_same_size_and_mtime_but_new_content_is_scanned_again(models: Path, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    target = models / "clean.pkl"
    scan([str(models)], cache_dir=cache)
    before = os.stat(target)
    target.write_bytes(EVIL_PICKLE)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(target).st_mtime_ns == before.st_mtime_ns
    report = scan([str(models)], cache_dir=cache)
    entry = next(f for f in report.files if f.path == str(target))
    assert not entry.cached
    assert any(i.severity is IssueSeverity.CRITICAL for i in entry.issues)
    others = [f for f in report.files if f.path != str(target)]
    assert all(f.cached for f in others)


def test_a_forged_entry_is_ignored(models: Path, tmp_path: Path) -> None:
    """Someone rewrites the evil file's entry to a clean verdict: the signature no longer
    matches, so the file is scanned again and stays CRITICAL."""
    cache = tmp_path / "cache"
    evil = str(models / "evil.pkl")
    scan([evil], cache_dir=str(cache))
    db = sqlite3.connect(cache / "results.sqlite3")
    (record_bytes,) = db.execute("SELECT record FROM results WHERE uri = ?", (evil,)).fetchone()
    record = orjson.loads(record_bytes)
    assert any(i["severity"] == "critical" for i in record["issues"])
    record["issues"] = []
    db.execute("UPDATE results SET record = ? WHERE uri = ?", (orjson.dumps(record), evil))
    db.commit()
    db.close()
    report = scan([evil], cache_dir=str(cache))
    [entry] = report.files
    assert not entry.cached
    assert report.exit_code == 1


def test_entries_signed_with_another_secret_are_ignored(
    models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = str(tmp_path / "cache")
    monkeypatch.setenv("MODELAUDIT_CACHE_SECRET", "first-secret-value-0001")
    scan([str(models)], cache_dir=cache)
    monkeypatch.setenv("MODELAUDIT_CACHE_SECRET", "other-secret-value-0002")
    assert not any(f.cached for f in scan([str(models)], cache_dir=cache).files)
    monkeypatch.setenv("MODELAUDIT_CACHE_SECRET", "first-secret-value-0001")
    second = scan([str(models)], cache_dir=cache)
    # The run with the other secret rewrote the entries under its own key.
    assert not any(f.cached for f in second.files)
    assert all(f.cached for f in scan([str(models)], cache_dir=cache).files)


def test_a_different_policy_is_a_miss(models: Path, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    scan([str(models)], cache_dir=cache)
    report = scan([str(models)], cache_dir=cache, blacklist_patterns=["clean"])
    assert not any(f.cached for f in report.files)
    clean = next(f for f in report.files if f.path.endswith("clean.pkl"))
    assert any(i.rule == "MA0006" for i in clean.issues)
    # A setting that cannot change a verdict keeps the entries.
    again = scan([str(models)], cache_dir=cache, blacklist_patterns=["clean"], timeout=120)
    assert all(f.cached for f in again.files)


def test_only_verdicts_about_the_file_are_cached() -> None:
    done = FileReport(path="a.pkl")
    assert cacheable(done)
    timed_out = FileReport(path="a.pkl", status=FileStatus.INCONCLUSIVE)
    timed_out.issues.append(
        Issue("Scan timeout after 1 seconds", IssueSeverity.INFO, rule="MA0001")
    )
    assert not cacheable(timed_out)
    assert not cacheable(FileReport(path="a.pkl", status=FileStatus.ERROR))
    limited = FileReport(path="a.pkl", status=FileStatus.INCONCLUSIVE)
    limited.issues.append(Issue("memory", IssueSeverity.INFO, rule="MA9002"))
    assert not cacheable(limited)
    malformed = FileReport(path="a.pkl", status=FileStatus.INCONCLUSIVE)
    malformed.issues.append(Issue("truncated", IssueSeverity.INFO, rule="MA0005"))
    assert cacheable(malformed)


def _cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELAUDIT_CACHE_SECRET"}
    return subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", "--no-progress", "-f", "json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_cache_others_can_write_is_not_used(models: Path, tmp_path: Path) -> None:
    cache = tmp_path / "shared"
    cache.mkdir()
    cache.chmod(0o777)
    for _ in range(2):
        proc = _cli(["--cache", str(cache), str(models)])
        assert proc.returncode == 1
        report = orjson.loads(proc.stdout)
        assert not any(f.get("cached") for f in report["files"])
        assert "writable by other users" in proc.stderr
        assert "scanning without the cache" in proc.stderr
    assert not (cache / "results.sqlite3").exists()


def test_the_cache_directory_is_private(models: Path, tmp_path: Path) -> None:
    cache = tmp_path / "new" / "cache"
    proc = _cli(["--cache", str(cache), str(models)])
    assert proc.returncode == 1, proc.stderr
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(cache / "results.sqlite3").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cache / "key").st_mode) == 0o600
    proc = _cli(["--cache", str(cache), str(models)])
    assert all(f.get("cached") for f in orjson.loads(proc.stdout)["files"])


BUCKET = "cached"


@pytest.fixture(scope="module")
def s3_bucket() -> Iterator[tuple[MotoServer, CountingRelay]]:
    objects = {f"models/clean{i:02d}.safetensors": clean_safetensors() for i in range(20)}
    objects["models/evil.pkl"] = EVIL_PICKLE
    server = start_moto({BUCKET: objects}, enforce_auth=False)
    relay = CountingRelay(int(server.endpoint.rsplit(":", 1)[1]))
    try:
        yield server, relay
    finally:
        relay.stop()
        stop(server.proc)


def _relayed_env(server: MotoServer, relay: CountingRelay) -> dict[str, str]:
    """The CLI's environment: the moto server's credentials, every request through the relay."""
    return clean_env(
        AWS_ACCESS_KEY_ID=server.key_id,
        AWS_SECRET_ACCESS_KEY=server.secret,
        AWS_ENDPOINT_URL=relay.url,
        AWS_DEFAULT_REGION="us-east-1",
    )


def test_unchanged_objects_are_not_read_again(
    s3_bucket: tuple[MotoServer, CountingRelay], tmp_path: Path
) -> None:
    server, relay = s3_bucket
    env = _relayed_env(server, relay)
    cache = str(tmp_path / "cache")
    target = f"s3://{BUCKET}/models/"
    args = [sys.executable, "-m", "modelaudit", "scan", "--no-progress", "-f", "json"]

    def run() -> dict[str, Any]:
        proc = subprocess.run(
            [*args, "--cache", cache, target], env=env, capture_output=True, timeout=120
        )
        assert proc.returncode == 1, proc.stderr
        report: dict[str, Any] = orjson.loads(proc.stdout)
        return report

    relay.object_gets.clear()
    first = run()
    assert len(set(relay.object_gets)) == 21
    relay.object_gets.clear()
    second = run()
    assert relay.object_gets == []
    files = second["files"]
    assert len(files) == 21
    assert all(f["cached"] for f in files)

    def findings(report: dict[str, Any]) -> list[tuple[object, ...]]:
        issues = report["issues"]
        assert isinstance(issues, list)
        return sorted((i["location"], i["severity"], i["message"]) for i in issues)

    assert findings(second) == findings(first)
    assert any(f[1] == "critical" for f in findings(second))
    # A replaced object (new ETag) is read and scanned again; the others are not.
    server.admin().put_object(Bucket=BUCKET, Key="models/clean03.safetensors", Body=EVIL_PICKLE)
    relay.object_gets.clear()
    third = run()
    assert set(relay.object_gets) == {f"{BUCKET}/models/clean03.safetensors"}
    changed = [f for f in third["files"] if not f.get("cached")]
    assert [f["path"] for f in changed] == [f"s3://{BUCKET}/models/clean03.safetensors"]


def test_a_replayed_report_keeps_every_digest_and_its_source(
    s3_bucket: tuple[MotoServer, CountingRelay], tmp_path: Path
) -> None:
    """SARIF from the cache carries what the first run reported: the md5 S3 publishes (its
    ETag) with where it came from, beside the sha256 computed from the (small) object."""
    server, relay = s3_bucket
    env = _relayed_env(server, relay)
    cache = str(tmp_path / "cache")
    target = f"s3://{BUCKET}/models/clean05.safetensors"

    def artifact() -> dict[str, Any]:
        args = ["scan", "--no-progress", "-f", "sarif", "--cache", cache, target]
        proc = subprocess.run(
            [sys.executable, "-m", "modelaudit", *args],
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        found: dict[str, Any] = orjson.loads(proc.stdout)["runs"][0]["artifacts"][0]
        return found

    relay.object_gets.clear()
    first = artifact()
    assert set(first["hashes"]) == {"md5", "sha-256"}
    assert "ETag" in first["properties"]["hashSource"]
    relay.object_gets.clear()
    second = artifact()
    assert relay.object_gets == []
    assert second["hashes"] == first["hashes"]
    assert second["properties"]["hashSource"] == first["properties"]["hashSource"]


def test_a_listed_file_is_identified_by_the_listing_stat(tmp_path: Path) -> None:
    """`identify` runs on the event loop once per object: a local file is identified by the
    stat its listing took (no second stat there), a named file too; an object without one
    (built by hand) is stat'ed as before."""
    from modelaudit.engine.cache import identify
    from modelaudit.fetchers.base import ObjectRef
    from modelaudit.fetchers.local import LocalSource

    (tmp_path / "a.pkl").write_bytes(b"\x80\x04N.")

    async def listed() -> list[ObjectRef]:
        return [obj async for obj in LocalSource(str(tmp_path)).objects()]

    (obj,) = anyio.run(listed)
    named = LocalSource(str(tmp_path / "a.pkl")).named()
    assert obj.stat is not None and named is not None and named.stat is not None
    seen = os.stat(tmp_path / "a.pkl")
    (tmp_path / "a.pkl").unlink()  # only what the listing saw can identify it now
    for ref in (obj, named):
        identity = identify(ref)
        assert identity is not None
        assert (identity.size, identity.version) == (seen.st_size, str(seen.st_mtime_ns))
    assert (
        identify(ObjectRef(uri=str(tmp_path / "a.pkl"), local_path=str(tmp_path / "a.pkl"))) is None
    )
