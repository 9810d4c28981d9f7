"""Remote-scan benchmark: scanning ~1 GiB objects on an S3 server (moto) vs downloading them.

    python benchmarks/remote_s3.py [--size-mib N] [--latency-ms 0 50] [--objects ...]

Starts a moto S3 server on 127.0.0.1 and uploads a safetensors file, a GGUF file, an ONNX
model with 512 embedded tensors and a PyTorch zip of about 1 GiB each (with a SHA-256
checksum). Behind a relay that adds latency and counts requests and bytes (every byte the
server sends, headers included; benchmarks/_remote.py), it measures for each object and
latency a plain full download (aiobotocore GetObject streamed to nowhere, in this process;
and the same in a process of its own, start-up included, as a user's script runs it) and
`modelaudit scan s3://...` as JSON, SARIF, with --sbom and SARIF with --hash-remote (which downloads only
with --no-checksum; also timed against the fresh process's download hashed with sha256 on the
way, in the same run: no run that hashes every byte can match a bare download). Exits 1 when a scan is slower than the download or a header-only scan
moves 1% of the object or more. moto reads the whole object for every GetObject, ranged or
not, so each request costs about what the download does there: the figures say how many
requests a scan makes more than how long they take on real S3.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _remote import (
    HEADER,
    OBJECTS,
    Relay,
    arguments,
    fresh_download,
    measure,
    report,
    scan_runs,
)

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


def upload(endpoint: str, files: dict[str, Path], checksum: bool = True) -> None:
    """Each object in one PutObject with a SHA-256 checksum, as a careful producer uploads:
    S3 then publishes ChecksumSHA256, which SARIF and SBOM runs use instead of downloading
    (`checksum` False: only the ETag's md5 is published, and --hash-remote downloads)."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=BUCKET)
    for key, path in files.items():
        with path.open("rb") as body:
            extra = {"ChecksumAlgorithm": "SHA256"} if checksum else {}
            s3.put_object(Bucket=BUCKET, Key=key, Body=body, **extra)


async def full_download(endpoint: str, key: str, hashed: bool = False) -> int:
    """The object's bytes, streamed to nowhere (`hashed`: through sha256 on the way)."""
    import hashlib

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
        digest = hashlib.sha256() if hashed else None
        async with resp["Body"] as body:
            async for chunk in body.iter_chunks(MIB):
                total += len(chunk)
                if digest is not None:
                    digest.update(chunk)
        return total


def download_sync(endpoint: str, key: str) -> tuple[int, str]:
    return 0, f"{asyncio.run(full_download(endpoint, key))} bytes"


def fresh_command(endpoint: str, key: str, hashed: bool = False) -> list[str]:
    """The same aiobotocore download in a process of its own, as a user's script runs it
    (interpreter and aiobotocore import included; no AWS CLI here to time instead);
    `hashed`: through sha256 on the way, the baseline of a run that hashes every byte."""
    code = (
        "import asyncio, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from remote_s3 import full_download\n"
        "asyncio.run(full_download(sys.argv[1], sys.argv[2], sys.argv[3] == 'sha256'))\n"
    )
    return [sys.executable, "-c", code, endpoint, key, "sha256" if hashed else "-"]


def scan_env(endpoint: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_ENDPOINT_URL=endpoint,
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env


def main() -> int:
    parser = arguments(__doc__.splitlines()[0], list(OBJECTS))
    parser.add_argument(
        "--no-checksum",
        action="store_true",
        help="upload without ChecksumSHA256: SARIF with --hash-remote then downloads",
    )
    args = parser.parse_args()
    size = args.size_mib * MIB
    ok = True
    with tempfile.TemporaryDirectory(prefix="modelaudit-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        files = {name: folder / name for name in args.objects}
        for name, path in files.items():
            OBJECTS[name](path, size)
        sizes = {name: path.stat().st_size for name, path in files.items()}
        print(f"generated inputs in {time.perf_counter() - started:.1f}s")
        server, port = start_moto()
        try:
            started = time.perf_counter()
            upload(f"http://127.0.0.1:{port}", files, checksum=not args.no_checksum)
            for path in files.values():
                path.unlink()
            print(f"uploaded to moto in {time.perf_counter() - started:.1f}s\n")
            print(HEADER)
            for latency_ms in args.latency_ms:
                relay = Relay(port, latency_ms / 1000)
                env = scan_env(relay.url)
                for key in files:
                    uri = f"s3://{BUCKET}/{key}"
                    download = measure(relay, functools.partial(download_sync, relay.url, key))
                    fresh = measure(
                        relay, functools.partial(fresh_download, fresh_command(relay.url, key))
                    )
                    hashed = None
                    if "sarif+hash" in args.modes:
                        cmd = fresh_command(relay.url, key, hashed=True)
                        hashed = (
                            "fresh+sha",
                            measure(relay, functools.partial(fresh_download, cmd)),
                        )
                    runs = scan_runs(relay, uri, env, modes=tuple(args.modes), compare=args.compare)
                    fresh_fig = ("fresh proc", fresh)
                    ok = (
                        report(
                            key,
                            sizes[key],
                            latency_ms / 1000,
                            download,
                            runs,
                            False,
                            fresh_fig,
                            hashed,
                        )
                        and ok
                    )
        finally:
            server.terminate()
            server.wait(10)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
