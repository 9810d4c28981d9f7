"""Remote-scan benchmark: scanning objects on a GCS stand-in vs downloading them.

    python benchmarks/remote_gcs.py [--size-mib N] [--latency-ms 0 50] [--objects ...]
                                    [--modes json sarif] [--compare TREE]

Starts gcp-storage-emulator (in memory) on 127.0.0.1 behind `GcsFront`
(tests/remote_cloud/_remote_cloud_servers.py), which answers media GETs as GCS does (suffix
ranges, x-goog-generation, ifGenerationMatch: what the emulator lacks), and uploads the
objects (64 MiB each by default: the emulator holds them in its memory). Behind a relay that
adds latency and counts requests and bytes (benchmarks/_remote.py), it measures for each
object and latency a plain full download (one media GET, in this process) and
`modelaudit scan gs://...` in each mode; with --compare, the same scan from another tree
right before it. The front reads each range from the emulator as it is asked, so the times
say how many round trips a scan waits for more than how long real GCS takes.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

from _remote import HEADER, OBJECTS, Relay, arguments, measure, report, scan_runs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.remote_cloud._remote_cloud_servers import (  # noqa: E402
    GcsFront,
    start_gcs_emulator,
    stop,
)

MIB = 1 << 20
BUCKET = "bench-models"


def download_sync(endpoint: str, key: str) -> tuple[int, str]:
    """The object's bytes in one media GET, read to nowhere."""
    url = f"{endpoint}/storage/v1/b/{BUCKET}/o/{quote(key, safe='')}?alt=media"
    total = 0
    with urllib.request.urlopen(url, timeout=300) as response:
        while chunk := response.read(MIB):
            total += len(chunk)
    return 0, f"{total} bytes"


def main() -> int:
    parser = arguments(__doc__.splitlines()[0], list(OBJECTS))
    parser.set_defaults(size_mib=64, modes=["json", "sarif"])
    args = parser.parse_args()
    size = args.size_mib * MIB
    ok = True
    with tempfile.TemporaryDirectory(prefix="modelaudit-bench-") as tmp:
        folder = Path(tmp)
        files = {name: folder / name for name in args.objects}
        for name, path in files.items():
            OBJECTS[name](path, size)
        sizes = {name: path.stat().st_size for name, path in files.items()}
        emulator = start_gcs_emulator()
        front = GcsFront(emulator.url)
        try:
            started = time.perf_counter()
            emulator.create_bucket(BUCKET)
            for name, path in files.items():
                emulator.upload(BUCKET, name, path.read_bytes())
                path.unlink()
            print(f"uploaded to the emulator in {time.perf_counter() - started:.1f}s\n")
            print(HEADER)
            port = int(front.url.rsplit(":", 1)[1])
            for latency_ms in args.latency_ms:
                relay = Relay(port, latency_ms / 1000)
                env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GCS_"))}
                env["STORAGE_EMULATOR_HOST"] = relay.url
                for key in files:
                    download = measure(relay, functools.partial(download_sync, relay.url, key))
                    uri = f"gs://{BUCKET}/{key}"
                    runs = scan_runs(relay, uri, env, modes=tuple(args.modes), compare=args.compare)
                    ok = report(key, sizes[key], latency_ms / 1000, download, runs) and ok
        finally:
            front.close()
            stop(emulator.proc)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
