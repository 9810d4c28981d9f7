"""Scanning a corpus of malicious files across formats never runs a payload."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from modelaudit.findings import FileStatus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str]:
    from tests.hardening._malicious_corpus import build_corpus

    sentinels = str(tmp_path_factory.mktemp("sentinels"))
    folder = str(tmp_path_factory.mktemp("malicious"))
    return build_corpus(folder, sentinels), sentinels


def test_cli_scan_of_the_corpus_runs_no_payload(corpus: tuple[dict[str, str], str]) -> None:
    files, sentinels = corpus
    folder = os.path.dirname(next(iter(files.values())))
    proc = subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", folder, "-f", "json", "--no-progress"],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert os.listdir(sentinels) == []
    assert proc.returncode == 1, proc.stderr.decode()[-2000:]
    report = json.loads(proc.stdout)
    by_path = {os.path.basename(f["path"]): f for f in report["files"]}
    assert set(by_path) == set(files)
    flagged = {
        os.path.basename(i["location"].split(" (pos")[0].split(":")[0])
        for i in report["issues"]
        if i["severity"] in ("warning", "critical") and i["location"]
    }
    # Fail closed: every malicious file is flagged or at least not reported clean.
    for name, entry in by_path.items():
        assert name in flagged or entry["status"] != FileStatus.COMPLETE.value, entry


def test_in_process_scan_of_the_corpus_runs_no_payload(
    corpus: tuple[dict[str, str], str],
) -> None:
    """Even without the worker sandbox, no scanner executes what it reads."""
    from modelaudit.config import ScanConfig
    from modelaudit.engine import dispatch

    files, sentinels = corpus
    config = ScanConfig().scanner_config()
    for path in files.values():
        dispatch.scan_path(path, config)
    assert os.listdir(sentinels) == []
