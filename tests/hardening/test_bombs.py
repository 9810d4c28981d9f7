"""Bombs give a finding or an inconclusive file, by the scanner's own limits, and the run goes on.

All bombs are scanned in one run through real worker processes (sandbox and limits active)
next to a clean file. A bomb that only ends because the engine's per-file deadline killed its
worker, or because it crashed or ran the worker out of memory, fails here: the scanner must
bound itself (a scanner that catches its own MemoryError under the worker's address-space
limit and marks the file inconclusive does bound itself).
"""

from __future__ import annotations

import os
import pickle

import pytest

from modelaudit.core import scan_report
from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.report import FileReport, ScanReport
from modelaudit.rules import SCAN_TIMEOUT
from tests.hardening._bomb_corpus import BOMBS

MB = 1 << 20


@pytest.fixture(scope="module")
def bomb_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[ScanReport, dict[str, FileReport]]:
    from tests.hardening._bomb_corpus import build_bombs

    folder = str(tmp_path_factory.mktemp("bombs"))
    build_bombs(folder)
    with open(os.path.join(folder, "clean.pkl"), "wb") as f:
        f.write(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    report = scan_report(
        folder,
        jobs=2,
        timeout=300,
        file_timeout=90,
        max_expanded_size=64 * MB,
        worker_memory_limit=3 * 1024 * MB,
    )
    return report, {os.path.basename(f.path): f for f in report.files}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_is_flagged_or_inconclusive(bomb_run, name: str) -> None:
    _, files = bomb_run
    fr = files[name]
    flagged = any(i.severity in (IssueSeverity.WARNING, IssueSeverity.CRITICAL) for i in fr.issues)
    assert flagged or fr.status is not FileStatus.COMPLETE, fr
    assert not any(i.rule == SCAN_TIMEOUT for i in fr.issues), fr.status_reason
    # No worker crash, no out-of-memory error, no scanner exception: the scanner bounded itself.
    assert fr.status is not FileStatus.ERROR, fr.status_reason


def test_run_goes_on_after_the_bombs(bomb_run) -> None:
    report, files = bomb_run
    assert len(files) == len(BOMBS) + 1
    assert report.interrupted is None
    assert files["clean.pkl"].status in (FileStatus.COMPLETE, FileStatus.INCONCLUSIVE)
    assert not any(i.severity is IssueSeverity.CRITICAL for i in files["clean.pkl"].issues)
