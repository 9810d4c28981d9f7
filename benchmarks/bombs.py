"""Bomb benchmark (issue 11): every bomb through the CLI with default settings.

    python benchmarks/bombs.py [--only NAME ...] [--keep DIR] [--source CHECKOUT]

The CLI runs with PYTHONPATH set to this checkout (or `--source`, e.g. another worktree
to compare against).

Per input it prints wall time, whole-tree peak RSS (the CLI, its fork server and workers,
sampled from /proc every 50 ms), peak bytes allocated under the run's private TMPDIR, the
exit code and the verdict (status, critical/warning counts). Targets: every input ends
within 60 s and 2 GB with its findings kept; a folder of two pickle bombs and ten malicious
pickles reports all ten within two minutes. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hardening import _archive_bombs as archive  # noqa: E402
from tests.hardening import _bomb_corpus as corpus  # noqa: E402

MB = 1 << 20
GB = 1 << 30
RUN_CAP = 180.0
SWEEP_FILES = 2002  # the issue's directory: two bombs, ten malicious pickles, plain ones


def _evil_pickle(command: str = "echo pwned") -> bytes:
    """os.system(command) by REDUCE, written opcode by opcode (nothing is pickled or loaded)."""
    arg = command.encode()
    return b"\x80\x02cposix\nsystem\nq\x00X" + len(arg).to_bytes(4, "little") + arg + b"\x85R."


def tuple_dag_pickle(path: str, levels: int = 80, evil: bool = True) -> None:
    """Each tuple holds the previous one twice: 2**levels leaves in a few hundred bytes, with
    an os.system call in front whose finding must survive."""
    out = bytearray(b"\x80\x02")
    if evil:
        out += b"cposix\nsystem\nX\x04\x00\x00\x00echo\x85R0"
    out += b")q\x00"
    for level in range(levels):
        out += b"h" + bytes([level % 256]) + b"h" + bytes([level % 256]) + b"\x86"
        out += b"q" + bytes([(level + 1) % 256])
    out += b"."
    with open(path, "wb") as f:
        f.write(out)


def jinja_doubling(path: str, k: int = 40) -> None:
    """`{% set x = x ~ x %}` k times (2**k characters if folded naively), then a payload."""
    body = "{% set x = 'a' %}" + "{% set x = x ~ x %}" * k
    body += "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
    with open(path, "w", encoding="utf-8") as f:
        f.write(body)


def sevenzip_zeros(path: str, size: int = 256 * MB) -> None:
    import io

    import py7zr

    with py7zr.SevenZipFile(path, "w") as archive7:
        archive7.writef(io.BytesIO(bytes(size)), "weights.bin")


def _inputs() -> dict[str, Callable[[str], None]]:
    made: dict[str, Callable[[str], None]] = {
        "tuple_dag.pkl": tuple_dag_pickle,
        "doubling.jinja": jinja_doubling,
        "42.zip": lambda p: archive.nested_fanout_zip(p, levels=5, fanout=16, leaf=64 * MB),
        "zeros.keras": lambda p: archive.keras_of_zeros(p, members=8, size=GB),
        "sparse.tar": lambda p: archive.gnu_sparse_tar(p, announced=6 * GB),
        "overlap.keras": archive.overlapping_zip,
        "nested.npz": archive.nested_torch_in_npz,
        "zeros.7z": sevenzip_zeros,
    }
    made.update(corpus.BOMBS)
    return made


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and every descendant."""
    parents: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        parents.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += parents.get(pid, [])
    return total


def _allocated(folder: str) -> int:
    total = 0
    for base, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(base, name)).st_blocks * 512
    return total


SOURCE = [str(ROOT)]


@dataclass
class Run:
    wall: float
    rss: int
    tmp: int
    left: int
    rc: int
    status: list[str] = field(default_factory=list)
    critical: int = 0
    warning: int = 0
    issues: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0

    def line(self, name: str, size: int) -> str:
        ok = self.wall <= 60 and self.rss <= 2 * GB
        return (
            f"{name:<26} {size / 1024:9.1f} KiB {self.wall:7.2f}s  rss {self.rss / MB:6.0f} MiB"
            f"  tmp {self.tmp / MB:7.1f} MiB  left {self.left / MB:5.1f} MiB  rc={self.rc}"
            f"  {','.join(self.status)} C={self.critical} W={self.warning}"
            f"  {'ok' if ok else 'OVER TARGET'}"
        )


