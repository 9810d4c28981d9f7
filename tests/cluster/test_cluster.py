"""Sweeps on a real Dask cluster (`dask scheduler`, `dask worker` processes on 127.0.0.1):
the same report as a local run, credentials that stay on each node, lost workers, stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

import modelaudit
from modelaudit.findings import FileStatus
from tests.cluster._cluster import (
    DaskCluster,
    StallingServer,
    alive,
    base_env,
    comparable,
    report_of,
    run_cli,
    small_sweep,
    start_cluster,
    wait_for,
)
from tests.cluster.conftest import BUCKET, s3_env
from tests.remote_cloud._remote_cloud_servers import MotoServer, clean_safetensors


@pytest.fixture(scope="module")
def local_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hostile corpus (every format family), clean models and enough small pickles to make
    several shards."""
    from tests.hardening._malicious_corpus import build_corpus

    root = tmp_path_factory.mktemp("corpus")
    sentinels = tmp_path_factory.mktemp("sentinels")
    build_corpus(str(root / "hostile"), str(sentinels))
    (root / "clean").mkdir()
    (root / "clean" / "model.safetensors").write_bytes(clean_safetensors())
    (root / "clean" / "README.md").write_text("# a model\n")
    (root / "clean" / "unknown.bin").write_bytes(os.urandom(300))
    small_sweep(root / "many", 300)
    return root


