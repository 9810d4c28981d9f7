"""Shared parts of the remote benchmarks: inputs, a latency relay, the measured runs.

Inputs are ~1 GiB each and written sparse where the format allows it (tensor data as holes):
a safetensors file, a GGUF file with a 32,000-token vocabulary, an ONNX model with 512
embedded initialisers (2 MiB each) and a real torch.save checkpoint. The relay sits on
127.0.0.1 in front of the server: it adds latency as a delay line (each piece forwarded half
the added round trip after it arrived, each way, bandwidth unchanged) and counts the requests
and the bytes the server sends back, so figures do not depend on the scanner's bookkeeping.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _inputs import make_safetensors, make_torch_zip

MIB = 1 << 20

#: object name -> writer(path, size)
OBJECTS: dict[str, Callable[[Path, int], None]] = {}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _int_field(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def make_onnx(path: Path, size: int, tensors: int = 512) -> None:
    """A ModelProto with `tensors` float initialisers holding ~`size` bytes in all, written
    by hand so the raw data can stay a hole in the file."""
    per = (size // tensors) // 4 * 4
    heads = []
    for i in range(tensors):
        head = _int_field(1, per // 4) + _int_field(2, 1) + _field(8, f"w{i}".encode())
        heads.append(head + _varint(9 << 3 | 2) + _varint(per))  # raw_data, then `per` bytes
    shape = _field(2, _field(1, _field(1, _int_field(1, per // 4))))  # TypeProto.tensor.shape
    value_type = _field(1, _int_field(1, 1) + shape)
    graph_tail = (
        _field(1, _field(1, b"x") + _field(1, b"w0") + _field(2, b"y") + _field(4, b"Add"))
        + _field(2, b"g")
        + _field(11, _field(1, b"x") + _field(2, value_type))
        + _field(12, _field(1, b"y") + _field(2, value_type))
    )
    inits = [_varint(5 << 3 | 2) + _varint(len(h) + per) + h for h in heads]
    graph_len = len(graph_tail) + sum(len(i) + per for i in inits)
    with path.open("wb") as f:
        f.write(_int_field(1, 8) + _field(8, _int_field(2, 17)))  # ir_version, opset 17
        f.write(_varint(7 << 3 | 2) + _varint(graph_len))
        f.write(graph_tail)
        for init in inits:
            f.write(init)
            f.seek(per, os.SEEK_CUR)
        f.truncate(f.tell())


def make_gguf(path: Path, size: int, tensors: int = 16, tokens: int = 32_000) -> None:
    """A GGUF v3 header (architecture, a token list) and F32 tensors left as holes."""

    def string(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    per = (size // tensors) // 4
    kv = string("general.architecture") + struct.pack("<I", 8) + string("llama")
    kv += string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, tokens)
    kv += b"".join(string(f"tok{i}") for i in range(tokens))
    infos = b""
    for i in range(tensors):
        infos += string(f"blk.{i}.weight") + struct.pack("<IQIQ", 1, per, 0, i * per * 4)
    head = b"GGUF" + struct.pack("<IQQ", 3, tensors, 2) + kv + infos
    head += bytes(-len(head) % 32)
    with path.open("wb") as f:
        f.write(head)
        f.truncate(len(head) + tensors * per * 4)


OBJECTS.update(
    {
        "model.safetensors": make_safetensors,
        "model.gguf": make_gguf,
        "model.onnx": make_onnx,
        "pytorch_model.bin": make_torch_zip,
    }
)


_CHUNK = 1 << 18
_AHEAD_CHUNKS = 1024


class Relay:
    """A TCP relay on 127.0.0.1: `latency` added to every round trip (half each way),
    request and byte counts."""

    def __init__(self, upstream_port: int, latency: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.latency = latency / 2
        self.sent = 0
        self.requests = 0
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: bool,
        hang_up: Callable[[], None],
    ) -> None:
        # Bounded well above what 50 ms at loopback rates holds in flight (a rate limit of
        # 5 GB/s at 50 ms), so the relay never reads a whole cut stream ahead of its client.
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(_AHEAD_CHUNKS)

        async def forward() -> None:
            try:
                while True:
                    due, data = await queue.get()
                    if not data:
                        break
                    wait = due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    if upstream:
                        self.requests += data.count(b"GET /") + data.count(b"HEAD /")
                    else:
                        self.sent += len(data)
                    writer.write(data)
                    await writer.drain()
            except OSError:
                # One side hung up (a client cutting a stream): end both directions, or the
                # relay would go on reading the server's body ahead; what was read is dropped.
                hang_up()
                while (await queue.get())[1]:
                    pass
            finally:
                writer.close()

        task = asyncio.ensure_future(forward())
        try:
            while data := await reader.read(_CHUNK):
                await queue.put((time.monotonic() + self.latency, data))
        except OSError:
            pass
        await queue.put((0.0, b""))
        await task

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        def hang_up() -> None:
            for end in (writer, up_writer):
                end.transport.abort()

        await asyncio.gather(
            self._pipe(reader, up_writer, True, hang_up),
            self._pipe(up_reader, writer, False, hang_up),
        )


@dataclass
class Figures:
    wall: float
    sent: int
    requests: int
    rc: int = 0
    note: str = ""
    #: CPU seconds (user + system) of the child processes the action waited for (a scan)
    cpu: float = 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(relay: Relay, action: Callable[[], tuple[int, str]]) -> Figures:
    sent, asked = relay.sent, relay.requests
    cpu = _children_cpu()
    started = time.perf_counter()
    rc, note = action()
    wall = time.perf_counter() - started
    time.sleep(0.05)  # let the relay count the last bytes
    return Figures(wall, relay.sent - sent, relay.requests - asked, rc, note, _children_cpu() - cpu)


def scan_cli(target: str, env: dict[str, str], mode: str) -> tuple[int, str]:
    """`modelaudit scan` as a user runs it; `mode`: json, sarif, sbom or sarif+hash."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "modelaudit", "scan", "--no-progress", target]
        sbom = os.path.join(tmp, "sbom.json")
        if mode == "json":
            cmd += ["-f", "json"]
        elif mode.startswith("sarif"):
            cmd += ["-f", "sarif"]
            if mode.endswith("hash"):
                cmd.append("--hash-remote")
        else:
            cmd += ["-f", "json", "--sbom", sbom]
        # (`python -m` puts the working folder first on the path: the tree's own)
        tree = env.get("PYTHONPATH", "").split(os.pathsep)[0] or None
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tree)
        return proc.returncode, _hash_note(mode, proc.stdout, sbom)


