"""A real Dask cluster on 127.0.0.1 for the cluster tests: `dask scheduler` and `dask worker`
processes (no LocalCluster), plus the corpora and report comparisons the tests share.

Workers run `tests/cluster/_node_probe.py` as a Dask preload: it records each shard payload
that reaches the node (to prove what travels) and, while the cluster's hold file exists, holds
each task (a node that is slow, so that a test can kill it mid-shard or watch the client wait).
The scheduler runs `tests/cluster/_scheduler_probe.py`: it records every message a client
sends it, as the scheduler saw it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.remote_cloud._remote_cloud_servers import CLOUD_ENV, free_port

PROBE = str(Path(__file__).with_name("_node_probe.py"))
SCHEDULER_PROBE = str(Path(__file__).with_name("_scheduler_probe.py"))
DASK = str(Path(sys.executable).with_name("dask"))
EVIL_PICKLE = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
CLEAN_PICKLE = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s."


def base_env(**extra: str) -> dict[str, str]:
    """This process's environment without cloud credentials or Dask settings, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in CLOUD_ENV and not k.startswith("DASK_") and k != "MODELAUDIT_CACHE_SECRET"
    }
    env.update(extra)
    return env


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    #: Processes under the worker when a test killed it.
    orphans: set[int] = field(default_factory=set)

    def kill(self) -> None:
        """SIGKILL: the node dies as a machine would, with no goodbye to the scheduler."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def descendants(self) -> set[int]:
        """Every live process under this worker (its scan workers and fork server)."""
        return descendants(self.proc.pid)


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class DaskCluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    folder: Path
    record: Path
    workers: list[Worker] = field(default_factory=list)

    @property
    def hold(self) -> Path:
        """While this file exists, every task of a worker started without a hold of its own
        waits before scanning."""
        return self.folder / "hold"

    @property
    def scheduler_record(self) -> Path:
        return self.folder / "scheduler-record"

    def start_worker(self, name: str, env: Mapping[str, str] | None = None) -> Worker:
        log = self.folder / f"{name}.log"
        worker_env = base_env(
            MODELAUDIT_NODE_JOBS="1",
            MODELAUDIT_TEST_RECORD=str(self.record),
            MODELAUDIT_TEST_HOLD=str(self.hold),
        )
        worker_env.update(env or {})
        with log.open("wb") as err:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                [
                    DASK,
                    "worker",
                    self.address,
                    "--host",
                    "127.0.0.1",
                    "--name",
                    name,
                    "--nthreads",
                    "2",
                    "--no-nanny",
                    "--no-dashboard",
                    "--preload",
                    PROBE,
                ],
                env=worker_env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=self.folder,
            )
        worker = Worker(name, proc, log)
        self.workers.append(worker)
        return worker

    def wait_for_workers(self, count: int, timeout: float = 120) -> None:
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(count, timeout=timeout)

    def worker_count(self) -> int:
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            return len(client.nthreads())

    def shard_tasks(self) -> int:
        """Shard tasks the scheduler knows of now (queued, processing or held in memory)."""
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            count: int = client.run_on_scheduler(
                lambda dask_scheduler: sum(
                    1 for key in dask_scheduler.tasks if str(key).startswith("modelaudit-shard-")
                )
            )
            return count

    def executing(self) -> int:
        """Tasks running on the workers' threads now, summed over the living workers."""
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            counts = client.run(lambda dask_worker: len(dask_worker.state.executing))
            return sum(counts.values())

    def warm(self) -> None:
        """Start the node engine (a Scanner and its scan workers) on every worker now, so a
        test with a short deadline does not spend it booting them."""
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            futures = [
                client.submit(
                    lambda: bool(
                        __import__("modelaudit.cluster.node", fromlist=["node"])._node_engine()
                    ),
                    workers=[address],
                    pure=False,
                )
                for address in client.nthreads()
            ]
            assert all(client.gather(futures))

    def scheduler_messages(self) -> bytes:
        """Everything clients sent the scheduler since the last `clear_records`."""
        path = self.scheduler_record / "scheduler.bin"
        return path.read_bytes() if path.exists() else b""

    def payloads(self) -> list[dict[str, Any]]:
        """Every shard payload the nodes received, decoded."""
        out = []
        for path in sorted(self.record.glob("*.json")):
            out.append(json.loads(path.read_bytes()))
        return out

    def raw_payloads(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted(self.record.glob("*.json"))]

    def clear_records(self) -> None:
        for folder in (self.record, self.scheduler_record):
            for path in folder.iterdir():
                path.unlink()

    def close(self) -> None:
        for worker in self.workers:
            if worker.proc.poll() is None:
                worker.proc.terminate()
        for worker in self.workers:
            try:
                worker.proc.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
        self.scheduler.terminate()
        try:
            self.scheduler.wait(20)
        except subprocess.TimeoutExpired:
            self.scheduler.kill()
            self.scheduler.wait(10)