def run(target: str, tmp: str) -> Run:
    """One CLI run with default settings; peaks sampled while it runs."""
    report = os.path.join(tmp, "..", "report.json")
    with contextlib.suppress(OSError):
        os.unlink(report)
    exe = Path(sys.executable).with_name("modelaudit")
    cmd = [str(exe), "scan", target, "--format", "json", "--output", report, "--no-progress"]
    env = {**os.environ, "TMPDIR": tmp, "PYTHONPATH": SOURCE[0]}
    peaks = {"rss": 0, "tmp": 0}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peaks["rss"] = max(peaks["rss"], _tree_rss(proc.pid))
            peaks["tmp"] = max(peaks["tmp"], _allocated(tmp))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        proc.wait(RUN_CAP)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    wall = time.perf_counter() - start
    done.set()
    thread.join()
    out = Run(wall, peaks["rss"], peaks["tmp"], _allocated(tmp), proc.returncode)
    try:
        with open(report, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        out.status = ["no report"]
        return out
    out.issues = list(data.get("issues", []))
    severities = [str(i.get("severity", "")).lower() for i in out.issues]
    out.status = sorted({str(fr.get("status")) for fr in data.get("files", [])})
    out.critical = severities.count("critical")
    out.warning = severities.count("warning")
    out.files = len(data.get("files", []))
    return out


def sweep(work: str) -> None:
    folder = os.path.join(work, "sweep")
    os.makedirs(folder, exist_ok=True)
    tuple_dag_pickle(os.path.join(folder, "000_bomb_a.pkl"), levels=90)
    tuple_dag_pickle(os.path.join(folder, "000_bomb_b.pkl"), levels=100)
    for i in range(10):
        with open(os.path.join(folder, f"evil_{i}.pkl"), "wb") as f:
            f.write(_evil_pickle(f"echo {i}"))
    for i in range(SWEEP_FILES - 12):
        with open(os.path.join(folder, f"plain_{i:04d}.pkl"), "wb") as f:
            f.write(b"\x80\x02}q\x00(X\x01\x00\x00\x00aK" + bytes([i % 256]) + b"u.")
    tmp = os.path.join(work, "tmp-sweep")
    os.makedirs(tmp, exist_ok=True)
    m = run(folder, tmp)
    evil = {
        str(i.get("location", "")).split("evil_", 1)[1][:1]
        for i in m.issues
        if str(i.get("severity", "")).lower() == "critical" and "evil_" in str(i.get("location"))
    }
    print(
        f"sweep: 2 bombs + 10 malicious pickles in {SWEEP_FILES} files: {m.wall:.2f}s "
        "(target 120 s), "
        f"{len(evil)}/10 malicious reported, {m.files} files, rc={m.rc}, "
        f"rss {m.rss / MB:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--keep", default=None, help="build inputs here and keep them")
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--source", default=str(ROOT), help="checkout whose modelaudit runs")
    args = parser.parse_args()
    SOURCE[0] = os.path.abspath(args.source)
    print(f"modelaudit from {SOURCE[0]}")
    work = args.keep or tempfile.mkdtemp(prefix="bombs-bench-")
    inputs = os.path.join(work, "inputs")
    os.makedirs(inputs, exist_ok=True)
    try:
        for name, build in _inputs().items():
            if args.only and name not in args.only:
                continue
            path = os.path.join(inputs, name)
            if not os.path.exists(path):
                build(path)
            tmp = os.path.join(work, "tmp-" + name)
            os.makedirs(tmp, exist_ok=True)
            print(run(path, tmp).line(name, os.path.getsize(path)), flush=True)
            shutil.rmtree(tmp, ignore_errors=True)
            if not args.keep:
                os.unlink(path)
        if not args.no_sweep and not args.only:
            sweep(work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
