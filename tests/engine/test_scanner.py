"""`modelaudit.Scanner`: a long-lived engine shared by concurrent calls (issue 15, part 1)."""

from __future__ import annotations

import gc
import os
import pickle
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import anyio
import numpy as np
import pytest

import modelaudit
from modelaudit.engine.flight import FileJob, Flight
from modelaudit.fetchers import ObjectRef
from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.report import FileReport
from tests.hardening._hardening_util import alive, child_pids, scanner_pids, write_hostile


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def evil_pickle(folder: Path, name: str) -> Path:
    """A pickle that would run a shell command if loaded (it never is)."""
    path = folder / name
    path.write_bytes(pickle.dumps(_Evil(), protocol=2))
    return path


@contextmanager
def _sent_batches() -> Iterator[list[list[FileJob]]]:
    """Every batch the pool sends a worker while the block runs, in order."""
    from modelaudit.engine import pool

    sent: list[list[FileJob]] = []
    original = pool.Worker.send_batch

    async def recording(
        self: pool.Worker, jobs: Sequence[FileJob], profile: pool.Profile, state: Flight
    ) -> None:
        sent.append(list(jobs))
        await original(self, jobs, profile, state)

    pool.Worker.send_batch = recording  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        pool.Worker.send_batch = original  # type: ignore[method-assign]


async def _appears(path: Path) -> None:
    while not path.exists():
        await anyio.sleep(0.005)


async def _cancel_a_while_b_rides(
    tg: anyio.abc.TaskGroup,
    scanner: modelaudit.Scanner,
    a_file: Path,
    a_started: Path,
    b_target: Path,
    b_result: list[modelaudit.ScanReport],
    linger: float = 0.0,
) -> None:
    """Call A (one file that marks `a_started`, then hangs), then call B, both waiting for
    a worker, so B's files ride in A's batch; once A's file runs (and `linger` later), A is
    cancelled. B's report lands in `b_result` when the task group ends."""
    a_scope = anyio.CancelScope()

    async def call_a() -> None:
        with a_scope:
            await scanner.scan(str(a_file))

    async def call_b() -> None:
        b_result.append(await scanner.scan(str(b_target)))

    tg.start_soon(call_a)
    await anyio.sleep(0.05)
    tg.start_soon(call_b)
    await _appears(a_started)
    await anyio.sleep(linger)
    a_scope.cancel()


def _pid_of(report_issues: list) -> int:
    (issue,) = [i for i in report_issues if i.message == "process"]
    return int(issue.details["pid"])


async def test_workers_stay_warm_across_calls(tmp_path: Path, hostile: type) -> None:
    write_hostile(str(tmp_path), "p.hostile", "report-process")
    async with modelaudit.Scanner(jobs=1) as scanner:
        first = await scanner.scan(str(tmp_path))
        owned = scanner_pids(scanner)
        second = await scanner.scan(str(tmp_path))
        assert scanner_pids(scanner) == owned
    worker = _pid_of(first.issues)
    assert _pid_of(second.issues) == worker
    # The fork server and the one worker, which scanned both calls' files.
    assert len(owned) == 2 and worker in owned, owned
    assert not [pid for pid in owned if alive(pid)]
    assert not child_pids(os.getpid()) & owned


async def test_leaving_the_block_stops_every_worker_even_mid_scan(
    tmp_path: Path, hostile: type
) -> None:
    marker = tmp_path / "started"
    write_hostile(str(tmp_path), "slow.hostile", "mark-sleep", str(marker))
    owned: set[int] = set()
    with anyio.fail_after(60):
        async with modelaudit.Scanner(jobs=2) as scanner, anyio.create_task_group() as tg:
            tg.start_soon(scanner.scan, str(tmp_path))
            while not marker.exists():
                await anyio.sleep(0.02)
            busy = {w.pid for w in getattr(scanner.pool, "workers", ())}
            owned = scanner_pids(scanner)
            tg.cancel_scope.cancel()
    # The fork server and at least the worker running the sleeping file.
    assert busy and busy < owned, (busy, owned)
    assert not [pid for pid in owned if alive(pid)]
    assert not child_pids(os.getpid()) & owned


