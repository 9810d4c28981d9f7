"""Remote-scan benchmark (issue 5): scanning ~1 GiB objects on an S3 server vs downloading them.

    python benchmarks/remote_s3.py [--size-mib N]

Starts a moto S3 server on 127.0.0.1, uploads a safetensors file and a PyTorch zip of about
1 GiB each, then for each object measures, in the same run, a plain full download (aiobotocore
GetObject streamed to nowhere) and `modelaudit scan s3://...`. Bytes transferred are counted
by a TCP relay in front of the server (every byte the server sends, headers included), so
the figure does not depend on the scanner's own bookkeeping. The safetensors scan must move < 1 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from _inputs import make_safetensors, make_torch_zip

T = TypeVar("T")

MIB = 1 << 20
BUCKET = "bench-models"
KEY_ID = "AKIAMODELAUDITBENCH1"
SECRET = "modelaudit-benchmark-secret-key-0001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_moto() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=2).read()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto server did not start")


class CountingProxy:
    """A TCP relay in front of the server that counts the bytes the server sends back."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.sent_to_clients = 0
        self.requests = 0
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool
    ) -> None:
        try:
            while data := await reader.read(1 << 16):
                if count:
                    self.sent_to_clients += len(data)
                else:
                    self.requests += data.count(b"GET /") + data.count(b"HEAD /")
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        await asyncio.gather(
            self._pipe(reader, up_writer, False), self._pipe(up_reader, writer, True)
        )


def upload(endpoint: str, files: dict[str, Path]) -> None:
    import boto3
    from boto3.s3.transfer import TransferConfig

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=BUCKET)
    config = TransferConfig(multipart_chunksize=128 * MIB, max_concurrency=2)
    for key, path in files.items():
        s3.upload_file(str(path), BUCKET, key, Config=config)


async def full_download(endpoint: str, key: str) -> int:
    from aiobotocore.session import AioSession

    session = AioSession()
    async with session.create_client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    ) as client:
        resp = await client.get_object(Bucket=BUCKET, Key=key)
        total = 0
        async with resp["Body"] as body:
            async for chunk in body.iter_chunks(MIB):
                total += len(chunk)
        return total


async def one_small_range(endpoint: str, key: str) -> int:
    """One 100-byte ranged GetObject: what a single request costs on this server."""
    from aiobotocore.session import AioSession

    async with AioSession().create_client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    ) as client:
        resp = await client.get_object(Bucket=BUCKET, Key=key, Range="bytes=0-99")
        async with resp["Body"] as body:
            return len(await body.read())


def download_sync(endpoint: str, key: str) -> int:
    return asyncio.run(full_download(endpoint, key))


def small_range_sync(endpoint: str, key: str) -> int:
    return asyncio.run(one_small_range(endpoint, key))


def scan(endpoint: str, key: str) -> tuple[int, dict[str, Any]]:
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_ENDPOINT_URL=endpoint,
        AWS_DEFAULT_REGION="us-east-1",
    )
    uri = f"s3://{BUCKET}/{key}"
    proc = subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", "--no-progress", "-f", "json", uri],
        env=env,
        capture_output=True,
        text=True,
    )
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        report = {"stderr": proc.stderr[-500:]}
    return proc.returncode, report


def measure(proxy: CountingProxy, action: Callable[[], T]) -> tuple[float, int, int, T]:
    """Wall time, bytes the server sent and requests it got while `action` ran."""
    sent, asked = proxy.sent_to_clients, proxy.requests
    started = time.perf_counter()
    result = action()
    wall = time.perf_counter() - started
    return wall, proxy.sent_to_clients - sent, proxy.requests - asked, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="object size (default 1024)")
    args = parser.parse_args()
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="modelaudit-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        files = {
            "model.safetensors": folder / "model.safetensors",
            "pytorch_model.bin": folder / "pytorch_model.bin",
        }
        make_safetensors(files["model.safetensors"], size)
        make_torch_zip(files["pytorch_model.bin"], size)
        print(f"generated inputs in {time.perf_counter() - started:.1f}s")
        server, port = start_moto()
        proxy = CountingProxy(port)
        endpoint = f"http://127.0.0.1:{proxy.port}"
        try:
            started = time.perf_counter()
            upload(f"http://127.0.0.1:{port}", files)
            for path in files.values():
                path.unlink()
            print(f"uploaded to {endpoint} in {time.perf_counter() - started:.1f}s\n")
            ok = True
            for key in files:
                d_wall, d_bytes, d_reqs, got = measure(
                    proxy, functools.partial(download_sync, endpoint, key)
                )
                s_wall, s_bytes, s_reqs, (rc, report) = measure(
                    proxy, functools.partial(scan, endpoint, key)
                )
                files_info: list[dict[str, Any]] = report.get("files") or [{}]
                status = files_info[0].get("status")
                r_wall, _, _, _ = measure(proxy, functools.partial(small_range_sync, endpoint, key))
                print(f"{key}: object {got} bytes")
                for issue in report.get("issues", []):
                    print(f"  [{issue['severity']}] {issue['message']}")
                print(
                    f"  full download : {d_bytes / MIB:10.3f} MiB  {d_wall:7.3f}s  {d_reqs} request(s)"
                )
                print(
                    f"  modelaudit    : {s_bytes / MIB:10.3f} MiB  {s_wall:7.3f}s  {s_reqs} request(s)"
                    f"  (exit {rc}, file status {status})"
                )
                print(f"  one 100-byte ranged GET on this server: {r_wall:.3f}s")
                print(
                    f"  ratio         : bytes {s_bytes / d_bytes:.5f}  time {s_wall / d_wall:.3f}\n"
                )
                if key.endswith(".safetensors") and s_bytes >= MIB:
                    ok = False
                    print("  FAIL: the safetensors scan moved 1 MiB or more")
        finally:
            server.terminate()
            server.wait(10)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
