"""Cluster benchmark (issue 15): a 20,000-object bucket sweep, local engine vs a Dask cluster.

    python benchmarks/cluster.py [--objects N]

Starts a moto S3 server on 127.0.0.1 behind a relay that counts object reads (GetObject
request lines; listings are not counted), fills a bucket with small models (clean pickles,
safetensors files and one malicious pickle in 500), then runs `modelaudit scan s3://...`:
- with the local engine (the baseline),
- on a 2-worker cluster on this machine (`dask scheduler` and two `dask worker` processes,
  one scan process each, as the local engine has one per core), cold and again warm, each
  against the local run just before it (ratios: the cluster's wall time over that run's),
- with `--cache`: a first run that fills the cache, and a repeat run (objects read: 0).
Every run must report the same files with the same statuses and findings. The load column is
the machine's 1-minute load average as each run ended (the cores may be shared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BUCKET = "sweep"
KEY_ID = "AKIAMODELAUDITBENCH1"
SECRET = "modelaudit-benchmark-secret-key-0001"
EVIL = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
CLEAN = b"\x80\x02}q\x00(X\x06\x00\x00\x00weightq\x01G?\xf0\x00\x00\x00\x00\x00\x00u."
SCAN = [sys.executable, "-m", "modelaudit", "scan", "--no-progress", "-f", "json", "--timeout", "0"]
_OBJECT_GET = re.compile(rb"^GET /([^?\s]+/[^?\s]+) HTTP/1\.[01]\r$", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def safetensors_bytes() -> bytes:
    header = b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + bytes(16)


class ReadCounter:
    """A TCP relay in front of the server that counts object reads (GET on a key)."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.reads = 0
        self.port = 0
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
        try:
            while data := await src.read(1 << 16):
                if up:
                    self.reads += len(_OBJECT_GET.findall(data))
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        finally:
            dst.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        await asyncio.gather(
            self._pipe(reader, up_writer, True), self._pipe(up_reader, writer, False)
        )


def start_moto() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Under load moto takes a minute or more to import.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2).read()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto server did not start")


def fill(endpoint: str, count: int) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=BUCKET)
    tensors = safetensors_bytes()

    def put(index: int) -> None:
        if index % 500 == 0:
            key, body = f"models/{index % 40:02d}/evil{index:05d}.pkl", EVIL
        elif index % 2:
            key, body = f"models/{index % 40:02d}/m{index:05d}.safetensors", tensors
        else:
            key, body = f"models/{index % 40:02d}/m{index:05d}.pkl", CLEAN
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(count)))


class Cluster:
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        dask = str(Path(sys.executable).with_name("dask"))
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        log = (folder / "dask.log").open("wb")
        self.procs = [
            subprocess.Popen(
                [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        ]
        node_env = dict(env, MODELAUDIT_NODE_JOBS="1")
        worker = [dask, "worker", self.address, "--host", "127.0.0.1", "--nworkers", "1"]
        worker += ["--nthreads", "2", "--no-dashboard"]
        for index in range(2):
            self.procs.append(
                subprocess.Popen(
                    [*worker, "--name", f"w{index + 1}"],
                    env=node_env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
        import distributed

        client_class: Any = distributed.Client
        with client_class(self.address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def scan(env: dict[str, str], *extra: str) -> tuple[float, int, dict[str, Any]]:
    started = time.perf_counter()
    proc = subprocess.run(
        [*SCAN, *extra, f"s3://{BUCKET}/models/"],
        env=env,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(f"scan failed (exit {proc.returncode}): {proc.stderr[-2000:]!r}") from None
    return wall, proc.returncode, report


def verdicts(report: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {f["path"]: (f["status"], f["issue_count"]) for f in report["files"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000, help="objects (default 20000)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="modelaudit-bench-cluster-"))
    server, port = start_moto()
    counter = ReadCounter(port)
    cluster: Cluster | None = None
    try:
        started = time.perf_counter()
        fill(f"http://127.0.0.1:{port}", args.objects)
        print(f"{args.objects} objects uploaded in {time.perf_counter() - started:.1f}s")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DASK_"))}
        env.update(
            AWS_ACCESS_KEY_ID=KEY_ID,
            AWS_SECRET_ACCESS_KEY=SECRET,
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{counter.port}",
            AWS_DEFAULT_REGION="us-east-1",
        )
        cluster = Cluster(env, folder)
        rows: list[tuple[str, float, int, int, dict[str, Any], float]] = []

        def run(label: str, *extra: str) -> None:
            before = counter.reads
            wall, code, report = scan(env, *extra)
            # The machine's 1-minute load average as the run ended: the cores are shared.
            rows.append((label, wall, counter.reads - before, code, report, os.getloadavg()[0]))

        cache = str(folder / "cache")
        # Local and cluster runs alternate: the S3 server itself slows down over a long
        # session, so each cluster run is compared with the local run just before it.
        run("local engine (baseline)")
        run("2-worker cluster, cold", "--cluster", cluster.address)
        run("local engine (again)")
        run("2-worker cluster, warm", "--cluster", cluster.address)
        run("local, --cache (first run)", "--cache", cache)
        run("local, --cache (repeat)", "--cache", cache)
        run("cluster, --cache (repeat)", "--cluster", cluster.address, "--cache", cache)

        expected = verdicts(rows[0][4])
        assert len(expected) == args.objects, f"{len(expected)} files reported"
        print(
            f"\n{'run':30} {'wall':>9} {'vs local':>9} {'objects read':>13} {'cached':>7} "
            f"{'load':>5}  exit"
        )
        ok = True
        base_wall = rows[0][1]
        for label, wall, reads, code, report, load in rows:
            if label.startswith("local engine"):
                base_wall = wall
            cached = sum(1 for f in report["files"] if f.get("cached"))
            same = verdicts(report) == expected
            ok = ok and same and code == 1
            print(
                f"{label:30} {wall:8.2f}s {wall / base_wall:8.2f}x {reads:13d} {cached:7d} "
                f"{load:5.1f}  {code}{'' if same else '  REPORT DIFFERS'}"
            )
        repeat_reads = rows[5][2] + rows[6][2]
        print(f"\nobjects read by the repeat runs with --cache: {repeat_reads}")
        if repeat_reads:
            ok = False
        return 0 if ok else 1
    finally:
        if cluster is not None:
            cluster.close()
        server.terminate()
        server.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
