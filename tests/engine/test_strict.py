"""`--strict`: unverifiable content is judged more severely, clean repositories stay clean.

What strict adds (README "Strict mode"): a protocol 0/1 pickle is scanned as one whatever its
name; a file with a model extension that no scanner understands is a WARNING; any other file no
scanner understands is unverified unless it is text or a known data-only format. The zoo
(tests/zoo/test_zoo.py) holds real repositories to the same verdict under --strict.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from modelaudit.core import scan_report
from modelaudit.findings import FileStatus, IssueSeverity

#: A protocol 0 pickle longer than the sniffed head: thousands of list items, then os.system.
LONG_OLD_PICKLE = b"(lp0\n" + b"I1\na" * 1200 + b"cos\nsystem\n(S'echo hi'\ntRa."
#: Bytes no format claims (no magic, no pickle opcode first, not text).
BLOB = b"\x00\x01\x02\x03" + random.Random(7).randbytes(8192)


def _one(tmp_path: Path, name: str, data: bytes, strict: bool) -> tuple[int, FileStatus, list]:
    (tmp_path / name).write_bytes(data)
    report = scan_report(str(tmp_path), strict=strict)
    [file] = report.files
    return report.exit_code, file.status, [(i.rule, i.severity) for i in file.issues]


@pytest.mark.parametrize("name", ["weights.dat", "notes.txt"])
def test_strict_scans_a_renamed_old_pickle_as_a_pickle(tmp_path: Path, name: str) -> None:
    assert len(LONG_OLD_PICKLE) > 4096
    code, status, _ = _one(tmp_path, name, LONG_OLD_PICKLE, strict=False)
    assert (code, status) == (0, FileStatus.SKIPPED)
    code, status, issues = _one(tmp_path, name, LONG_OLD_PICKLE, strict=True)
    assert code == 1
    assert IssueSeverity.CRITICAL in {severity for _, severity in issues}


def test_strict_calls_an_unknown_binary_unverified(tmp_path: Path) -> None:
    assert _one(tmp_path, "blob.dat", BLOB, strict=False)[:2] == (0, FileStatus.SKIPPED)
    code, status, issues = _one(tmp_path, "blob.dat", BLOB, strict=True)
    assert (code, status, issues) == (2, FileStatus.INCONCLUSIVE, [("MA0003", IssueSeverity.INFO)])


def test_strict_makes_an_unknown_model_file_a_warning(tmp_path: Path) -> None:
    code, status, issues = _one(tmp_path, "model.model", BLOB, strict=False)
    assert (code, status, issues) == (2, FileStatus.INCONCLUSIVE, [("MA0003", IssueSeverity.INFO)])
    code, status, issues = _one(tmp_path, "model.model", BLOB, strict=True)
    assert (code, status, issues) == (
        1,
        FileStatus.INCONCLUSIVE,
        [("MA0003", IssueSeverity.WARNING)],
    )


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("README.md", b"# A model card\n\nTrained on data.\n", "text"),
        ("merges.txt", "#version: 0.2\n\u0120 t\n".encode(), "text"),
        ("model.cbm", b"CBM1" + BLOB, "CatBoost model"),
        ("manifest.ocdbt", b"\x0c\xdb\x3a\x2a" + BLOB, "TensorStore OCDBT manifest"),
        ("variables.data-00000-of-00001", BLOB, "TensorFlow checkpoint tensors"),
        ("xgb_model.ubj", b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{", "XGBoost UBJSON"),
    ],
)
def test_strict_vouches_for_text_and_data_only_files(
    tmp_path: Path, name: str, data: bytes, kind: str
) -> None:
    (tmp_path / name).write_bytes(data)
    report = scan_report(str(tmp_path), strict=True)
    [file] = report.files
    assert (report.exit_code, file.status, file.issues) == (0, FileStatus.SKIPPED, [])
    assert kind in (file.status_reason or "")


def test_strict_does_not_vouch_for_text_a_pickle_loader_may_run(tmp_path: Path) -> None:
    """Protocol 0 is ASCII: text whose head reads as pickle opcodes to the end is not text."""
    maybe = b"(lp0\n" + b"I1\na" * 1200
    code, status, _ = _one(tmp_path, "data.txt", maybe, strict=True)
    assert code != 0
    assert status is not FileStatus.SKIPPED


def test_strict_help_says_what_it_does() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    line = " ".join(done.stdout.split())
    assert "--strict" in line
    for words in ("any name", "model extension", "WARNING", "text", "data-only"):
        assert words in line, words
