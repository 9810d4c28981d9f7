"""Workers open only regular files: a name replaced after the listing by a FIFO or a device
is reported skipped with the reason, and never blocks a worker (issue 15)."""

from __future__ import annotations

import os
import pickle
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

import modelaudit
from modelaudit.engine.dispatch import scan_path
from modelaudit.fetchers import ObjectRef
from modelaudit.findings import FileStatus

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


def _swap(path: str) -> None:
    """Replace a listed file: `*fifo*` names by a FIFO nobody writes to, others by a link to
    a device that never ends."""
    os.unlink(path)
    if "fifo" in os.path.basename(path):
        os.mkfifo(path)
    else:
        os.symlink("/dev/zero", path)


async def test_files_replaced_after_the_listing_are_skipped_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelaudit.fetchers import local

    for name in ("fifo.pkl", "device.pkl", "kept.pkl"):
        (tmp_path / name).write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    original = local.LocalSource.objects

    async def swapping(self: local.LocalSource) -> AsyncIterator[ObjectRef]:
        async for obj in original(self):
            if obj.local_path and not obj.local_path.endswith("kept.pkl"):
                _swap(obj.local_path)
            yield obj

    monkeypatch.setattr(local.LocalSource, "objects", swapping)
    with anyio.fail_after(120):
        async with modelaudit.Scanner(jobs=1, file_timeout=300, hashes=True) as scanner:
            report = await scanner.scan(str(tmp_path))
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["kept.pkl"].status is FileStatus.COMPLETE
    assert by_name["fifo.pkl"].status is FileStatus.SKIPPED
    assert by_name["fifo.pkl"].status_reason == "not a regular file (FIFO)"
    assert by_name["device.pkl"].status is FileStatus.SKIPPED
    assert by_name["device.pkl"].status_reason == "not a regular file (character device)"


def test_scan_path_never_opens_a_fifo_for_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    result = scan_path(str(fifo), {})
    assert result.status is FileStatus.SKIPPED
    assert result.status_reason == "not a regular file (FIFO)"