async def test_a_one_file_call_is_not_starved_by_a_big_one(tmp_path: Path, hostile: type) -> None:
    big = tmp_path / "big"
    big.mkdir()
    for i in range(120):
        write_hostile(str(big), f"f{i:03}.hostile", "sleep", "0.05")
    small = tmp_path / "small"
    small.mkdir()
    evil_pickle(small, "evil.pkl")
    finished_big: list[FileReport] = []
    async with (
        modelaudit.Scanner(jobs=1, batch_files=4) as scanner,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(lambda: scanner.scan(str(big), progress=finished_big.append))
        while len(finished_big) < 12:
            await anyio.sleep(0.01)
        before = len(finished_big)
        report = await scanner.scan(str(small))
        during = len(finished_big) - before
    assert report.files[0].status is FileStatus.COMPLETE
    assert any(i.severity is IssueSeverity.CRITICAL for i in report.issues)
    # The small call waited for about one batch of the big one, not for all of it: the
    # batch running, the one queued behind it (pipelined: the big call queues no more once
    # the small call waits), a batch of the big call's other dispatcher, whose turn came
    # first, and the files riding with the small one.
    assert during <= 16, during
    assert len(finished_big) == 120


async def test_cancelling_one_call_leaves_the_other_intact(tmp_path: Path, hostile: type) -> None:
    stuck = tmp_path / "stuck"
    stuck.mkdir()
    marker = tmp_path / "stuck-started"
    write_hostile(str(stuck), "hang.hostile", "mark-sleep", str(marker))
    others = tmp_path / "others"
    others.mkdir()
    for i in range(6):
        evil_pickle(others, f"evil{i}.pkl")
        write_hostile(str(others), f"slow{i}.hostile", "sleep", "0.2")
    async with modelaudit.Scanner(jobs=2) as scanner:
        async with anyio.create_task_group() as tg:
            stuck_scope = anyio.CancelScope()

            async def stuck_call() -> None:
                with stuck_scope:
                    await scanner.scan(str(stuck))

            tg.start_soon(stuck_call)
            while not marker.exists():
                await anyio.sleep(0.02)
            busy_workers = scanner_pids(scanner)

            result: list[modelaudit.ScanReport] = []

            async def other_call() -> None:
                result.append(await scanner.scan(str(others)))

            tg.start_soon(other_call)
            await anyio.sleep(0.3)
            stuck_scope.cancel()
        (report,) = result
        assert stuck_scope.cancelled_caught
        assert len(report.files) == 12
        assert all(f.status is FileStatus.COMPLETE for f in report.files), report.files
        critical = {Path(f.path).name for f in report.files if f.issues}
        assert critical == {f"evil{i}.pkl" for i in range(6)}
        # The cancelled call's worker was killed, and the scanner still works.
        assert scanner_pids(scanner) != busy_workers
        again = await scanner.scan(str(others / "evil0.pkl"))
        assert again.exit_code == 1


async def test_a_killed_worker_is_replaced(tmp_path: Path, hostile: type) -> None:
    write_hostile(str(tmp_path), "die.hostile", "kill")
    probe = tmp_path / "probe"
    probe.mkdir()
    write_hostile(str(probe), "p.hostile", "report-process")
    async with modelaudit.Scanner(jobs=1) as scanner:
        before = _pid_of((await scanner.scan(str(probe))).issues)
        died = await scanner.scan(str(tmp_path / "die.hostile"))
        after = _pid_of((await scanner.scan(str(probe))).issues)
    assert died.files[0].status is FileStatus.ERROR
    assert "SIGKILL" in (died.files[0].status_reason or "")
    assert before != after


async def test_workers_are_recycled_after_n_files(tmp_path: Path, hostile: type) -> None:
    """One file per lease: with bigger batches, a batch split behind a slow file (the give-back
    under load) lets a worker pass N inside its last batch, so counts would depend on timing."""
    for i in range(12):
        write_hostile(str(tmp_path), f"p{i:02}.hostile", "report-process")
    async with modelaudit.Scanner(jobs=1, worker_recycle_files=3, batch_files=1) as scanner:
        report = await scanner.scan(str(tmp_path))
    pids = [_pid_of(f.issues) for f in report.files]
    assert len(set(pids)) == 4
    assert [pids.count(p) for p in dict.fromkeys(pids)] == [3, 3, 3, 3]


async def test_workers_are_recycled_past_the_memory_bound(tmp_path: Path, hostile: type) -> None:
    for i in range(4):
        write_hostile(str(tmp_path), f"p{i}.hostile", "report-process")
    async with modelaudit.Scanner(jobs=1, worker_recycle_memory=1, batch_files=1) as scanner:
        report = await scanner.scan(str(tmp_path))
    assert len({_pid_of(f.issues) for f in report.files}) == 4


async def test_iter_scan_yields_each_file_as_it_ends(tmp_path: Path, hostile: type) -> None:
    for i in range(3):
        evil_pickle(tmp_path, f"evil{i}.pkl")
    write_hostile(str(tmp_path), "slow.hostile", "sleep", "2")
    seen: list[str] = []
    async with modelaudit.Scanner(jobs=2, batch_files=1) as scanner:
        async for file_report in scanner.iter_scan(str(tmp_path)):
            seen.append(Path(file_report.path).name)
        report = await scanner.scan(str(tmp_path))
    assert seen[-1] == "slow.hostile"
    assert sorted(seen) == sorted(Path(f.path).name for f in report.files)


async def test_iter_scan_reports_targets_that_cannot_be_opened(tmp_path: Path) -> None:
    async with modelaudit.Scanner(jobs=1) as scanner:
        entries = [fr async for fr in scanner.iter_scan(str(tmp_path / "missing.pkl"))]
    assert [(e.status, e.path) for e in entries] == [
        (FileStatus.ERROR, str(tmp_path / "missing.pkl"))
    ]


async def test_leaving_iter_scan_early_ends_only_that_call(tmp_path: Path, hostile: type) -> None:
    for i in range(40):
        write_hostile(str(tmp_path), f"s{i:02}.hostile", "sleep", "0.1")
    async with modelaudit.Scanner(jobs=1, batch_files=1) as scanner:
        async for _ in scanner.iter_scan(str(tmp_path)):
            break
        report = await scanner.scan(str(tmp_path / "s00.hostile"))
    assert report.exit_code == 0


async def test_per_call_overrides_and_engine_settings(tmp_path: Path) -> None:
    evil = evil_pickle(tmp_path, "DeepSeek.pkl")
    async with modelaudit.Scanner(jobs=1) as scanner:
        plain = await scanner.scan(str(evil))
        flagged = await scanner.scan(str(evil), blacklist_patterns=["deepseek"])
        with pytest.raises(ValueError, match="jobs"):
            await scanner.scan(str(evil), jobs=4)
    assert not any("Blacklisted" in i.message for i in plain.issues)
    assert any("Blacklisted" in i.message for i in flagged.issues)


async def test_a_scanner_must_be_entered(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="async with"):
        await modelaudit.Scanner().scan(str(tmp_path))


@pytest.fixture
def sent_batches() -> Iterator[list[list[FileJob]]]:
    """Every batch a worker is sent (the real `send_batch` still sends it)."""
    with _sent_batches() as sent:
        yield sent


async def test_the_event_loop_keeps_running(tmp_path: Path, hostile: type) -> None:
    """A ticker measures the longest gap while the scanner starts, workers sleep, many files
    are listed and their results collected, and the scanner stops: in wall time, and in CPU
    time the loop thread spent between two ticks (code holding the loop; a loaded machine
    stretches wall gaps, not that)."""
    for i in range(300):
        evil_pickle(tmp_path, f"e{i:03}.pkl")
    write_hostile(str(tmp_path), "slow.hostile", "sleep", "3")
    gaps: list[float] = []
    held: list[float] = []
    # Earlier tests' objects are moved out of the collector's reach: a full collection of
    # their heap on the loop thread is not work of this scanner.
    gc.collect()
    gc.freeze()

    async def ticker() -> None:
        last, last_cpu = time.monotonic(), time.thread_time()
        while True:
            await anyio.sleep(0.01)
            now, cpu = time.monotonic(), time.thread_time()
            gaps.append(now - last)
            held.append(cpu - last_cpu)
            last, last_cpu = now, cpu

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        async with modelaudit.Scanner(jobs=2) as scanner:
            report = await scanner.scan(str(tmp_path))
            again = await scanner.scan(str(tmp_path / "e000.pkl"))
        await anyio.sleep(0.02)
        tg.cancel_scope.cancel()
    gc.unfreeze()
    assert len(report.files) == 301
    assert again.exit_code == 1
    # A blocked loop would show the 3 s sleep as one gap.
    assert max(gaps) < 1.5, max(gaps)
    assert max(held) < 0.1, max(held)


async def test_concurrent_one_file_calls_share_batches(
    tmp_path: Path, hostile: type, sent_batches: list[list[FileJob]]
) -> None:
    """Calls with the same settings are batched together; each gets exactly its own file."""
    for i in range(30):
        evil_pickle(tmp_path, f"e{i:02}.pkl") if i % 3 == 0 else write_hostile(
            str(tmp_path), f"p{i:02}.hostile", "sleep", "0.01"
        )
    paths = sorted(tmp_path.iterdir())
    results: dict[str, modelaudit.ScanReport] = {}
    async with modelaudit.Scanner(jobs=2) as scanner:
        await scanner.scan(str(paths[0]))
        sent_batches.clear()

        async def one(path: Path) -> None:
            results[path.name] = await scanner.scan(str(path))

        async with anyio.create_task_group() as tg:
            for path in paths:
                tg.start_soon(one, path)
    assert len(sent_batches) < len(paths), [len(b) for b in sent_batches]
    for path in paths:
        (entry,) = results[path.name].files
        assert entry.path == str(path)
        assert entry.status is FileStatus.COMPLETE
        assert bool(results[path.name].findings) is path.name.startswith("e")


async def test_calls_started_together_start_one_dispatcher(tmp_path: Path, hostile: type) -> None:
    """40 one-file calls started together: the first call's dispatcher takes the others'
    files along and they start no dispatcher of their own (each would find its file gone:
    a task per call for nothing). Each still gets exactly its own file."""
    from modelaudit.engine import runner

    paths = []
    for i in range(40):
        if i % 4 == 0:
            paths.append(evil_pickle(tmp_path, f"e{i:02}.pkl"))
        else:
            path = tmp_path / f"c{i:02}.pkl"
            path.write_bytes(pickle.dumps({"layer": i}))
            paths.append(path)
    started = 0
    original = runner.ScanCall._dispatch

    async def counting(self: runner.ScanCall) -> None:
        nonlocal started
        started += 1
        await original(self)

    results: dict[str, modelaudit.ScanReport] = {}
    runner.ScanCall._dispatch = counting  # type: ignore[method-assign]
    try:
        with anyio.fail_after(60):
            async with modelaudit.Scanner(jobs=2) as scanner:
                await scanner.scan(str(paths[1]))
                started = 0

                async def one(path: Path) -> None:
                    results[path.name] = await scanner.scan(str(path))

                async with anyio.create_task_group() as tg:
                    for path in paths:
                        tg.start_soon(one, path)
                assert getattr(scanner, "opening", None) is None
    finally:
        runner.ScanCall._dispatch = original  # type: ignore[method-assign]
    assert started < 10, started
    for path in paths:
        (entry,) = results[path.name].files
        assert entry.path == str(path)
        assert entry.status is FileStatus.COMPLETE
        assert results[path.name].exit_code == (1 if path.name.startswith("e") else 0)


async def test_a_call_riding_on_a_cancelled_calls_dispatcher_still_ends(
    tmp_path: Path, hostile: type
) -> None:
    """B's file rides on A's dispatcher, which waits for the one busy worker; A is cancelled
    before it gets the worker: B gets a dispatcher of its own and its file is scanned."""
    busy_started = tmp_path / "c-started"
    busy = write_hostile(str(tmp_path), "c.hostile", "mark-sleep-1", str(busy_started))
    a_file = evil_pickle(tmp_path, "a.pkl")
    b_file = evil_pickle(tmp_path, "b.pkl")
    b_result: list[modelaudit.ScanReport] = []
    a_scope = anyio.CancelScope()
    with anyio.fail_after(60):
        async with modelaudit.Scanner(jobs=1) as scanner:

            async def call_a() -> None:
                with a_scope:
                    await scanner.scan(str(a_file))

            async def call_b() -> None:
                b_result.append(await scanner.scan(str(b_file)))

            async with anyio.create_task_group() as tg:
                tg.start_soon(scanner.scan, busy)
                await _appears(busy_started)
                tg.start_soon(call_a)
                while scanner.opening is None:
                    await anyio.sleep(0.005)
                a_call = scanner.opening.call
                tg.start_soon(call_b)
                while not scanner.opening.riders:
                    await anyio.sleep(0.005)
                (b_call,) = scanner.opening.riders
                assert b_call.dispatchers == 0 and scanner.opening.call is a_call
                assert busy_started.exists() and not a_call.report.files
                a_scope.cancel()
    (report,) = b_result
    (entry,) = report.files
    assert entry.status is FileStatus.COMPLETE
    assert report.exit_code == 1


async def test_cancelling_a_call_returns_the_files_it_borrowed(
    tmp_path: Path, hostile: type
) -> None:
    """B's file rides in A's batch; A is cancelled before reaching it: B still gets it."""

    busy = tmp_path / "c.hostile"
    busy_started = tmp_path / "c-started"
    write_hostile(str(tmp_path), "c.hostile", "mark-sleep-1", str(busy_started))
    marker = tmp_path / "a-started"
    a_file = Path(write_hostile(str(tmp_path), "a.hostile", "mark-sleep", str(marker)))
    b_file = evil_pickle(tmp_path, "b.pkl")
    with _sent_batches() as sent:
        with anyio.fail_after(60):
            async with modelaudit.Scanner(jobs=1, batch_files=64) as scanner:
                b_result: list[modelaudit.ScanReport] = []
                async with anyio.create_task_group() as tg:
                    tg.start_soon(scanner.scan, str(busy))
                    # A and B must both wait for the one worker, not ride in busy's batch.
                    await _appears(busy_started)
                    await _cancel_a_while_b_rides(tg, scanner, a_file, marker, b_file, b_result)
    batches = [[Path(j.path).name for j in jobs] for jobs in sent]
    assert ["a.hostile", "b.pkl"] in batches, batches
    (report,) = b_result
    (entry,) = report.files
    assert entry.status is FileStatus.COMPLETE
    assert report.exit_code == 1


async def test_one_bound_on_files_in_flight_across_calls(tmp_path: Path, hostile: type) -> None:
    """Listing stops while `max_in_flight` files of all calls are listed and unfinished."""
    from modelaudit.fetchers import local

    listed = 0
    finished = 0
    worst = 0
    original = local.LocalSource.objects

    async def counting(self: local.LocalSource) -> AsyncIterator[ObjectRef]:
        nonlocal listed
        async for obj in original(self):
            listed += 1
            yield obj

    def progress(_: FileReport) -> None:
        nonlocal finished, worst
        worst = max(worst, listed - finished)
        finished += 1

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(15):
            write_hostile(str(tmp_path / name), f"f{i:02}.hostile", "sleep", "0.02")
    local.LocalSource.objects = counting  # type: ignore[method-assign]
    try:
        async with (
            modelaudit.Scanner(jobs=2, max_in_flight=4, batch_files=2) as scanner,
            anyio.create_task_group() as tg,
        ):

            async def call(name: str) -> None:
                await scanner.scan(str(tmp_path / name), progress=progress)

            for name in ("a", "b"):
                tg.start_soon(call, name)
    finally:
        local.LocalSource.objects = original  # type: ignore[method-assign]
    assert finished == 30
    # Four in flight, plus one listed by each call and waiting for a slot.
    assert worst <= 4 + 2, worst


async def test_a_long_lived_scanner_preloads_every_scanner_for_later_workers(
    tmp_path: Path, hostile: type
) -> None:
    """The fork server imports the scanner modules in the background, so workers forked
    later (replacements, recycled ones) start with them; the first worker did not wait."""
    write_hostile(str(tmp_path), "p.hostile", "report-process")
    wanted = {
        "modelaudit.scanners.text.yaml_scanner",
        "modelaudit.scanners.containers.pytorch_zip_scanner",
        "modelaudit.scanners.onnx.onnx_scanner",
    }
    seen: list[str] = []
    with anyio.fail_after(120):
        async with modelaudit.Scanner(jobs=1, worker_recycle_files=1) as scanner:
            while not wanted <= set(seen):
                report = await scanner.scan(str(tmp_path))
                (probe,) = [i for i in report.issues if i.message == "process"]
                seen = probe.details["modules"]
                await anyio.sleep(0.05)
    assert wanted <= set(seen)


async def test_a_call_past_its_own_timeout_leaves_the_scanner_usable(
    tmp_path: Path, hostile: type
) -> None:
    """A call's `timeout` ends that call (its hung file is killed with its worker); the next
    call on the same one-worker Scanner gets a fresh worker."""
    slow = tmp_path / "slow"
    slow.mkdir()
    marker = tmp_path / "hang-started"
    write_hostile(str(slow), "hang.hostile", "mark-sleep", str(marker))
    evil = evil_pickle(tmp_path, "evil.pkl")
    with anyio.fail_after(120):
        async with modelaudit.Scanner(jobs=1) as scanner:
            stopped = await scanner.scan(str(slow), timeout=3)
            again = await scanner.scan(str(evil))
    (hung,) = stopped.files
    assert hung.status is FileStatus.INCONCLUSIVE, hung
    assert stopped.interrupted
    assert again.exit_code == 1
    assert again.files[0].status is FileStatus.COMPLETE


async def test_concurrent_one_file_calls_are_listed_together_yet_answered_apart(
    tmp_path: Path,
) -> None:
    """Calls started together have their targets stat'ed in shared thread hops; each call
    still gets its own answer: a file, a folder, a missing path, a FIFO, and a call
    cancelled as it starts, which leaves the others to finish."""
    from modelaudit.fetchers import local

    hops: list[int] = []
    original = local._Named.run

    def counting(self: local._Named) -> None:
        hops.append(len(self.sources))
        original(self)

    files = [evil_pickle(tmp_path, f"e{i}.pkl") for i in range(12)]
    folder = tmp_path / "folder"
    folder.mkdir()
    evil_pickle(folder, "inner.pkl")
    fifo = tmp_path / "pipe.pkl"
    os.mkfifo(fifo)
    missing = tmp_path / "missing.pkl"
    targets = [*files, folder, fifo, missing]
    results: dict[Path, modelaudit.ScanReport] = {}
    local._Named.run = counting  # type: ignore[method-assign]
    try:
        with anyio.fail_after(60):
            async with modelaudit.Scanner(jobs=2) as scanner:

                async def one(path: Path) -> None:
                    results[path] = await scanner.scan(str(path))

                async def cancelled() -> None:
                    with anyio.CancelScope() as scope:
                        scope.cancel()
                        await scanner.scan(str(files[0]))

                async with anyio.create_task_group() as tg:
                    tg.start_soon(cancelled)
                    for path in targets:
                        tg.start_soon(one, path)
    finally:
        local._Named.run = original  # type: ignore[method-assign]
    assert sum(hops) >= len(targets) and len(hops) < len(targets), hops
    for path in files:
        (entry,) = results[path].files
        assert entry.path == str(path) and entry.status is FileStatus.COMPLETE
        assert results[path].exit_code == 1
    (inner,) = results[folder].files
    assert inner.path == str(folder / "inner.pkl") and results[folder].exit_code == 1
    (piped,) = results[fifo].files
    assert piped.status is FileStatus.SKIPPED and "not a regular file" in str(piped.status_reason)
    assert not results[missing].files and results[missing].exit_code == 2
    (error,) = results[missing].target_errors
    assert "no such file" in error["error"]


async def test_calls_started_together_ride_in_one_batch(
    tmp_path: Path, sent_batches: list[list[FileJob]]
) -> None:
    """The first call to lease a worker takes the queued files of the calls started with
    it, even before they asked for a worker themselves; each still gets its own file."""
    paths = [evil_pickle(tmp_path, f"e{i:02}.pkl") for i in range(12)]
    results: dict[Path, modelaudit.ScanReport] = {}
    with anyio.fail_after(60):
        async with modelaudit.Scanner(jobs=2) as scanner:
            await scanner.scan([str(p) for p in paths])
            sent_batches.clear()

            async def one(path: Path) -> None:
                results[path] = await scanner.scan(str(path))

            async with anyio.create_task_group() as tg:
                for path in paths:
                    tg.start_soon(one, path)
    assert [len(b) for b in sent_batches] == [len(paths)], sent_batches
    for path in paths:
        (entry,) = results[path].files
        assert entry.path == str(path) and results[path].exit_code == 1


async def test_more_profiles_than_a_worker_keeps(tmp_path: Path, hostile: type) -> None:
    """A worker keeps its 32 latest profiles and evicts by its own use; the parent must
    evict the same ones, or a call is sent to a worker that no longer knows its settings.

    One long call keeps its profile in use on the only worker while 32 one-file calls with
    settings of their own go by; the first of those settings, used again, was evicted by the
    worker though the scanner still knows it."""
    big = tmp_path / "big"
    big.mkdir()
    for i in range(80):
        write_hostile(str(big), f"s{i:02}.hostile", "sleep", "0.02")
    evil = evil_pickle(tmp_path, "e.pkl")
    async with modelaudit.Scanner(jobs=1) as scanner:
        await scanner.scan(str(evil))

        async def one(tag: int) -> modelaudit.ScanReport:
            return await scanner.scan(str(evil), blacklist_patterns=[f"tag{tag}"])

        reports: list[modelaudit.ScanReport] = []
        async with anyio.create_task_group() as tg:
            big_report: list[modelaudit.ScanReport] = []

            async def long_call() -> None:
                big_report.append(await scanner.scan(str(big), batch_files=2))

            tg.start_soon(long_call)
            await anyio.sleep(0.2)
            for tag in range(1, 33):
                reports.append(await one(tag))
            reports.append(await one(1))
    assert [f.status for f in big_report[0].files] == [FileStatus.COMPLETE] * 80
    for report in reports:
        (entry,) = report.files
        assert entry.status is FileStatus.COMPLETE, entry.status_reason
        assert report.findings


async def test_a_file_given_back_twice_is_sent_once(tmp_path: Path, hostile: type) -> None:
    """B's files ride in A's batch behind a slow file: they are given back to B once for
    the slow file, and again when A is cancelled while they are still pending elsewhere.
    B gets each result once and no batch holds one file twice."""

    started = [tmp_path / f"c{i}-started" for i in range(2)]
    busy = [
        Path(write_hostile(str(tmp_path), f"c{i}.hostile", "mark-sleep-2", str(started[i])))
        for i in range(2)
    ]
    marker = tmp_path / "a-started"
    a_file = Path(write_hostile(str(tmp_path), "a.hostile", "mark-sleep", str(marker)))
    b_folder = tmp_path / "b"
    b_folder.mkdir()
    for i in range(3):
        evil_pickle(b_folder, f"b{i}.pkl")
    with _sent_batches() as sent:
        with anyio.fail_after(60):
            async with modelaudit.Scanner(jobs=2, batch_files=64) as scanner:
                await scanner.scan(str(busy[0]), file_timeout=5)
                started[0].unlink()
                b_result: list[modelaudit.ScanReport] = []
                async with anyio.create_task_group() as tg:
                    tg.start_soon(scanner.scan, str(busy[0]))
                    tg.start_soon(scanner.scan, str(busy[1]))
                    # both workers busy before A and B come
                    await _appears(started[0])
                    await _appears(started[1])
                    await _cancel_a_while_b_rides(
                        tg, scanner, a_file, marker, b_folder, b_result, linger=0.6
                    )
    batches = [[j.id for j in jobs] for jobs in sent]
    assert all(len(set(ids)) == len(ids) for ids in batches), batches
    (report,) = b_result
    assert [f.status for f in report.files] == [FileStatus.COMPLETE] * 3
    assert report.exit_code == 1


async def test_a_batch_goes_kind_by_kind(tmp_path: Path, sent_batches: list[list[FileJob]]) -> None:
    """Files listed with their kinds interleaved reach a worker grouped by kind (in listing
    order within a kind), and every one of them is still scanned."""
    kinds = ("pkl", "json", "bin", "npy")
    for i in range(40):
        kind = kinds[i % 4]
        target = tmp_path / f"m{i:02}.{kind}"
        if kind == "json":
            target.write_text('{"model_type": "bert"}')
        elif kind == "npy":
            np.save(target, np.arange(4, dtype=np.float32))
        else:
            target.write_bytes(pickle.dumps({"i": i}))
    async with modelaudit.Scanner(jobs=1, batch_files=64) as scanner:
        report = await scanner.scan(str(tmp_path))
    assert len(report.files) == 40
    assert all(f.status is FileStatus.COMPLETE for f in report.files), report.files
    (batch,) = sent_batches
    names = [Path(job.path).name for job in batch]
    extensions = [name.rsplit(".", 1)[1] for name in names]
    assert extensions == sorted(extensions), names
    assert [n for n in names if n.endswith(".pkl")] == sorted(
        n for n in names if n.endswith(".pkl")
    )


async def test_calls_outlive_an_asyncio_cancel_of_the_call_listed_with_them(
    tmp_path: Path,
) -> None:
    """`Task.cancel()` (asyncio.wait_for, a server dropping a handler) passes through anyio's
    shields: the call that started the shared stat of targets may end before its thread
    answers, and the calls listed with it must still be scanned."""
    import asyncio

    files = [evil_pickle(tmp_path, f"e{i}.pkl") for i in range(3)]
    with anyio.fail_after(120):
        async with modelaudit.Scanner(jobs=1) as scanner:
            for yields in range(12):
                tasks = [asyncio.create_task(scanner.scan(str(path))) for path in files]
                for _ in range(yields):
                    await asyncio.sleep(0)
                tasks[0].cancel()
                results = await asyncio.gather(*tasks, return_exceptions=True)
                for path, report in zip(files[1:], results[1:], strict=True):
                    assert isinstance(report, modelaudit.ScanReport), (yields, report)
                    assert not report.target_errors, (yields, report.target_errors)
                    (entry,) = report.files
                    assert entry.path == str(path) and entry.status is FileStatus.COMPLETE
                    assert report.exit_code == 1
