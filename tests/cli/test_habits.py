"""The habits CI users expect of a command-line scanner."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelaudit.cli import build_parser, with_command
from modelaudit.output import use_color
from tests.cli._helper import EVIL_PICKLE, SAFE_PICKLE, json_report, run, run_on_terminal

_TIMING = re.compile(rb"in \d+\.\d\ds")


@pytest.fixture
def models(tmp_path: Path) -> Path:
    (tmp_path / "evil.pkl").write_bytes(EVIL_PICKLE)
    (tmp_path / "ok.pkl").write_bytes(SAFE_PICKLE)
    return tmp_path


def test_path_alone_means_scan(models: Path) -> None:
    short = run(str(models), "--format", "text")
    long = run("scan", str(models), "--format", "text")
    assert short.returncode == long.returncode == 1
    assert _TIMING.sub(b"", short.stdout) == _TIMING.sub(b"", long.stdout)
    options_first = run("-f", "json", str(models / "ok.pkl"))
    assert options_first.returncode == 0
    assert json_report(options_first)["files_scanned"] == 1


def test_command_insertion_rules() -> None:
    assert with_command(["models/"]) == ["scan", "models/"]
    assert with_command(["--verbose", "m.pkl"]) == ["scan", "--verbose", "m.pkl"]
    assert with_command(["scan", "m.pkl"]) == ["scan", "m.pkl"]
    assert with_command(["rules"]) == ["rules"]
    assert with_command(["--version"]) == ["--version"]
    assert with_command([]) == []
    args = build_parser().parse_args(with_command(["./rules"]))
    assert args.command == "scan" and args.paths == ["./rules"]


def test_summary_line_on_stderr_when_the_report_goes_to_a_file(
    models: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.sarif"
    proc = run(str(models), "--format", "sarif", "--output", str(out))
    assert proc.returncode == 1
    assert proc.stdout == b""
    [line] = proc.stderr.decode().splitlines()
    assert re.fullmatch(
        r"modelaudit: Scanned 2 file\(s\), \d+ bytes in \d+\.\d\ds: 2 critical, 0 warning, "
        rf"0 info -> issues found \(report: {re.escape(str(out))}\)",
        line,
    ), line
    quiet = run(str(models), "--format", "sarif", "--output", str(out), "-q")
    assert quiet.returncode == 1 and quiet.stderr == b""
    # A report on stdout needs no summary on stderr.
    assert run(str(models), "--format", "json").stderr == b""


def test_quiet(models: Path) -> None:
    clean = run(str(models / "ok.pkl"), "-q")
    assert clean.returncode == 0
    assert clean.stdout == b"" and clean.stderr == b""
    noisy = run(str(models), "-q")
    assert noisy.returncode == 1
    assert b"CRITICAL" in noisy.stdout and b"INFO" not in noisy.stdout
    assert b"-> issues found" in noisy.stdout
    assert run(str(models), "-q", "-v").returncode == 2


def test_color_conventions() -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    class Pipe:
        def isatty(self) -> bool:
            return False

    assert use_color(Tty(), {}) is True
    assert use_color(Tty(), {"NO_COLOR": ""}) is True
    assert use_color(Tty(), {"NO_COLOR": "1"}) is False
    assert use_color(Tty(), {"TERM": "dumb"}) is False
    assert use_color(Pipe(), {}) is False
    assert use_color(Pipe(), {"FORCE_COLOR": "1"}) is True
    assert use_color(Pipe(), {"FORCE_COLOR": ""}) is False
    assert use_color(Pipe(), {"FORCE_COLOR": "1", "NO_COLOR": "1"}) is False


def test_color_end_to_end(models: Path) -> None:
    evil = str(models / "evil.pkl")
    code, terminal, _ = run_on_terminal(
        evil, "--no-progress", env={"NO_COLOR": ""}, streams=("stdout",)
    )
    assert code == 1
    assert b"\x1b[1;31mCRITICAL\x1b[0m" in terminal
    code, terminal, _ = run_on_terminal(evil, env={"NO_COLOR": "1"}, streams=("stdout",))
    assert b"CRITICAL" in terminal and b"\x1b[" not in terminal
    forced = run(evil, env={"FORCE_COLOR": "1"})
    assert b"\x1b[1;31mCRITICAL\x1b[0m" in forced.stdout
    plain = run(evil, env={"FORCE_COLOR": "", "NO_COLOR": ""})
    assert b"\x1b[" not in plain.stdout


def test_progress_on_a_terminal_shows_totals_and_bytes(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"m{i:02}.pkl").write_bytes(SAFE_PICKLE + b" " * 1000)
    code, terminal, stdout = run_on_terminal(str(tmp_path), "--format", "json")
    assert code == 0
    assert json_report_bytes(stdout)["files_scanned"] == 30
    text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", terminal)
    assert b"30/30 files" in text
    assert b"30.4 kB/30.4 kB" in text
    # Nothing when stderr is not a terminal, or with --no-progress / -q.
    assert run(str(tmp_path), "--format", "json").stderr == b""
    for flag in ("--no-progress", "-q"):
        _, terminal, _ = run_on_terminal(str(tmp_path), "--format", "json", flag)
        assert terminal == b""


def json_report_bytes(data: bytes) -> dict[str, object]:
    import json

    doc: dict[str, object] = json.loads(data)
    return doc