MODES = ("json", "sarif", "sbom", "sarif+hash")


def arguments(description: str, objects: list[str]) -> argparse.ArgumentParser:
    """The options both remote benchmarks take; each adds its server's own."""
    made = argparse.ArgumentParser(description=description)
    made.add_argument("--size-mib", type=int, default=1024, help="object size (default 1024)")
    made.add_argument("--latency-ms", type=int, nargs="+", default=[0, 50])
    made.add_argument("--objects", nargs="+", default=objects, choices=objects)
    made.add_argument(
        "--compare",
        metavar="TREE",
        help="another tree of the package (e.g. a checkout of main): each scan also runs "
        "with PYTHONPATH=TREE right before, printed as MODE@old",
    )
    made.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    return made


def scan_runs(
    relay: Relay,
    target: str,
    env: dict[str, str],
    modes: tuple[str, ...] = MODES,
    compare: str | None = None,
) -> dict[str, Figures]:
    """Each mode's scan; with `compare` (another tree of the package, such as main's),
    that tree's scan of the same mode right before it, as `MODE@old`: the same run, the
    same machine's load, old and new alternating."""
    runs: dict[str, Figures] = {}
    for mode in modes:
        if compare:
            old_env = {**env, "PYTHONPATH": compare}
            runs[f"{mode}@old"] = measure(relay, functools.partial(scan_cli, target, old_env, mode))
        runs[mode] = measure(relay, functools.partial(scan_cli, target, env, mode))
    return runs


