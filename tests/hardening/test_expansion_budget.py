"""One expansion budget per top-level file, shared by every level and member, charged before
bytes are written: nesting, many members, sparse tar holes and overlapping entries all end in
a decompression-limit finding with the findings made before it kept."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import containers as crules
from tests.containers._container_corpus import payload, rules_of, scan
from tests.hardening import _archive_bombs as bombs

MB = 1 << 20


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Scans put their members here, so what they wrote can be measured."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_nesting_shares_one_budget(tmp_path: Path) -> None:
    # 8 x 8 x 8 members of 1 MiB: every container alone is small, the file is 512 MiB.
    path = str(tmp_path / "fanout.zip")
    bombs.nested_fanout_zip(path, levels=3, fanout=8, leaf=MB, first=payload())
    result = scan(path, max_expanded_size=64 * MB)
    assert crules.DECOMPRESSION_BOMB in rules_of(result)
    assert result.status is FileStatus.INCONCLUSIVE
    # Found before the budget ran out, kept after.
    assert any(i.severity is IssueSeverity.CRITICAL for i in result.issues)


def test_ratio_counts_every_level_against_the_top_file(tmp_path: Path) -> None:
    path = str(tmp_path / "fanout.zip")
    bombs.nested_fanout_zip(path, levels=3, fanout=8, leaf=MB)
    size = os.path.getsize(path)
    result = scan(path, max_compression_ratio=10, compression_ratio_floor=MB)
    assert crules.DECOMPRESSION_BOMB in rules_of(result), (size, result.issues)


def test_keras_members_are_budgeted(tmp_path: Path, private_tmp: Path) -> None:
    path = str(tmp_path / "zeros.keras")
    bombs.keras_of_zeros(path, members=2, size=48 * MB)
    result = scan(path)
    assert crules.DECOMPRESSION_BOMB in rules_of(result)
    assert result.status is FileStatus.INCONCLUSIVE
    assert os.listdir(private_tmp) == []


def test_overlapping_keras_entries_are_charged_each_time(tmp_path: Path) -> None:
    path = str(tmp_path / "overlap.keras")
    bombs.overlapping_zip(path, count=64, size=4 * MB)
    result = scan(path, max_expanded_size=32 * MB)
    assert crules.DECOMPRESSION_BOMB in rules_of(result) or result.status is not (
        FileStatus.COMPLETE
    )
    assert result.status is not FileStatus.COMPLETE


def test_overlapping_zip_entries_share_the_budget(tmp_path: Path) -> None:
    path = str(tmp_path / "overlap.zip")
    bombs.overlapping_zip(path, count=64, size=4 * MB)
    result = scan(path, max_expanded_size=32 * MB)
    assert crules.DECOMPRESSION_BOMB in rules_of(result)


def test_sparse_tar_is_refused_by_its_announced_size(tmp_path: Path, private_tmp: Path) -> None:
    path = str(tmp_path / "sparse.tar")
    bombs.gnu_sparse_tar(path, announced=256 * MB)
    assert os.path.getsize(path) < 4096
    result = scan(path)
    bomb = [i for i in result.issues if i.rule == crules.DECOMPRESSION_BOMB]
    # Refused by the size the header announces, before extraction wrote anything.
    assert bomb and "announces" in bomb[0].message, result.issues
    assert result.status is FileStatus.INCONCLUSIVE
    assert os.listdir(private_tmp) == []


def test_sparse_member_within_budget_is_scanned_without_its_holes(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelaudit.engine import dispatch

    path = str(tmp_path / "sparse.tar")
    bombs.gnu_sparse_tar(path, announced=16 * MB, data=payload())
    seen: list[int] = []
    real_scan_path = dispatch.scan_path

    def measuring(member_path: str, *args: object, **kwargs: object) -> object:
        """The real scan, after noting how much disk the extracted member takes."""
        if member_path.startswith(str(private_tmp)):
            seen.append(os.stat(member_path).st_blocks * 512)
        return real_scan_path(member_path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(dispatch, "scan_path", measuring)
    result = scan(path)
    assert any(i.severity is IssueSeverity.CRITICAL for i in result.issues), result.issues
    assert seen and max(seen) < MB, seen  # 16 MiB announced, a few KiB on disk


def test_compressed_tar_members_share_the_budget(tmp_path: Path) -> None:
    import io
    import tarfile

    path = str(tmp_path / "many.tar.gz")
    blob = bytes(8 * MB)
    with tarfile.open(path, "w:gz") as tf:
        for i in range(8):
            info = tarfile.TarInfo(f"{i}.bin")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    result = scan(path, max_expanded_size=32 * MB)
    assert crules.DECOMPRESSION_BOMB in rules_of(result)


def test_an_exhausted_budget_is_reported_once(tmp_path: Path) -> None:
    # Every leaf is a ratio bomb; the first one spends the budget and nothing else expands.
    path = str(tmp_path / "42.zip")
    bombs.nested_fanout_zip(path, levels=3, fanout=16, leaf=64 * MB)
    result = scan(path)
    bombs_found = [i for i in result.issues if i.rule == crules.DECOMPRESSION_BOMB]
    assert len(bombs_found) == 1, [i.location for i in bombs_found]
