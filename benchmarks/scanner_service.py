"""A long-lived `modelaudit.Scanner` as a service uses it (issue 15, part 1).

    python benchmarks/scanner_service.py

Prints: the first (cold) call and the median warm `scanner.scan` of a tiny pickle (target
< 50 ms), 40 concurrent single-file calls against one call over the same 40 files (target
within 1.5x of it; best of five each, with the event loop's CPU time for both), a one-file
call made while a 10,000-file call runs (fair sharing: it waits for about one batch, not for
the big call), and the longest event-loop gap seen by a 5 ms ticker during all of it.
The same pickle through a fresh `modelaudit.scan()` per call is the baseline of the warm call.
"""

from __future__ import annotations

import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

import modelaudit
import modelaudit.core  # a service imports its libraries before it starts serving


class _Ticker:
    """Measures how long the event loop goes without running a 5 ms sleeper: the wall gap,
    and the loop thread's own CPU time in that gap (code holding the loop; on a loaded
    machine the wall gap also counts time the process waited for a core)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.longest_busy = 0.0

    async def run(self) -> None:
        last = time.perf_counter()
        last_cpu = time.thread_time()
        while True:
            await anyio.sleep(0.005)
            now, cpu = time.perf_counter(), time.thread_time()
            self.longest = max(self.longest, now - last - 0.005)
            self.longest_busy = max(self.longest_busy, cpu - last_cpu)
            last, last_cpu = now, cpu


def _inputs(folder: Path) -> tuple[Path, list[Path]]:
    tiny = folder / "tiny.pkl"
    tiny.write_bytes(pickle.dumps({"weights": [0.5, 1.5], "name": "tiny"}))
    many = folder / "forty"
    many.mkdir()
    files = []
    for i in range(40):
        path = many / f"m{i:02}.pkl"
        path.write_bytes(pickle.dumps({"layer": i, "weights": list(range(16))}))
        files.append(path)
    return tiny, files


def _big_folder(folder: Path, count: int) -> Path:
    big = folder / "big"
    big.mkdir()
    for i in range(count):
        (big / f"b{i:05}.pkl").write_bytes(pickle.dumps({"i": i, "w": [0.0] * 8}))
    return big


async def _beside_a_big_call(
    scanner: modelaudit.Scanner, big: Path, tiny: Path, total: int
) -> tuple[float, int, float]:
    """A one-file call made once a big call is under way: its latency, how many of the big
    call's files had ended by then, and the big call's own duration."""
    done: list[object] = []
    timings: dict[str, float] = {}

    async def big_call() -> None:
        began = time.perf_counter()
        await scanner.scan(str(big), progress=done.append)
        timings["big"] = time.perf_counter() - began

    async with anyio.create_task_group() as tg:
        tg.start_soon(big_call)
        while len(done) < 100:
            await anyio.sleep(0.005)
        latency = await _timed(scanner.scan, str(tiny))
        ended = len(done)
    assert len(done) == total
    return latency, ended, timings["big"]


async def _cpu_timed(coro_fn: object, *args: object) -> tuple[float, float]:
    """Wall time, and CPU time of the event loop's thread (the calling process's own work,
    which a loaded machine does not inflate as it does the wall time)."""
    started, cpu = time.perf_counter(), time.thread_time()
    await coro_fn(*args)  # type: ignore[operator]
    return time.perf_counter() - started, time.thread_time() - cpu


async def _timed(coro_fn: object, *args: object) -> float:
    started = time.perf_counter()
    await coro_fn(*args)  # type: ignore[operator]
    return time.perf_counter() - started


async def main() -> None:
    ticker = _Ticker()
    with tempfile.TemporaryDirectory() as tmp:
        tiny, forty = _inputs(Path(tmp))
        big = _big_folder(Path(tmp), 10_000)
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker.run)
            oneshot = [await _timed(modelaudit.scan, str(tiny)) for _ in range(3)]
            started = time.perf_counter()
            async with modelaudit.Scanner() as scanner:
                entered = time.perf_counter() - started
                cold = await _timed(scanner.scan, str(tiny))
                for _ in range(5):
                    await scanner.scan(str(tiny))
                warm = [await _timed(scanner.scan, str(tiny)) for _ in range(30)]

                singles = [
                    await _cpu_timed(scanner.scan, [str(p) for p in forty]) for _ in range(5)
                ]
                single_call = min(w for w, _ in singles)
                single_cpu = min(c for _, c in singles)

                async def one(path: Path) -> None:
                    report = await scanner.scan(str(path))
                    assert report.exit_code == 0, report.exit_code

                concurrent = []
                concurrent_cpu = []
                for _ in range(5):
                    began, began_cpu = time.perf_counter(), time.thread_time()
                    async with anyio.create_task_group() as calls:
                        for path in forty:
                            calls.start_soon(one, path)
                    concurrent.append(time.perf_counter() - began)
                    concurrent_cpu.append(time.thread_time() - began_cpu)
                beside, ended, big_took = await _beside_a_big_call(scanner, big, tiny, 10_000)
            tg.cancel_scope.cancel()
    median = statistics.median(warm)
    print(f"Scanner enter                           {entered * 1000:8.1f} ms")
    print(f"first call (tiny pickle)                {cold * 1000:8.1f} ms")
    print(
        f"warm call, median of 30 (< 50 ms)       {median * 1000:8.1f} ms"
        f"  | modelaudit.scan() per call {statistics.median(oneshot) * 1000:.1f} ms"
        f"  ratio {statistics.median(oneshot) / median:.1f}x faster"
    )
    best = min(concurrent)
    print(
        f"40 concurrent one-file calls            {best * 1000:8.1f} ms"
        f"  | one call over the 40 files {single_call * 1000:.1f} ms"
        f"  ratio {best / single_call:.2f}x (target <= 1.5x)"
    )
    print(
        f"  their event loop's CPU                {min(concurrent_cpu) * 1000:8.1f} ms"
        f"  | one call's {single_cpu * 1000:.1f} ms  ratio {min(concurrent_cpu) / single_cpu:.2f}x"
    )
    print(
        f"one-file call beside a 10,000-file call {beside * 1000:8.1f} ms"
        f"  | the big call had ended {ended - 100} more files meanwhile"
        f" and took {big_took:.1f} s in all"
    )
    print(
        f"longest event-loop gap                  {ticker.longest * 1000:8.1f} ms"
        f"  | longest CPU time on the loop between ticks {ticker.longest_busy * 1000:.1f} ms"
    )


if __name__ == "__main__":
    backend = {"use_uvloop": True} if sys.platform != "win32" else {}
    anyio.run(main, backend_options=backend)
