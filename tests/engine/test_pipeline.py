"""Batches are pipelined: a worker holds its next batch while it runs one, so it never waits
for the parent between them (issue 15, part 2), without giving up per-file isolation,
give-back, recycling, fairness or cancellation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

import modelaudit
from modelaudit.engine import pool
from modelaudit.engine.flight import FileJob, Flight, FlightError
from modelaudit.engine.outcomes import Outcome
from modelaudit.findings import FileStatus
from modelaudit.report import FileReport
from tests.hardening._hardening_util import write_hostile


def _process(fr: FileReport) -> dict:
    (issue,) = [i for i in fr.issues if i.message == "process"]
    return issue.details


def _probes(folder: Path, names: Sequence[str]) -> None:
    folder.mkdir(exist_ok=True)
    for name in names:
        write_hostile(str(folder), f"{name}.hostile", "report-process")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, list[str]]]:
    """Every batch sent: the worker's pid and the files' names (the real send still runs)."""
    batches: list[tuple[int, list[str]]] = []
    original = pool.Worker.send_batch

    async def recording(
        self: pool.Worker, jobs: Sequence[FileJob], profile: pool.Profile, state: Flight
    ) -> None:
        batches.append((self.pid, [Path(j.path).stem for j in jobs]))
        await original(self, jobs, profile, state)

    monkeypatch.setattr(pool.Worker, "send_batch", recording)
    return batches


async def test_the_next_batch_waits_in_the_worker(tmp_path: Path, hostile: type) -> None:
    """While the parent is still taking in one batch's results (its progress callback
    blocks the event loop), the worker has begun the next batch: it held it already."""
    folder = tmp_path / "files"
    _probes(folder, [f"a{i}" for i in range(8)])
    taken_in: list[float] = []

    def slow_parent(fr: FileReport) -> None:
        if Path(fr.path).stem == "a2":
            time.sleep(2)
            taken_in.append(time.monotonic())

    with anyio.fail_after(60):
        async with modelaudit.Scanner(jobs=1, batch_files=2) as scanner:
            report = await scanner.scan(str(folder), progress=slow_parent)
    by_name = {Path(f.path).stem: _process(f) for f in report.files}
    assert len({d["pid"] for d in by_name.values()}) == 1
    # a2-a3 are the second batch; a4-a5, the third, were queued behind it and began before
    # the parent had taken in the second one's results.
    assert by_name["a4"]["at"] < taken_in[0], (by_name["a4"]["at"], taken_in)


@pytest.mark.parametrize("command", ["kill", "sleep"])
async def test_a_crash_or_hang_with_a_batch_queued_reschedules_it(
    tmp_path: Path, hostile: type, sent: list[tuple[int, list[str]]], command: str
) -> None:
    folder = tmp_path / "files"
    _probes(folder, ["a0", "a2", "b0", "b1", "b2", "c0", "c1", "c2"])
    write_hostile(str(folder), "a1-bad.hostile", command, "3600")
    probe = tmp_path / "probe"
    _probes(probe, ["warm"])
    with anyio.fail_after(120):
        async with modelaudit.Scanner(jobs=1, batch_files=3, file_timeout=2) as scanner:
            await scanner.scan(str(probe))  # the worker's first batch queues nothing
            sent.clear()
            report = await scanner.scan(str(folder))
    first_pid, first = sent[0]
    assert first == ["a0", "a1-bad", "a2"]
    # The next batch was queued in the same worker before the bad file ended.
    assert sent[1] == (first_pid, ["b0", "b1", "b2"]), sent
    files = {Path(f.path).stem: f for f in report.files}
    bad = files.pop("a1-bad")
    if command == "kill":
        assert bad.status is FileStatus.ERROR and "crashed" in (bad.status_reason or "")
    else:
        assert bad.status is FileStatus.INCONCLUSIVE
        assert bad.status_reason == "Scan timeout after 2 seconds"
    assert len(files) == 8
    assert all(f.status is FileStatus.COMPLETE for f in files.values()), files
    pids = {name: _process(f)["pid"] for name, f in files.items()}
    assert pids.pop("a0") == first_pid
    # Everything the dead worker had not finished, its queued batch included, ran again in
    # one replacement.
    assert len(set(pids.values())) == 1 and first_pid not in pids.values()


async def test_a_slow_file_gives_back_the_queued_batch(
    tmp_path: Path, hostile: type, sent: list[tuple[int, list[str]]]
) -> None:
    """The batch queued behind a slow file moves to the other worker, which finishes it while
    the slow file still runs."""
    folder = tmp_path / "files"
    _probes(folder, [f"f{i:02}" for i in range(24) if i != 9])
    write_hostile(str(folder), "f09-slow.hostile", "sleep", "3")
    warm = tmp_path / "warm"
    warm.mkdir()
    for i in range(2):
        write_hostile(str(warm), f"w{i}.hostile", "sleep", "0.5")
    finished: list[str] = []
    with anyio.fail_after(60):
        async with modelaudit.Scanner(jobs=2, batch_files=2, timeout=120) as scanner:
            await scanner.scan(str(warm), batch_files=1)
            sent.clear()
            report = await scanner.scan(
                str(folder), progress=lambda fr: finished.append(Path(fr.path).stem)
            )
    (at,) = [n for n, (_pid, batch) in enumerate(sent) if "f09-slow" in batch]
    slow_pid = sent[at][0]
    # The batch sent to the same worker after the slow file's: queued before it ended.
    queued = next(batch for pid, batch in sent[at + 1 :] if pid == slow_pid)
    assert finished[-1] == "f09-slow", finished
    assert all(f.status is FileStatus.COMPLETE for f in report.files)
    files = {Path(f.path).stem: f for f in report.files}
    del files["f09-slow"]
    pids = {name: _process(f)["pid"] for name, f in files.items()}
    assert all(pids[name] != slow_pid for name in queued), (queued, sent)
    assert len(set(pids.values())) == 2


async def test_files_given_back_come_back_to_the_same_worker_whole(
    tmp_path: Path, hostile: type, sent: list[tuple[int, list[str]]]
) -> None:
    """With one worker, a file given back behind a slow one comes back to that worker: only
    once the batch it was queued in is over, so no file is in two of its batches."""
    folder = tmp_path / "files"
    _probes(folder, ["a1", "a2", "a3"])
    write_hostile(str(folder), "a0.hostile", "sleep", "0.6")
    with anyio.fail_after(60):
        async with modelaudit.Scanner(jobs=1, batch_files=1, timeout=30) as scanner:
            await scanner.scan(str(folder / "a1.hostile"))  # the worker's first batch
            sent.clear()
            report = await scanner.scan(str(folder))
    assert report.interrupted is None
    assert all(f.status is FileStatus.COMPLETE for f in report.files), report.files
    # a1 was queued behind a0, given back when a0 was slow, then sent again.
    assert [batch for _pid, batch in sent][:3] == [["a0"], ["a1"], ["a1"]], sent


async def test_a_worker_is_recycled_only_after_its_queued_batch(
    tmp_path: Path, hostile: type, sent: list[tuple[int, list[str]]]
) -> None:
    _probes(tmp_path, [f"p{i:02}" for i in range(12)])
    async with modelaudit.Scanner(jobs=1, batch_files=2, worker_recycle_files=6) as scanner:
        report = await scanner.scan(str(tmp_path))
    pids = [_process(f)["pid"] for f in report.files]
    # Three batches per worker, the third queued behind the second: never a fourth.
    assert [pids.count(p) for p in dict.fromkeys(pids)] == [6, 6]
    assert [pid for pid, _ in sent] == [pids[0]] * 3 + [pids[6]] * 3


async def test_cancelling_a_call_with_a_queued_batch_kills_its_worker(
    tmp_path: Path, hostile: type, sent: list[tuple[int, list[str]]]
) -> None:
    """The cancelled call's worker (holding its queued batch) is killed, never leased again:
    the next call gets a fresh worker and exactly its own results."""
    marker = tmp_path / "started"
    folder = tmp_path / "a"
    _probes(folder, ["a1", "a2", "a3"])
    write_hostile(str(folder), "a0.hostile", "mark-sleep", str(marker))
    probe = tmp_path / "probe"
    _probes(probe, ["p0", "p1", "p2"])
    with anyio.fail_after(60):
        async with modelaudit.Scanner(jobs=1, batch_files=2) as scanner:
            warm = await scanner.scan(str(probe / "p0.hostile"))
            sent.clear()

            async def cancel_once_started(scope: anyio.CancelScope) -> None:
                while not marker.exists():
                    await anyio.sleep(0.002)
                scope.cancel()

            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(cancel_once_started, scope)
                    await scanner.scan(str(folder))
            assert scope.cancelled_caught
            after = await scanner.scan(str(probe))
    assert sent[:2] == [(sent[0][0], ["a0", "a1"]), (sent[0][0], ["a2", "a3"])], sent
    assert sent[0][0] == _process(warm.files[0])["pid"]
    assert sorted(Path(f.path).stem for f in after.files) == ["p0", "p1", "p2"]
    assert all(f.status is FileStatus.COMPLETE for f in after.files)
    (fresh,) = {_process(f)["pid"] for f in after.files}
    assert fresh != sent[0][0]


async def test_a_batch_running_does_not_erase_the_results_of_the_one_before(
    tmp_path: Path, hostile: type
) -> None:
    """The call is cancelled while the parent has not read a batch's last result and the
    worker already runs the batch queued behind it: that result is read from the batch's
    own journal, which the next batch did not truncate."""
    marker = tmp_path / "third-batch-started"
    folder = tmp_path / "files"
    _probes(folder, ["a0", "a1", "d1"])
    write_hostile(str(folder), "c0.hostile", "sleep", "0.1")
    write_hostile(str(folder), "c1.hostile", "sleep", "0.2")
    write_hostile(str(folder), "d0.hostile", "mark-sleep", str(marker))
    reports: dict[str, FileReport] = {}
    seen: list[bool] = []
    scope = anyio.CancelScope()

    def progress(fr: FileReport) -> None:
        reports[Path(fr.path).stem] = fr
        if Path(fr.path).stem == "c0":
            # c1 ends and d0 (the batch queued behind) starts while the parent is here.
            until = time.monotonic() + 20
            while not marker.exists() and time.monotonic() < until:
                time.sleep(0.01)
            seen.append(marker.exists())
            scope.cancel()

    with anyio.fail_after(60):
        async with modelaudit.Scanner(jobs=1, batch_files=2) as scanner:
            await scanner.scan(str(folder / "a0.hostile"))  # the worker's first batch
            with scope:
                await scanner.scan(str(folder), progress=progress)
    assert seen == [True]
    assert reports["c1"].status is FileStatus.COMPLETE, reports["c1"]
    assert "d0" not in reports


class _Owner:
    def __init__(self) -> None:
        self.ended: list[tuple[int, str]] = []

    def finish(self, job: FileJob, outcome: Outcome) -> None:
        self.ended.append((job.id, outcome.kind))

    def give_back(self, jobs: list[FileJob]) -> None:
        return


def _jobs(first: int, n: int, owner: _Owner) -> list[FileJob]:
    jobs = [
        FileJob(id=i, path=f"f{i}", display=f"f{i}", explicit=False, size=1, deadline=5)
        for i in range(first, first + n)
    ]
    for job in jobs:
        job.owner = owner
    return jobs


def test_a_queued_batch_starts_its_clock_when_the_one_before_ends() -> None:
    owner = _Owner()
    one, two = _jobs(1, 2, owner), _jobs(3, 2, owner)
    flight = Flight(one)
    flight.add(two, slot=1)
    assert flight.current is one[0] and not two[0].started
    flight.finished(one[0])
    flight.finished(one[1])
    assert flight.current is two[0] and two[0].started
    assert two[0].started_at >= one[0].started_at
    flight.batch_over()
    assert [slot for slot, _ in flight.batches] == [1] and flight.files == 2


def test_a_batch_cannot_end_before_its_files() -> None:
    owner = _Owner()
    one = _jobs(1, 2, owner)
    flight = Flight(one)
    flight.add(_jobs(3, 2, owner), slot=1)
    flight.finished(one[0])
    with pytest.raises(FlightError):
        flight.batch_over()


def test_give_back_and_death_reach_into_the_queued_batch() -> None:
    owner = _Owner()
    one, two = _jobs(1, 3, owner), _jobs(4, 3, owner)
    flight = Flight(one)
    flight.add(two, slot=1)
    flight.locate((2, one[0].started_at), now=one[0].started_at)
    assert flight.give_back() == [one[2], *two]
    # The worker reads the "skip" late: it skipped only the queued batch's files.
    flight.skipped([4, 5, 6])
    flight.finished(one[0])
    assert flight.current is one[1]
    # It dies on the second file: that file fails, the first was done, and the file it was
    # told to skip is no longer its (its call has it back).
    flight.fail(Outcome("crash", reason="killed"))
    assert owner.ended == [(2, "crash")]
    assert flight.unstarted() == []


def test_a_located_file_of_the_queued_batch_ends_the_one_before() -> None:
    """The progress record names a file of the queued batch: the files before it ended,
    and a death now blames that file, rescheduling the rest."""
    owner = _Owner()
    one, two = _jobs(1, 2, owner), _jobs(3, 3, owner)
    flight = Flight(one)
    flight.add(two, slot=1)
    began = one[0].started_at
    flight.locate((4, began + 1.0), now=began + 2.0)
    assert flight.current is two[1] and two[1].started_at == began + 1.0
    flight.fail(Outcome("crash", reason="killed"))
    assert owner.ended == [(4, "crash")]
    assert flight.unstarted() == [*one, two[0], two[2]]


def test_files_given_back_hold_the_queue_until_their_batch_is_over() -> None:
    """Confirmed skipped or not, a file given back stays named by its batch until that batch
    is over: nothing is queued behind it meanwhile, so it cannot come back into this worker
    while it is still there (the batch's end would then find it unfinished)."""
    owner = _Owner()
    one, two = _jobs(1, 1, owner), _jobs(2, 2, owner)
    flight = Flight(one)
    flight.add(two, slot=1)
    assert flight.give_back() == two
    flight.skipped([2, 3])
    assert flight.returned == {2, 3}
    flight.finished(one[0])
    flight.batch_over()
    assert flight.returned == {2, 3}
    flight.batch_over()
    assert not flight.returned and not flight.batches