def load() -> str:
    """The machine's load average (1, 5, 15 minutes), printed beside every figure."""
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _hash_note(mode: str, stdout: str, sbom: str) -> str:
    try:
        if mode.startswith("sarif"):
            art = json.loads(stdout)["runs"][0]["artifacts"][0]
            algs = ",".join(sorted(art.get("hashes", {}))) or "no hash"
            return f"{algs} ({art['properties'].get('hashSource', 'computed')})"
        if mode == "sbom":
            doc: dict[str, Any] = json.loads(Path(sbom).read_text())
            comp = doc["components"][0]
            algs = ",".join(sorted(h["alg"] for h in comp.get("hashes", []))) or "no hash"
            return algs
    except (ValueError, KeyError, IndexError, OSError):
        return "?"
    return ""


def fresh_download(cmd: list[str]) -> tuple[int, str]:
    """A download as a user runs one: a process of its own (`cmd`), started and timed here,
    writing nowhere."""
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc.returncode, proc.stderr[-200:].strip()


def _baseline_row(label: str, fig: Figures) -> None:
    print(
        f"{'':<19} {'':>6} {label:<11} {fig.requests:>5} "
        f"{fig.sent / MIB:>10.1f} MiB {fig.wall:>7.2f}s  cpu {fig.cpu:5.2f}s  "
        f"rc={fig.rc} {fig.note}"
    )


def report(
    name: str,
    size: int,
    latency: float,
    download: Figures,
    runs: dict[str, Figures],
    whole: bool = False,
    fresh: tuple[str, Figures] | None = None,
    hashed: tuple[str, Figures] | None = None,
) -> bool:
    """Print one object's rows; False when a scan was slower than the download or a
    header-only scan moved 1% or more of the object (unless `whole`: every scan downloads).
    `fresh`: a second baseline, (its name, its figures), a download by a process of its own
    as a user runs one (start-up included): each scan's time against it is printed beside
    (`SLOWER than <name>`), without changing the verdict, which stays against `download`.
    `hashed`: the same fresh download piped through sha256, the honest baseline of a run
    that hashes every byte (`--hash-remote`): no hashing run can match a bare download,
    since sha256 runs slower than loopback moves bytes; printed beside the hashing rows."""
    ok = True
    ms = f"{latency * 1000:.0f} ms"
    print(
        f"{name:<19} {ms:>6} {'download':<11} {download.requests:>5} "
        f"{download.sent / MIB:>10.1f} MiB {download.wall:>7.2f}s  {load()}"
    )
    for baseline in (fresh, hashed):
        if baseline is not None:
            _baseline_row(*baseline)
    for mode, fig in runs.items():
        ratio = fig.wall / download.wall if download.wall else 0.0
        share = fig.sent / size
        verdict = ""
        beside = ""
        for baseline in (fresh, hashed if mode.split("@")[0].endswith("+hash") else None):
            if baseline is not None and baseline[1].wall:
                against = fig.wall / baseline[1].wall
                beside += f"  x{against:4.2f} vs {baseline[0]}"
                if against > 1.0 and "@" not in mode:
                    verdict += f" (SLOWER than {baseline[0]})"
        if "@" in mode:
            # the tree compared against: figures only, no verdict
            print(
                f"{'':<19} {'':>6} {mode:<11} {fig.requests:>5} {fig.sent / MIB:>10.3f} MiB "
                f"{fig.wall:>7.2f}s  x{ratio:4.2f} time{beside}  cpu {fig.cpu:5.2f}s  "
                f"rc={fig.rc}"
            )
            continue
        if ratio > 1.0:
            verdict = " SLOWER" + verdict
            ok = False
        header_only = name.endswith((".safetensors", ".gguf", ".bin"))
        if mode == "json" and header_only and not whole and share >= 0.01:
            verdict += " >1%"
            ok = False
        print(
            f"{'':<19} {'':>6} {mode:<11} {fig.requests:>5} {fig.sent / MIB:>10.3f} MiB "
            f"{fig.wall:>7.2f}s  x{ratio:4.2f} time{beside}  cpu {fig.cpu:5.2f}s  "
            f"{share * 100:6.3f}% bytes  rc={fig.rc} {fig.note}{verdict}"
        )
    return ok


HEADER = (
    f"{'object':<19} {'added':>6} {'run':<11} {'reqs':>5} {'moved':>14} {'time':>8}  vs download"
)
