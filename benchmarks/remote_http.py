"""Remote-scan benchmark over plain HTTP: scanning ~1 GiB objects vs downloading them.

    python benchmarks/remote_http.py [--size-mib N]

Serves a safetensors file and a PyTorch zip of about 1 GiB each from a ranged file server on
127.0.0.1 (the same HttpReader the Hub and Artifactory fetchers use), then measures, in the
same run, a plain full download (httpx, streamed to nowhere) and `modelaudit scan URL`. Bytes
are counted by the server: every body byte it writes to a socket.
"""

from __future__ import annotations

import argparse
import functools
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _inputs import make_safetensors, make_torch_zip

MIB = 1 << 20
_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
_sent = [0]
_lock = threading.Lock()


def measure(action: Callable[[], int]) -> tuple[float, int, int]:
    """Wall time, bytes the server sent, and the action's result."""
    with _lock:
        before = _sent[0]
    started = time.perf_counter()
    result = action()
    wall = time.perf_counter() - started
    with _lock:
        return wall, _sent[0] - before, result


def serve(folder: Path) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

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
            m = _RANGE.match(self.headers.get("Range", ""))
            self.send_response(206 if m else 200)
            if m:
                start = int(m.group(1))
                end = min(size, int(m.group(2)) + 1 if m.group(2) else size)
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
                        with _lock:
                            _sent[0] += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_HEAD = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def full_download(url: str) -> int:
    import httpx

    total = 0
    with httpx.stream("GET", url, timeout=600) as response:
        for chunk in response.iter_raw(MIB):
            total += len(chunk)
    return total


def scan(url: str) -> int:
    cmd = [sys.executable, "-m", "modelaudit", "scan", "--no-progress", "-f", "json", url]
    return subprocess.run(cmd, capture_output=True, text=True).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="object size (default 1024)")
    args = parser.parse_args()
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="modelaudit-bench-") as tmp:
        folder = Path(tmp)
        make_safetensors(folder / "model.safetensors", size)
        make_torch_zip(folder / "pytorch_model.bin", size)
        server = serve(folder)
        port = server.server_address[1]
        failed = False
        print(f"{'object':<20} {'size':>10} {'download':>18} {'scan':>22}  exit")
        for name in ("model.safetensors", "pytorch_model.bin"):
            url = f"http://127.0.0.1:{port}/{name}"
            object_size = (folder / name).stat().st_size
            dl_time, dl_bytes, _ = measure(functools.partial(full_download, url))
            scan_time, scan_bytes, code = measure(functools.partial(scan, url))
            print(
                f"{name:<20} {object_size / MIB:>8.0f}Mi "
                f"{dl_bytes / MIB:>9.1f}Mi {dl_time:>6.2f}s "
                f"{scan_bytes / 1024:>11.1f}Ki {scan_time:>7.2f}s  {code}"
            )
            if name.endswith(".safetensors") and (scan_bytes >= MIB or code != 0):
                failed = True
        server.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
