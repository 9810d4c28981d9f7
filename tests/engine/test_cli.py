"""The `modelaudit` command as users and CI call it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelaudit.cli import build_parser
from modelaudit.config import parse_size

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "modelaudit", *args],
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def test_malicious_sample_exits_1_and_names_the_call() -> None:
    proc = run("scan", str(EXAMPLES / "evil.pkl"))
    assert proc.returncode == 1, proc.stderr
    assert b"CRITICAL" in proc.stdout
    assert b"system" in proc.stdout


def test_clean_sample_exits_0() -> None:
    proc = run("scan", str(EXAMPLES / "safe.pkl"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_json_report_on_stdout_is_greppable_as_the_gitlab_recipe_does() -> None:
    proc = run("scan", str(EXAMPLES), "--format", "json")
    assert proc.returncode == 1
    assert b'"severity":"critical"' in proc.stdout
    report = json.loads(proc.stdout)
    assert report["files_scanned"] == 2
    assert proc.stderr == b""  # no progress bar when stderr is not a terminal


def test_output_file_receives_the_report(tmp_path: Path) -> None:
    out = tmp_path / "scan-results.json"
    proc = run("scan", str(EXAMPLES), "--format", "json", "--output", str(out))
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert json.loads(out.read_bytes())["issues"]
    assert [p.name for p in tmp_path.iterdir()] == ["scan-results.json"]


def test_errors_without_findings_exit_2(tmp_path: Path) -> None:
    proc = run("scan", str(tmp_path / "missing.pkl"))
    assert proc.returncode == 2


@pytest.mark.parametrize(
    ("flag", "variable"),
    [
        ("--jfrog-api-token", "JFROG_API_TOKEN"),
        ("--jfrog-access-token", "JFROG_ACCESS_TOKEN"),
        ("--registry-uri", "JFROG_URL or MLFLOW_TRACKING_URI"),
    ],
)
def test_removed_flags_name_their_environment_variable(flag: str, variable: str) -> None:
    proc = run("scan", "x.pkl", flag, "secret-value")
    assert proc.returncode == 2
    assert variable.encode() in proc.stderr
    assert b"secret-value" not in proc.stderr + proc.stdout


def test_no_color_when_not_a_terminal() -> None:
    proc = run("scan", str(EXAMPLES / "evil.pkl"), env={"NO_COLOR": "1"})
    assert b"\x1b[" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500MB", 500 * 1024**2),
        ("1GB", 1024**3),
        ("3GB", 3 * 1024**3),
        ("2048", 2048),
        ("1.5KiB", 1536),
    ],
)
def test_max_size_units(text: str, expected: int) -> None:
    assert parse_size(text) == expected
    args = build_parser().parse_args(["scan", "m.pkl", "--max-size", text])
    assert args.max_size == expected


def test_bad_size_is_rejected() -> None:
    proc = run("scan", "m.pkl", "--max-size", "lots")
    assert proc.returncode == 2
    assert b"invalid size" in proc.stderr


def test_help_lists_every_documented_option() -> None:
    proc = run("scan", "--help")
    for option in (
        b"--format",
        b"--output",
        b"--timeout",
        b"--max-size",
        b"--blacklist",
        b"--strict",
        b"--verbose",
        b"--jobs",
    ):
        assert option in proc.stdout


def test_a_large_report_reaches_a_non_blocking_pipe_whole(tmp_path: Path) -> None:
    """Whoever shares our stdout may have made it non-blocking (an asyncio or libuv parent);
    a report of more than a pipe's capacity must still arrive whole, not cut at 64 KiB."""
    import pickle

    for i in range(4000):
        (tmp_path / f"m{i:04}.pkl").write_bytes(pickle.dumps({"i": i}))
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelaudit", "scan", str(tmp_path), "--format", "json"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        data = reader.read()
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert len(data) > 1_000_000
    report = json.loads(data)
    assert len(report["files"]) == 4000