def start_cluster(
    folder: Path,
    workers: Sequence[Mapping[str, str]] = ({}, {}),
    scheduler_env: Mapping[str, str] | None = None,
) -> DaskCluster:
    """A scheduler and one worker per entry of `workers` (each with that extra environment)."""
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / "payloads"
    record.mkdir(exist_ok=True)
    (folder / "scheduler-record").mkdir(exist_ok=True)
    port = free_port()
    with (folder / "scheduler.log").open("wb") as err:
        scheduler = subprocess.Popen(
            [
                DASK,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
                "--preload",
                SCHEDULER_PROBE,
            ],
            env=base_env(
                MODELAUDIT_TEST_SCHEDULER_RECORD=str(folder / "scheduler-record"),
                **(scheduler_env or {}),
            ),
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=folder,
        )
    cluster = DaskCluster(f"tcp://127.0.0.1:{port}", scheduler, folder, record)
    try:
        for index, env in enumerate(workers):
            cluster.start_worker(f"w{index + 1}", env)
        cluster.wait_for_workers(len(workers))
    except BaseException:
        cluster.close()
        raise
    return cluster


def wait_for(predicate: Any, timeout: float = 60, what: str = "a condition") -> None:
    """Poll `predicate` until it holds; fail naming `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def run_cli(
    args: Sequence[str], env: Mapping[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", "--no-progress", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def report_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(
            f"no JSON report (exit {proc.returncode}): {proc.stderr[-2000:]}\n"
            f"stdout: {proc.stdout[:300]!r}...{proc.stdout[-300:]!r}"
        ) from None
    return data


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """A report without what differs between any two runs (times, durations, commands)."""
    files = {}
    for f in report["files"]:
        entry = {k: v for k, v in f.items() if k not in ("duration", "cached")}
        metadata = dict(entry.get("metadata") or {})
        metadata.pop("bytes_transferred", None)
        entry["metadata"] = metadata
        files[f["path"]] = entry
    issues = sorted(
        (
            json.dumps({k: v for k, v in i.items() if k != "timestamp"}, sort_keys=True)
            for i in report["issues"]
        ),
    )
    summary = dict(report["summary"])
    return {
        "files": files,
        "issues": issues,
        "summary": summary,
        "assets": sorted(json.dumps(a, sort_keys=True) for a in report["assets"]),
        "scanner_names": report["scanner_names"],
        "target_errors": report["target_errors"],
        "bytes_scanned": report["bytes_scanned"],
    }


def small_sweep(folder: Path, count: int) -> Path:
    """`count` small pickles in two folders, one in 25 malicious."""
    for index in range(count):
        sub = folder / ("a" if index % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"model{index:04d}.pkl").write_bytes(
            EVIL_PICKLE if index % 25 == 0 else CLEAN_PICKLE
        )
    return folder


class StallingServer:
    """An HTTP server whose HEAD answers at once and whose GET never does: the node that
    fetches the object is stuck until it is told to stop. Records each GET and whether the
    client went away (a stopped node closes its connection)."""

    def __init__(self, body: bytes) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.gets = 0
        self.disconnects = 0
        self.closing = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _head(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"stall-1"')
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()

            def do_HEAD(self) -> None:
                self._head()

            def do_GET(self) -> None:
                import select
                import socket

                owner.gets += 1
                peek = socket.MSG_PEEK | socket.MSG_DONTWAIT
                while not owner.closing.is_set():
                    ready, _, _ = select.select([self.connection], [], [], 0.1)
                    if ready and not self.connection.recv(1, peek):
                        owner.disconnects += 1
                        return

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                """A node that hangs up mid-request is what the tests expect."""

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
