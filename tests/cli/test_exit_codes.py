"""One exit-code rule: the code, `--help`, the README and docs/ci.md say the same thing, and a
file gets the same verdict whether it is named or met in a walk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelaudit.exit_codes import EXIT_CODE_NOTES, EXIT_CODES
from tests.cli._helper import EVIL_PICKLE, SAFE_PICKLE, json_report, run

REPO = Path(__file__).resolve().parents[2]


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("where", ["README.md", "docs/ci.md", "--help"])
def test_the_rule_is_quoted_word_for_word(where: str) -> None:
    if where == "--help":
        proc = run("scan", "--help")
        assert proc.returncode == 0
        text = proc.stdout.decode()
    else:
        text = (REPO / where).read_text()
    flat = _flat(text)
    for code, meaning in EXIT_CODES:
        if where == "--help":
            assert _flat(f"{code}  {meaning}") in flat, meaning
        else:
            assert f"| {code} | {meaning} |" in text, meaning
    assert _flat(EXIT_CODE_NOTES) in flat


# (file name, content, exit code, status) for every kind of verdict a file can get.
CASES = [
    ("evil.pkl", EVIL_PICKLE, 1, "complete"),
    ("ok.pkl", SAFE_PICKLE, 0, "complete"),
    ("weights.model", b"\x00\x01 not any format", 2, "inconclusive"),
    ("blob.dat", b"\x00\x01 not any format", 0, "skipped"),
    ("notes.txt", b"plain text\n", 0, "skipped"),
    ("cut.pkl", EVIL_PICKLE[:-6], 1, "inconclusive"),
    # A renamed protocol 0 pickle is a pickle; text that merely starts like one is not.
    ("weights.txt", b"cposix\nsystem\np0\n(Vid\np1\ntp2\nRp3\n.", 1, "complete"),
    ("requirements-dev.txt", b"certifi\nrequests\nnumpy\n", 0, "skipped"),
    # ... and a requirements file is read as one (MLflow environments), quietly
    ("requirements.txt", b"certifi\nrequests\nnumpy\n", 0, "complete"),
]


@pytest.mark.parametrize(("name", "content", "code", "status"), CASES)
def test_named_or_walked_the_verdict_is_the_same(
    tmp_path: Path, name: str, content: bytes, code: int, status: str
) -> None:
    folder = tmp_path / "walk"
    folder.mkdir()
    (folder / name).write_bytes(content)
    named = run(str(folder / name), "--format", "json")
    walked = run(str(folder), "--format", "json")
    assert named.returncode == walked.returncode == code
    [a] = json_report(named)["files"]
    [b] = json_report(walked)["files"]
    assert a["status"] == b["status"] == status

    def findings(proc: object) -> list[tuple[str, str, str]]:
        issues = json_report(proc)["issues"]  # type: ignore[arg-type]
        return [(i["message"], i["severity"], i["location"]) for i in issues]

    assert findings(named) == findings(walked)


def test_strict_makes_every_unknown_file_unverified(tmp_path: Path) -> None:
    (tmp_path / "blob.dat").write_bytes(b"\x00\x01 not any format")
    for target in (tmp_path, tmp_path / "blob.dat"):
        assert run(str(target), "--strict").returncode == 2


def test_too_large_is_unverified_not_a_finding(tmp_path: Path) -> None:
    (tmp_path / "big.pkl").write_bytes(SAFE_PICKLE + b" " * 5000)
    proc = run(str(tmp_path), "--max-size", "1000", "--format", "json")
    assert proc.returncode == 2
    [issue] = json_report(proc)["issues"]
    assert issue["severity"] == "info" and issue["rule"] == "MA0002"


def test_usage_errors_exit_2() -> None:
    assert run("scan").returncode == 2
    assert run("--format", "yaml", "x.pkl").returncode == 2


# The reference's CLI examples, with `modelaudit scan` for its `promptfoo scan-model`.
REFERENCE_COMMANDS = [
    "{d} --blacklist deepseek --blacklist qwen --blacklist unsafe_model",
    "{d} --max-size 1GB --timeout 600",
    "{d} --blacklist suspicious_pattern --max-size 1GB --timeout 600 --verbose",
    "{d}/model.pkl --strict",
    "{d} --strict --format sarif --output {o}/security-scan.sarif",
    "{d}/model.pkl --format sarif",
    "{d}/model.pkl --format sarif --output {o}/results.sarif",
    "{d} --format sarif --output {o}/scan-results.sarif",
    "{d} --sbom {o}/model-sbom.json",
    "{d}/model.pkl --timeout 7200",
    "{d}/model.pkl --max-size 3GB",
    "{d} --format json --output {o}/scan-results.json",
]


@pytest.mark.parametrize("command", REFERENCE_COMMANDS)
def test_reference_examples_still_work_as_written(tmp_path: Path, command: str) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "model.pkl").write_bytes(SAFE_PICKLE)
    out = tmp_path / "out"
    out.mkdir()
    args = command.format(d=models, o=out).split()
    proc = run("scan", *args)
    assert proc.returncode == 0, proc.stderr
    for written in out.iterdir():
        assert written.stat().st_size > 0
    assert not [n for n in os.listdir(out) if n.startswith(".modelaudit-")]
