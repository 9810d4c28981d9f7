"""Remote-scan benchmark over plain HTTP: scanning ~1 GiB objects vs downloading them.

    python benchmarks/remote_http.py [--size-mib N] [--latency-ms 0 50] [--objects ...]

Serves a safetensors file, a GGUF file, an ONNX model with 512 embedded tensors and a
PyTorch zip of about 1 GiB each from a ranged file server on 127.0.0.1 (the same HttpReader
the Hub and Artifactory fetchers use) behind a relay that adds latency and counts requests
and bytes (benchmarks/_remote.py). For each object and latency it measures a plain full
download (httpx, streamed to nowhere, in this process), a download by a process of its own
as a user runs one (curl, or http.client where there is no curl; its start-up included) and
`modelaudit scan URL` as JSON, SARIF, with --sbom, and SARIF with --hash-remote (a plain
server publishes no digest, so that one downloads). The in-process httpx download is the
slower baseline (httpx's reads cost 1.3-1.8 s of CPU per GiB, sharing a GIL with the server
and the relay): each scan's time is printed against both, and `SLOWER than curl` marks a
scan slower than the second. Exits 1 when a scan is slower than the first download or a
header-only scan moves 1% of the object or more. A SARIF run with --hash-remote is also
timed against the download piped through sha256 (`curl | openssl dgst -sha256`, in the same
run): sha256 runs at ~1.7 GB/s here while loopback curl moves ~3 GB/s, so no run that hashes
every byte can match a bare download. `--compare TREE`: each scan also runs from another tree (e.g. main's) right before it, as MODE@old. `--no-range`: the server ignores Range (and says so), so every scan is a
whole-object fill written to the spool.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

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
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def serve(folder: Path, ranges: bool = True) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: with Nagle's algorithm a kept-alive
        # connection's small body waits for the client's delayed ACK (40 ms), which servers
        # answering Range requests (nginx, S3, CDNs) do not make their clients wait.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            path = folder / self.path.lstrip("/").split("?", 1)[0]
            if not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            size = path.stat().st_size
            start, end = 0, size
            m = _RANGE.match(self.headers.get("Range", "")) if ranges else None
            self.send_response(206 if m else 200)
            if not ranges:
                self.send_header("Accept-Ranges", "none")
            if m and not m.group(1):
                # a suffix range: the last N bytes
                start, end = max(0, size - int(m.group(2) or 0)), size
            elif m:
                start = int(m.group(1))
                end = min(size, int(m.group(2)) + 1 if m.group(2) else size)
            if m:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
            self.send_header("Content-Length", str(end - start))
            self.send_header("ETag", f'"{int(path.stat().st_mtime_ns)}-{size}"')
            self.end_headers()
            if self.command == "HEAD":
                return
            try:
                with path.open("rb") as f:
                    f.seek(start)
                    left = end - start
                    while left and (chunk := f.read(min(MIB, left))):
                        self.wfile.write(chunk)
                        left -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_HEAD = do_GET

    ThreadingHTTPServer.request_queue_size = 128  # parallel ranged reads connect at once
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def full_download(url: str) -> tuple[int, str]:
    import httpx

    total = 0
    with httpx.stream("GET", url, timeout=600) as response:
        for chunk in response.iter_raw(MIB):
            total += len(chunk)
    return 0, f"{total} bytes"


def fresh_command(url: str) -> tuple[str, list[str]]:
    """A download by a process of its own, as a user runs one: curl where it is installed,
    else Python's http.client into a reused buffer (no third-party import)."""
    curl = shutil.which("curl")
    if curl:
        return "curl", [curl, "-sS", "-o", "/dev/null", url]
    code = (
        "import http.client, sys, urllib.parse as u\n"
        "p = u.urlsplit(sys.argv[1])\n"
        "c = http.client.HTTPConnection(p.hostname, p.port, timeout=600)\n"
        "c.request('GET', p.path)\n"
        "r = c.getresponse()\n"
        "b = memoryview(bytearray(8 << 20))\n"
        "while r.readinto(b): pass\n"
    )
    return "http.client", [sys.executable, "-c", code, url]


def hashed_command(url: str) -> tuple[str, list[str]]:
    """The same download piped through sha256, as a user who wants the hash runs it (the
    baseline of `--hash-remote`: sha256 is slower than loopback moves bytes). OpenSSL's
    sha256, the one Python's hashlib runs: coreutils' sha256sum here is 4 times slower
    (0.7 s of CPU for 256 MiB against 0.17 s), which would flatter the scan."""
    curl, openssl = shutil.which("curl"), shutil.which("openssl")
    if curl and openssl:
        pipeline = f"set -o pipefail; {curl} -sS {url} | {openssl} dgst -sha256 >/dev/null"
        return "curl|sha256", ["bash", "-c", pipeline]
    code = (
        "import hashlib, http.client, sys, urllib.parse as u\n"
        "p = u.urlsplit(sys.argv[1])\n"
        "c = http.client.HTTPConnection(p.hostname, p.port, timeout=600)\n"
        "c.request('GET', p.path)\n"
        "r = c.getresponse()\n"
        "h = hashlib.sha256()\n"
        "b = memoryview(bytearray(8 << 20))\n"
        "while n := r.readinto(b): h.update(b[:n])\n"
    )
    return "py+sha256", [sys.executable, "-c", code, url]


def main() -> int:
    parser = arguments(__doc__.splitlines()[0], list(OBJECTS))
    parser.add_argument(
        "--no-range",
        action="store_true",
        help="a server that ignores Range and says so: every scan downloads (and writes) the "
        "whole object",
    )
    args = parser.parse_args()
    size = args.size_mib * MIB
    ok = True
    with tempfile.TemporaryDirectory(prefix="modelaudit-bench-") as tmp:
        folder = Path(tmp)
        for name in args.objects:
            OBJECTS[name](folder / name, size)
        server = serve(folder, ranges=not args.no_range)
        port = server.server_address[1]
        print(HEADER)
        for latency_ms in args.latency_ms:
            relay = Relay(port, latency_ms / 1000)
            for name in args.objects:
                url = f"{relay.url}/{name}"
                object_size = (folder / name).stat().st_size
                download = measure(relay, functools.partial(full_download, url))
                label, cmd = fresh_command(url)
                fresh = measure(relay, functools.partial(fresh_download, cmd))
                hashed = None
                if "sarif+hash" in args.modes:
                    label_h, cmd_h = hashed_command(url)
                    hashed = (label_h, measure(relay, functools.partial(fresh_download, cmd_h)))
                runs = scan_runs(
                    relay, url, dict(os.environ), modes=tuple(args.modes), compare=args.compare
                )
                whole = args.no_range
                ok = (
                    report(
                        name,
                        object_size,
                        latency_ms / 1000,
                        download,
                        runs,
                        whole,
                        (label, fresh),
                        hashed,
                    )
                    and ok
                )
        server.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
