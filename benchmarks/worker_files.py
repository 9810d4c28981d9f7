"""A scan worker's CPU per small file, in process (issue 15, part 2: the worker's share).

    python benchmarks/worker_files.py [--files N] [--rounds N] [--profile]

The files are the first N of `small_files.py`'s 50,000-file tree (a quarter each tiny
pickles, .npy, safetensors and config JSON). Three figures, each the best of several rounds
of process CPU time, with the load average beside them:

- scanner: each file's scanner alone, its context built beforehand with the bytes the sniff
  read (the floor: what judging the file costs, with no engine around it);
- replay: `worker.scan_file` as a worker calls it (sandbox watch, findings capture, limits
  armed, one `dispatch.Lane` for all) plus the encoding of its result frame, one file after
  another;
- batch: `worker._run_batch` itself over batches of 64 files, as the parent sends them
  (limits armed per batch, the progress record and journal, the result frames written to
  /dev/null, the temp folder checked after each file).

The ratio of each to the scanner floor is what the engine adds per file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from small_files import _tree

from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch, worker
from modelaudit.engine.protocol import JournalFile, ProgressFile, encode_result, frame

BATCH = 64


def _files(count: int) -> list[str]:
    tree = _tree(50_000)
    return sorted(str(p) for p in tree.glob("d0*/*"))[:count]


def _scanner_only(files: Sequence[str], config: dict[str, Any]) -> Callable[[], None]:
    prepared = []
    for path in files:
        fmt, _, _, data = dispatch._sniff(path, path)
        cls = dispatch.select_scanner(path, fmt)
        assert cls is not None
        whole = None if data is None else (path, data)
        prepared.append(
            (path, cls, dispatch.make_context(path, config, 0, fmt, False, None, whole))
        )

    def run() -> None:
        for path, cls, ctx in prepared:
            cls(config, context=ctx).scan(path)

    return run


def _replay(files: Sequence[str], config: dict[str, Any]) -> Callable[[], None]:
    lane = dispatch.Lane(config)

    def ignore(issue: object) -> None:
        return None

    def run() -> None:
        for path in files:
            result = worker.scan_file(
                path,
                config,
                path,
                False,
                isolated=True,
                deadline=15.0,
                stream=ignore,
                limits_armed=True,
                lane=lane,
            )
            frame((1, encode_result(result)))

    return run


def _batches(files: Sequence[str], config: dict[str, Any], folder: str) -> Callable[[], None]:
    progress = ProgressFile(os.path.join(folder, "progress"))
    journal = JournalFile(os.path.join(folder, "journal"))
    tmpdir = os.path.join(folder, "tmp")
    os.mkdir(tmpdir)
    control = worker._Control(progress.path, journal.path)
    read_fd, _ = os.pipe()
    channel = worker.Channel(read_fd, os.open(os.devnull, os.O_WRONLY))
    jobs = [
        (i, path, path, False, 15.0, os.path.getsize(path), True) for i, path in enumerate(files)
    ]
    batches = [jobs[i : i + BATCH] for i in range(0, len(jobs), BATCH)]

    def run() -> None:
        for batch in batches:
            worker._run_batch(channel, (config, None), batch, tmpdir, control)

    return run


def _per_file(fn: Callable[[], None], count: int, rounds: int) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one batch round")
    args = parser.parse_args()
    files = _files(args.files)
    config = ScanConfig().scanner_config()
    worker._setup({})
    with tempfile.TemporaryDirectory(prefix="modelaudit-bench-") as folder:
        runs = {
            "scanner": _scanner_only(files, config),
            "replay": _replay(files, config),
            "batch": _batches(files, config, folder),
        }
        floor = 0.0
        for name, fn in runs.items():
            cost = _per_file(fn, len(files), args.rounds)
            floor = floor or cost
            load = os.getloadavg()[0]
            print(
                f"{name:<8} {cost:6.1f} us/file  ratio {cost / floor:4.2f}x  "
                f"({len(files)} files, load {load:.2f})",
                flush=True,
            )
        if args.profile:
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.runcall(runs["batch"])
            pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
