"""Small files travel to workers in batches without losing per-file isolation (issue 15, 2)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import anyio
import pytest

import modelaudit
from modelaudit.core import scan_report
from modelaudit.engine.flight import FileJob, Flight
from modelaudit.engine.outcomes import Outcome
from modelaudit.findings import FileStatus, IssueSeverity
from tests.hardening._hardening_util import write_hostile


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def _folder(tmp_path: Path, bad_command: str, arg: str = "") -> Path:
    """40 small files in name order: evil and clean pickles, a probe reporting its worker, one
    bad file, then more probes."""
    for i in range(19):
        payload = _Evil() if i % 4 == 0 else {"i": i}
        (tmp_path / f"f{i:02}.pkl").write_bytes(pickle.dumps(payload, protocol=2))
    write_hostile(str(tmp_path), "f19.hostile", "report-process")
    write_hostile(str(tmp_path), "f20-bad.hostile", bad_command, arg)
    for i in range(21, 40):
        write_hostile(str(tmp_path), f"f{i:02}.hostile", "report-process")
    return tmp_path


def _check_others(report: modelaudit.ScanReport) -> list[int]:
    others = [f for f in report.files if "bad" not in Path(f.path).name]
    assert len(others) == 39
    assert all(f.status is FileStatus.COMPLETE for f in others), [
        (f.path, f.status_reason) for f in others if f.status is not FileStatus.COMPLETE
    ]
    evil = {
        Path(f.path).name
        for f in others
        if any(i.severity is IssueSeverity.CRITICAL for i in f.issues)
    }
    assert evil == {f"f{i:02}.pkl" for i in range(0, 19, 4)}
    return [int(i.details["pid"]) for f in others for i in f.issues if i.message == "process"]


@pytest.mark.parametrize("command", ["kill", "segfault", "exit"])
def test_a_crash_in_a_batch_fails_only_the_file_that_caused_it(
    tmp_path: Path, hostile: type, command: str
) -> None:
    folder = _folder(tmp_path, f"pid-then-{command}")
    report = scan_report(str(folder), jobs=1, timeout=120, batch_files=64)
    (bad,) = [f for f in report.files if "bad" in f.path]
    assert bad.status is FileStatus.ERROR
    (crashed,) = [int(i.details["pid"]) for i in bad.issues if i.message == "worker"]
    _before, *after = _check_others(report)
    assert len(after) == 19 and len(set(after)) == 1
    # Everything after a crash ran in a replacement worker; a scanner calling exit() is
    # caught inside the worker, which goes on.
    assert (after[0] != crashed) is (command != "exit")


def test_a_timeout_in_a_batch_fails_only_that_file(tmp_path: Path, hostile: type) -> None:
    folder = _folder(tmp_path, "sleep", "3600")
    report = scan_report(str(folder), jobs=1, timeout=120, batch_files=64, file_timeout=2)
    (bad,) = [f for f in report.files if "bad" in f.path]
    assert bad.status is FileStatus.INCONCLUSIVE
    assert bad.status_reason == "Scan timeout after 2 seconds"
    _check_others(report)


def test_files_behind_a_slow_one_move_to_another_worker(tmp_path: Path, hostile: type) -> None:
    """With two workers, the files queued behind a slow file are given back and finished by
    the other worker while the slow one is still running."""
    (tmp_path / "models").mkdir()
    folder = _folder(tmp_path / "models", "sleep", "4")
    warm = tmp_path / "warm"
    warm.mkdir()
    for i in range(2):
        write_hostile(str(warm), f"w{i}.hostile", "sleep", "0.5")
    finished: list[str] = []

    async def main() -> modelaudit.ScanReport:
        async with modelaudit.Scanner(jobs=2, batch_files=64, timeout=120) as scanner:
            # Both workers up first: on a loaded machine the second one's start could take
            # longer than the slow file, and the files given back would wait for it.
            await scanner.scan(str(warm), batch_files=1)
            return await scanner.scan(
                str(folder), progress=lambda fr: finished.append(Path(fr.path).name)
            )

    report = anyio.run(main)
    before, *after = _check_others(report)
    assert finished[-1] == "f20-bad.hostile", finished
    (bad,) = [f for f in report.files if "bad" in f.path]
    assert bad.status is FileStatus.COMPLETE
    assert len(set(after)) == 1 and after[0] != before


def test_batches_are_bounded_by_count_and_bytes(tmp_path: Path, hostile: type) -> None:
    for i in range(12):
        write_hostile(str(tmp_path), f"p{i:02}.hostile", "report-process")
    big = tmp_path / "p99-big.pkl"
    big.write_bytes(pickle.dumps(b"\0" * (2 * 1024 * 1024)))
    report = scan_report(str(tmp_path), jobs=1, worker_recycle_files=4, batch_files=4, timeout=120)
    pids = [int(i.details["pid"]) for f in report.files for i in f.issues if i.message == "process"]
    # Recycled after each full batch of four: three workers, four files each.
    assert [pids.count(p) for p in dict.fromkeys(pids)] == [4, 4, 4]
    assert report.exit_code == 0


def _large_folder(tmp_path: Path, bad_command: str, arg: str = "") -> Path:
    """401 tiny files in one batch: results travel to the parent in groups, so the files just
    before the bad one (which streams nothing) have ended without the parent having heard."""
    for i in range(200):
        write_hostile(str(tmp_path), f"a{i:03}.hostile", "report-process")
    write_hostile(str(tmp_path), "b-bad.hostile", bad_command, arg)
    for i in range(200):
        write_hostile(str(tmp_path), f"c{i:03}.hostile", "report-process")
    return tmp_path


def _large_others(report: modelaudit.ScanReport) -> tuple[set[int], set[int]]:
    """The workers that scanned the files before the bad one, and those after it."""
    others = [f for f in report.files if "bad" not in Path(f.path).name]
    assert len(others) == 400
    assert all(f.status is FileStatus.COMPLETE for f in others), [
        (f.path, f.status_reason) for f in others if f.status is not FileStatus.COMPLETE
    ]

    def pids(prefix: str) -> set[int]:
        return {
            int(i.details["pid"])
            for f in others
            if Path(f.path).name.startswith(prefix)
            for i in f.issues
            if i.message == "process"
        }

    return pids("a"), pids("c")


@pytest.mark.parametrize("command", ["kill", "segfault"])
def test_a_crash_in_a_large_batch_fails_only_that_file(
    tmp_path: Path, hostile: type, command: str
) -> None:
    folder = _large_folder(tmp_path, command)
    report = scan_report(str(folder), jobs=1, timeout=120, batch_files=512)
    (bad,) = [f for f in report.files if "bad" in f.path]
    assert bad.status is FileStatus.ERROR
    assert bad.status_reason is not None and "crashed" in bad.status_reason
    before, after = _large_others(report)
    # The files that ended before the crash keep the results of the worker that crashed
    # (from its journal), and are not scanned again.
    assert len(before) == 1 and len(after) == 1 and before != after


def test_a_hang_in_a_large_batch_fails_only_that_file(tmp_path: Path, hostile: type) -> None:
    folder = _large_folder(tmp_path, "sleep", "3600")
    report = scan_report(str(folder), jobs=1, timeout=120, batch_files=512, file_timeout=2)
    (bad,) = [f for f in report.files if "bad" in f.path]
    assert bad.status is FileStatus.INCONCLUSIVE
    assert bad.status_reason == "Scan timeout after 2 seconds"
    _large_others(report)


class _Owner:
    def __init__(self) -> None:
        self.ended: list[tuple[FileJob, str]] = []

    def finish(self, job: FileJob, outcome: Outcome) -> None:
        self.ended.append((job, outcome.kind))

    def give_back(self, jobs: list[FileJob]) -> None:
        return


owner = _Owner()


def _jobs(n: int) -> list[FileJob]:
    return [
        FileJob(id=i + 1, path=f"f{i}", display=f"f{i}", explicit=False, size=1, deadline=5)
        for i in range(n)
    ]


def test_a_progress_record_only_ever_moves_forward() -> None:
    """The worker's progress record locates the file it runs, but a worker cannot take the
    parent back to an earlier file or restart a file's clock."""
    jobs = _jobs(4)
    for job in jobs:
        job.owner = owner
    batch = Flight(jobs)
    began = jobs[0].started_at
    batch.locate((3, began + 1.0), now=began + 2.0)
    assert batch.current is jobs[2] and jobs[2].started_at == began + 1.0
    batch.locate((2, began + 1.5), now=began + 2.0)
    assert batch.current is jobs[2]
    batch.locate((3, began + 1.9), now=began + 2.0)
    assert jobs[2].started_at == began + 1.0
    batch.locate((4, began + 99.0), now=began + 3.0)
    assert batch.current is jobs[3] and jobs[3].started_at == began + 3.0
    batch.locate((77, began + 3.0), now=began + 3.0)
    assert batch.current is jobs[3]
    # The worker dies here: the file it ran fails, the files before it (ended, their results
    # lost with the worker) are scanned again elsewhere.
    batch.fail(Outcome("crash", reason="killed"))
    assert owner.ended == [(jobs[3], "crash")]
    assert batch.unstarted() == jobs[:3]


def test_files_behind_the_located_file_are_given_back() -> None:
    jobs = _jobs(5)
    batch = Flight(jobs)
    batch.locate((3, jobs[0].started_at), now=jobs[0].started_at)
    assert batch.give_back() == jobs[3:]
    batch.finished(jobs[0])
    assert batch.current is jobs[2]
