"""Whole-file reads are capped and touch regular files only: a FIFO or a device beside a
model (or linked under a model's name) never blocks the scan or feeds an unbounded read."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from modelaudit.budget import NotRegularFile, read_capped
from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch
from modelaudit.findings import ScanResult

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


def test_read_capped_refuses_devices_and_fifos(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    for path in (fifo, link):
        with pytest.raises(NotRegularFile):
            read_capped(str(path), 16)
    regular = tmp_path / "a.txt"
    regular.write_bytes(b"x" * 100)
    assert read_capped(str(regular), 10) == b"x" * 11
    assert read_capped(str(regular), 1000) == b"x" * 100


def test_fifo_named_by_auto_map_does_not_block_the_scan(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auto_map": {"AutoModel": "modeling.Net"}}))
    fifo = tmp_path / "modeling.py"
    os.mkfifo(fifo)
    out: list[ScanResult] = []
    worker = threading.Thread(
        target=lambda: out.append(
            dispatch.scan_path(str(config), ScanConfig().scanner_config(), explicit=True)
        ),
        daemon=True,
    )
    worker.start()
    worker.join(60)
    if worker.is_alive():
        # release the blocked open so the thread can end, then fail
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        worker.join(10)
        pytest.fail("the scan blocked on a FIFO beside the config")
    assert out and any(
        "auto_map" in i.message or "remote" in i.message.lower() for i in out[0].issues
    )
