"""The pickle scanner's CPU per tiny pickle, in process, against picklescan on the same bytes.

    python benchmarks/pickle_analysis.py [--rounds N] [--profile] [--imports N]

What a worker pays per small pickle once the file is read: `PickleScanner.scan` with the
engine's whole-file bytes (the sniff read them), so no file-system or process cost is
counted. The baseline is picklescan's `scan_pickle_bytes` over the same bytes, measured in
the same run (picklescan is a benchmark dependency only). Each figure is the best of
several rounds of process CPU time; the load average is printed beside it.

`--imports N` also measures what importing the pickle scanner costs a fresh process that has
the worker's modules already (`modelaudit.engine.worker`), beside importing picklescan's
scanner in a fresh process: the best of N runs each, with bytecode cached.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace

from modelaudit.scanners.context import ScanContext
from modelaudit.scanners.pickle.pickle_scanner import PickleScanner

#: What benchmarks/small_files.py writes (one of its 2,000 files), and two common shapes.
_INPUTS: dict[str, bytes] = {
    "small-dict": pickle.dumps({"w": list(range(20)), "i": 7}),
    "proto2-dict": pickle.dumps({"w": list(range(20)), "i": 7}, protocol=2),
    "str-list": pickle.dumps([f"name{i}" for i in range(30)]),
}


def _ours(data: bytes) -> Callable[[], object]:
    path = "/bench/model.pkl"
    base = ScanContext.standalone(path)
    ctx = replace(base, whole=(path, data))
    scanner = PickleScanner(context=ctx)

    def run() -> object:
        return scanner.scan(path)

    return run


def _picklescan(data: bytes) -> Callable[[], object]:
    from picklescan.scanner import scan_pickle_bytes

    def run() -> object:
        return scan_pickle_bytes(io.BytesIO(data), "model.pkl")

    return run


def _per_call(fn: Callable[[], object], calls: int, rounds: int) -> float:
    """Best round's process CPU per call, in µs."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.process_time() - t) / calls)
    return best * 1e6


_IMPORT_PROBE = """
import time
{before}
t = time.process_time()
{what}
print(time.process_time() - t)
"""


def _import_ms(before: str, what: str, runs: int) -> float:
    """Best CPU of importing `what` in a fresh process that already imported `before`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    code = _IMPORT_PROBE.format(before=before, what=what)
    best = float("inf")
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        best = min(best, float(out.stdout))
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="cProfile our scanner instead")
    parser.add_argument("--imports", type=int, default=0, help="runs of the import measurement")
    args = parser.parse_args()
    if args.profile:
        import cProfile
        import pstats

        run = _ours(_INPUTS["small-dict"])
        prof = cProfile.Profile()
        prof.runcall(lambda: [run() for _ in range(args.calls)])
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        return
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'input':<14}{'bytes':>6}{'modelaudit µs':>15}{'picklescan µs':>15}{'ratio':>7}")
    for name, data in _INPUTS.items():
        ours = _per_call(_ours(data), args.calls, args.rounds)
        theirs = _per_call(_picklescan(data), args.calls, args.rounds)
        print(f"{name:<14}{len(data):>6}{ours:>15.1f}{theirs:>15.1f}{ours / theirs:>7.2f}")
    if args.imports:
        ours_ms = _import_ms(
            "import modelaudit.engine.worker",
            "import modelaudit.scanners.pickle.pickle_scanner, modelaudit.scanners.pickle.stream",
            args.imports,
        )
        theirs_ms = _import_ms("", "import picklescan.scanner", args.imports)
        print(
            f"import (ms CPU)  modelaudit pickle scanner {ours_ms:.1f}  "
            f"picklescan {theirs_ms:.1f}  ratio {ours_ms / theirs_ms:.2f}"
        )
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