def test_directory_sweep_reports_as_a_local_run(
    cluster: DaskCluster, local_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # relative targets: nodes must still find the files
    target = os.path.relpath(local_corpus, tmp_path)
    env = base_env()
    local = run_cli(["-f", "json", target], env)
    cluster.clear_records()
    remote = run_cli(["-f", "json", "--cluster", cluster.address, target], env)
    assert remote.returncode == local.returncode == 1, remote.stderr
    local_report, cluster_report = report_of(local), report_of(remote)
    assert comparable(cluster_report) == comparable(local_report)
    assert len(cluster_report["files"]) > 300
    assert cluster_report["summary"]["severity_counts"]["critical"] > 20
    # It ran on the cluster, in several shards, on both nodes.
    payloads = cluster.payloads()
    assert len(payloads) >= 2
    assert sum(len(g["objects"]) for p in payloads for g in p["groups"]) == len(
        cluster_report["files"]
    )
    assert len({p.name.split("-")[1] for p in cluster.record.glob("*.json")}) == 2


def test_dask_scheduler_address_selects_the_cluster(
    cluster: DaskCluster, local_corpus: Path
) -> None:
    cluster.clear_records()
    env = base_env(DASK_SCHEDULER_ADDRESS=cluster.address)
    proc = run_cli(["-f", "json", str(local_corpus / "many" / "a")], env)
    assert proc.returncode == 1, proc.stderr
    assert report_of(proc)["summary"]["files_complete"] == 150
    assert cluster.payloads()
    cluster.clear_records()
    proc = run_cli(["-f", "json", "--cluster", "local", str(local_corpus / "many" / "a")], env)
    assert report_of(proc)["summary"]["files_complete"] == 150
    assert not cluster.payloads()


def test_s3_sweep_reports_as_a_local_run_and_no_credential_travels(
    cluster: DaskCluster, sweep_server: MotoServer
) -> None:
    env = base_env(**s3_env(sweep_server))
    target = f"s3://{BUCKET}/"
    local = run_cli(["-f", "json", target], env)
    cluster.clear_records()
    remote = run_cli(["-f", "json", "--cluster", cluster.address, target], env)
    assert remote.returncode == local.returncode == 1, remote.stderr
    assert comparable(report_of(remote)) == comparable(report_of(local))
    statuses = {f["status"] for f in report_of(remote)["files"]}
    assert "error" not in statuses
    raw = cluster.raw_payloads()
    assert raw and any(b"hostile/" in p for p in raw)
    for payload in raw:
        assert sweep_server.secret.encode() not in payload
        assert sweep_server.key_id.encode() not in payload
        assert sweep_server.endpoint.encode() not in payload
    # The scheduler's side: every message the client sent (task graphs, the functions and
    # arguments of Client.run), as the scheduler received them. The object keys are there
    # (the record sees task arguments); no credential, nor where the client found them.
    sent = cluster.scheduler_messages()
    assert b"update-graph" in sent and b"hostile/" in sent
    assert sweep_server.secret.encode() not in sent
    assert sweep_server.key_id.encode() not in sent
    assert sweep_server.endpoint.encode() not in sent


def test_nodes_use_their_own_credentials(
    tmp_path: Path, sweep_server: MotoServer, cluster: DaskCluster
) -> None:
    """The client can list the bucket; a node without credentials of its own cannot read it,
    so the client's were not sent along."""
    where = {"AWS_ENDPOINT_URL": sweep_server.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    bare = start_cluster(tmp_path / "bare", workers=[where])
    try:
        env = base_env(**s3_env(sweep_server))
        proc = run_cli(["-f", "json", "--cluster", bare.address, f"s3://{BUCKET}/clean/"], env)
        report = report_of(proc)
        assert proc.returncode == 2
        assert report["files"] and all(f["status"] == "error" for f in report["files"])
        assert all("AWS_ACCESS_KEY_ID" in f["reason"] for f in report["files"]), report["files"][0]
    finally:
        bare.close()


def test_a_target_with_a_credential_in_its_url_is_not_sent(cluster: DaskCluster) -> None:
    """A URL with user info (or a presigned one) names a credential: it never goes into a
    task, and the file says why."""
    from modelaudit.fetchers import ObjectRef, Source

    url = "https://user:hunter2hunter2@127.0.0.1:1/model.pkl"

    class Listed(Source):
        target = url

        async def objects(self):
            yield ObjectRef(uri="https://127.0.0.1:1/model.pkl", size=10, etag='"x"')

    async def main() -> modelaudit.ScanReport:
        async with modelaudit.Scanner(cluster=cluster.address) as scanner:
            return await scanner.run_call([Listed()], scanner.config)

    cluster.clear_records()
    report = anyio.run(main)
    assert [f.status for f in report.files] == [FileStatus.ERROR]
    assert "credential" in (report.files[0].status_reason or "")
    assert not cluster.payloads()


def test_the_client_lists_lazily_and_bounds_the_shards_in_flight(
    cluster: DaskCluster, tmp_path: Path
) -> None:
    """While every node holds its tasks, the client stops listing once its slots are taken,
    and the scheduler never holds more than `shards_per_thread` shards per worker thread."""
    from modelaudit.fetchers import ObjectRef, Source
    from tests.cluster._cluster import CLEAN_PICKLE

    model = tmp_path / "model.pkl"
    model.write_bytes(CLEAN_PICKLE)
    total, in_flight, per_shard = 1000, 100, 10
    pulled = [0]

    class Many(Source):
        target = str(tmp_path)

        async def objects(self):
            for index in range(total):
                pulled[0] += 1
                yield ObjectRef(
                    uri=f"{tmp_path}/copy{index:04d}.pkl",
                    size=len(CLEAN_PICKLE),
                    local_path=str(model),
                )

    async def until(predicate: Any, what: str, timeout: float = 120) -> None:
        try:
            with anyio.fail_after(timeout):
                while not predicate():
                    await anyio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}") from None

    async def main() -> modelaudit.ScanReport:
        async with modelaudit.Scanner(
            cluster=cluster.address, max_in_flight=in_flight, shard_files=per_shard
        ) as scanner:
            executor: Any = scanner.executor
            threads = sum(cluster_threads.values())
            window = scanner.config.shards_per_thread * threads
            async with anyio.create_task_group() as tg:
                box: list[modelaudit.ScanReport] = []

                async def scan() -> None:
                    box.append(await scanner.run_call([Many()], scanner.config))

                tg.start_soon(scan)
                await until(
                    lambda: scanner.slots.statistics().tasks_waiting >= 1,
                    "the listing to wait for a slot",
                )
                # Lazy: one object past the slots was listed, not the whole target.
                assert pulled[0] == in_flight + 1
                await until(
                    lambda: (
                        executor.window.statistics().tasks_waiting
                        == in_flight // per_shard - window
                    ),
                    "the shards past the window to wait for it",
                )
                sent = await anyio.to_thread.run_sync(cluster.shard_tasks)
                assert sent == window, f"{sent} shards on the cluster, window {window}"
                assert executor.window.borrowed_tokens == window
                cluster.hold.unlink()
            return box[0]

    cluster_threads = _nthreads(cluster)
    cluster.hold.write_text("")
    try:
        report = anyio.run(main)
    finally:
        cluster.hold.unlink(missing_ok=True)
    assert pulled[0] == total
    assert len(report.files) == total
    assert {f.status for f in report.files} == {FileStatus.COMPLETE}


def _nthreads(cluster: DaskCluster) -> dict[str, int]:
    from distributed import Client

    with Client(cluster.address, timeout=60) as client:
        return dict(client.nthreads())


def _held_cluster(tmp_path: Path, **scheduler: str) -> tuple[DaskCluster, Path]:
    """w1 holds every task while the hold file exists; w2 scans normally."""
    hold = tmp_path / "hold"
    hold.write_text("")
    dask = start_cluster(
        tmp_path / "dask",
        workers=[{"MODELAUDIT_TEST_HOLD": str(hold)}, {}],
        scheduler_env=scheduler,
    )
    return dask, hold


def _scan_killing_the_held_worker(dask: DaskCluster, target: Path, **options: Any) -> object:
    async def main() -> modelaudit.ScanReport:
        async with modelaudit.Scanner(cluster=dask.address, shard_files=20, **options) as s:
            async with anyio.create_task_group() as tg:

                async def killer() -> None:
                    await anyio.to_thread.run_sync(
                        lambda: wait_for(
                            lambda: any(dask.record.glob("held-*")), what="a held shard"
                        )
                    )
                    worker = dask.workers[0]
                    worker.orphans = worker.descendants()
                    worker.kill()

                tg.start_soon(killer)
                report = await s.scan([str(target)])
            return report

    return anyio.run(main)


def test_a_lost_worker_s_shards_are_scanned_elsewhere(tmp_path: Path) -> None:
    target = small_sweep(tmp_path / "models", 400)
    local = anyio.run(modelaudit.scan, [str(target)])
    dask, hold = _held_cluster(tmp_path)
    try:
        report = _scan_killing_the_held_worker(dask, target)
        assert isinstance(report, modelaudit.ScanReport)
        assert dask.workers[0].proc.returncode == -signal.SIGKILL
        assert comparable(report.to_dict()) == comparable(local.to_dict())
        # The dead node's scan workers and fork server died with it.
        orphans = dask.workers[0].orphans
        assert orphans, "the killed node had started no scan worker"
        wait_for(
            lambda: not any(alive(pid) for pid in orphans),
            30,
            "the killed node's scan workers to exit",
        )
        # The held shard reached the dead node, then the living one.
        held = [p for p in dask.payloads()]
        keys = [p["key"] for p in held]
        assert len(keys) > len(set(keys)), "no shard was run twice"
    finally:
        hold.unlink()
        dask.close()


def test_a_shard_that_keeps_losing_workers_ends_in_error(tmp_path: Path) -> None:
    target = small_sweep(tmp_path / "models", 200)
    dask, hold = _held_cluster(tmp_path, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0")
    try:
        report = _scan_killing_the_held_worker(dask, target)
        assert isinstance(report, modelaudit.ScanReport)
        assert len(report.files) == 200
        errors = [f for f in report.files if f.status is FileStatus.ERROR]
        assert errors, "the killed worker's shard was not reported"
        for f in errors:
            assert "Dask worker lost" in (f.status_reason or "")
            assert any(i.rule == "MA0004" for i in f.issues)
        done = [f for f in report.files if f.status is FileStatus.COMPLETE]
        assert len(done) + len(errors) == 200
        assert report.exit_code == 1
    finally:
        hold.unlink()
        dask.close()


def test_a_cluster_without_workers_does_not_hang(tmp_path: Path) -> None:
    target = small_sweep(tmp_path / "models", 60)
    hold = tmp_path / "hold"
    hold.write_text("")
    dask = start_cluster(tmp_path / "dask", workers=[{"MODELAUDIT_TEST_HOLD": str(hold)}])
    try:
        report = _scan_killing_the_held_worker(dask, target, cluster_idle_timeout=2.0)
        assert isinstance(report, modelaudit.ScanReport)
        assert len(report.files) == 60
        assert all(f.status is FileStatus.ERROR for f in report.files)
        assert "no worker" in (report.files[0].status_reason or "")
    finally:
        hold.unlink()
        dask.close()


def test_timeout_stops_the_nodes_and_keeps_the_report(cluster: DaskCluster, tmp_path: Path) -> None:
    from tests.cluster._cluster import CLEAN_PICKLE

    server = StallingServer(CLEAN_PICKLE)
    cluster.warm()  # the 8 seconds are for scanning, not for booting the nodes' engines
    try:
        done = tmp_path / "done.pkl"
        done.write_bytes(CLEAN_PICKLE)
        proc = run_cli(
            [
                "-f",
                "json",
                "--timeout",
                "8",
                "--cluster",
                cluster.address,
                f"{server.url}/model.pkl",
                str(done),
            ],
            base_env(),
        )
        report = report_of(proc)
        assert proc.returncode == 2
        by_path = {f["path"]: f for f in report["files"]}
        assert by_path[str(done)]["status"] == "complete"
        stalled = by_path[f"{server.url}/model.pkl"]
        assert stalled["status"] == "inconclusive"
        assert stalled["reason"].startswith("Scan timeout after 8 seconds (run deadline reached)")
        assert report["summary"]["interrupted"]
        assert server.gets >= 1
        # The node itself stopped fetching: it hung up on the server.
        wait_for(lambda: server.disconnects >= 1, 30, "the node to hang up")
        wait_for(lambda: cluster.executing() == 0, 60, "the nodes' task threads to free up")
    finally:
        server.close()


def test_ctrl_c_cancels_the_cluster_tasks_and_writes_the_report(
    cluster: DaskCluster, tmp_path: Path
) -> None:
    import json

    from tests.cluster._cluster import CLEAN_PICKLE

    server = StallingServer(CLEAN_PICKLE)
    output = tmp_path / "report.json"
    urls = [f"{server.url}/model{index}.pkl" for index in range(6)]
    cluster.warm()
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelaudit",
                "scan",
                "--no-progress",
                "-f",
                "json",
                "-o",
                str(output),
                "--cluster",
                cluster.address,
                *urls,
            ],
            env=base_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        wait_for(lambda: server.gets >= 1, 120, "a node to fetch an object")
        wait_for(lambda: cluster.executing() >= 1, 60, "a shard task to run on a node")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, err
        report = json.loads(output.read_text())
        assert sorted(f["path"] for f in report["files"]) == sorted(urls)
        for entry in report["files"]:
            assert entry["status"] == "inconclusive", json.dumps(entry)
            assert entry["reason"].startswith("Interrupted by SIGINT"), entry
        # The cluster let go of the run: no shard task left on the scheduler, no node thread
        # still busy with one, and every fetch the nodes started was hung up.
        wait_for(lambda: cluster.shard_tasks() == 0, 60, "the scheduler to drop the shards")
        wait_for(lambda: cluster.executing() == 0, 60, "the nodes' task threads to free up")
        wait_for(lambda: server.disconnects == server.gets, 60, "the nodes to hang up every fetch")
    finally:
        server.close()


def test_a_frozen_worker_does_not_hang_the_run(tmp_path: Path) -> None:
    """A node that stops answering (SIGSTOP: its connections stay open) is dropped by the
    scheduler after `worker-ttl`, and its shard is scanned by the other node."""
    target = small_sweep(tmp_path / "models", 100)
    local = anyio.run(modelaudit.scan, [str(target)])
    dask, hold = _held_cluster(tmp_path, DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL="5s")
    frozen = dask.workers[0]
    try:

        async def freeze() -> None:
            await anyio.to_thread.run_sync(
                lambda: wait_for(lambda: any(dask.record.glob("held-*")), what="a held shard")
            )
            os.kill(frozen.proc.pid, signal.SIGSTOP)

        async def main() -> modelaudit.ScanReport:
            async with (
                modelaudit.Scanner(cluster=dask.address, shard_files=20) as scanner,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(freeze)
                report = await scanner.scan([str(target)])
            return report

        report = anyio.run(main)
        assert frozen.proc.poll() is None, "the frozen node should still exist"
        assert comparable(report.to_dict()) == comparable(local.to_dict())
        assert dask.worker_count() == 1
    finally:
        frozen.kill()  # SIGKILL ends a stopped process too; thawing it only slows teardown
        hold.unlink()
        dask.close()


def test_missing_extra_is_one_line(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from modelaudit.cli import main\n"
        "sys.exit(main(['scan', '--cluster', 'tcp://127.0.0.1:1', sys.argv[1]]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "modelaudit: error: --cluster needs Dask distributed: install modelaudit with the "
        "'cluster' (or 'all') extra, e.g. pip install -e '.[cluster]' in its checkout"
    ]


def test_unreachable_scheduler_is_one_line(tmp_path: Path) -> None:
    from tests.remote_cloud._remote_cloud_servers import free_port

    env = base_env(DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s")
    proc = run_cli(["--cluster", f"tcp://127.0.0.1:{free_port()}", str(tmp_path)], env, 120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("modelaudit:")]
    assert len(lines) == 1 and "cannot reach the Dask scheduler" in lines[0], proc.stderr


def test_cache_on_the_client_spares_the_cluster(
    cluster: DaskCluster, sweep_server: MotoServer, tmp_path: Path
) -> None:
    env = base_env(**s3_env(sweep_server))
    cache = str(tmp_path / "cache")
    args = ["-f", "json", "--cluster", cluster.address, "--cache", cache, f"s3://{BUCKET}/"]
    first = run_cli(args, env)
    cluster.clear_records()
    second = run_cli(args, env)
    assert second.returncode == first.returncode == 1
    assert not cluster.payloads(), "a cached object was sent to the cluster"
    files = report_of(second)["files"]
    assert files and all(f["cached"] for f in files)
    assert comparable(report_of(second)) == comparable(report_of(first))


def test_hub_repositories_on_the_cluster(tmp_path: Path) -> None:
    """Hub objects are reopened on the node at the commit the client listed, with the node's
    own HF_TOKEN; the token never travels."""
    from tests.remote_http._remote_http_servers import (
        CDN,
        HF_GOOD_TOKEN,
        FakeHub,
        Repo,
    )
    from tests.remote_http._remote_http_servers import (
        EVIL_PICKLE as HUB_EVIL,
    )

    cdn = CDN()
    hub = FakeHub(cdn)
    hub.add("acme/private", Repo({"model.pkl": HUB_EVIL}, private=True))
    hub.add(
        "acme/evil",
        Repo(
            {"model.pkl": HUB_EVIL, "model.safetensors": clean_safetensors(), "a/b.pkl": HUB_EVIL}
        ),
    )
    env = {
        "HF_ENDPOINT": hub.server.url,
        "HF_TOKEN": HF_GOOD_TOKEN,
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    dask = start_cluster(tmp_path / "dask", workers=[env])
    try:
        client_env = base_env(**env)
        targets = ["hf://acme/private", "hf://acme/evil"]
        local = run_cli(["-f", "json", *targets], client_env)
        remote = run_cli(["-f", "json", "--cluster", dask.address, *targets], client_env)
        assert remote.returncode == local.returncode == 1, remote.stderr
        assert comparable(report_of(remote)) == comparable(report_of(local))
        assert len(report_of(remote)["files"]) == 4
        raw = dask.raw_payloads()
        assert raw and all(HF_GOOD_TOKEN.encode() not in p for p in raw)
        assert all(b"0123456789abcdef0123456789abcdef01234567" in p for p in raw)
    finally:
        dask.close()
        hub.server.stop()
        cdn.server.stop()
