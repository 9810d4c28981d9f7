"""Shared measuring helpers: wall time and peak RSS of a command, in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MODELAUDIT_BENCH_DATA", ROOT / "benchmarks" / "data"))

_PROBE = r"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - t
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
rss = usage.ru_maxrss * 1024
print(json.dumps({"wall": wall, "rss": rss, "rc": proc.returncode,
                  "cpu": usage.ru_utime + usage.ru_stime,
                  "err": proc.stderr.decode(errors="replace")[-500:]}))
"""


@dataclass
class Measurement:
    wall: float
    rss: int
    rc: int
    err: str
    #: User plus system time of the command and every descendant it waited for.
    cpu: float = 0.0


def measure(cmd: list[str], repeat: int = 3) -> Measurement:
    """Best wall time of `repeat` runs; peak RSS of the command and all its children."""
    best: Measurement | None = None
    # Bytecode as an installed package has it: with PYTHONDONTWRITEBYTECODE set (some CI and
    # container images set it), a source checkout would be compiled on every run while the
    # baseline, installed with its .pyc files, is not; the first of the runs writes them.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE, *cmd],
            capture_output=True,
            check=True,
            text=True,
            env=env,
        ).stdout
        m = Measurement(**json.loads(out))
        if best is None or m.wall < best.wall:
            best = m
    assert best is not None
    return best


def modelaudit_cmd(*paths: str) -> list[str]:
    exe = Path(sys.executable).with_name("modelaudit")
    return [str(exe), "scan", *paths, "--format", "json", "--no-progress"]


def row(label: str, ours: Measurement, base: Measurement | None, base_label: str) -> str:
    text = f"{label:<38} ours {ours.wall:7.3f}s  rss {ours.rss / 2**20:7.1f} MiB  rc={ours.rc}"
    if base is not None:
        text += f"  | {base_label} {base.wall:7.3f}s  ratio {ours.wall / base.wall:6.2f}x"
    return text
