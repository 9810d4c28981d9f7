from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reporting._reporting_scanner import POSIX_SYSTEM_PICKLE

RunCli = Callable[..., tuple[int, Any]]


@pytest.mark.parametrize(
    ("content", "extra", "fail_on", "expected"),
    [
        (b"#mdl\nfine\n", [], "warning", 0),
        (b"#mdl\nfine\n", [], "critical", 0),
        (b"#mdl\nodd\n", [], "warning", 1),
        (b"#mdl\nodd\n", [], "critical", 0),
        (b"#mdl\n" + POSIX_SYSTEM_PICKLE, [], "warning", 1),
        (b"#mdl\n" + POSIX_SYSTEM_PICKLE, [], "critical", 1),
        (b"#mdl\nodd\ntruncated\n", [], "critical", 2),
        (b"#mdl\n" + b"q" * 2000, ["--max-size", "100"], "critical", 2),
        (b"#mdl\n" + b"q" * 2000, ["--max-size", "100"], "warning", 2),
        (b"#mdl\nnote\n", [], "warning", 0),
    ],
)
def test_exit_codes(
    in_tmp: Path,
    run_cli: RunCli,
    content: bytes,
    extra: list[str],
    fail_on: str,
    expected: int,
) -> None:
    (in_tmp / "m.mdl").write_bytes(content)
    code, report = run_cli("m.mdl", "--format", "json", "--fail-on", fail_on, *extra)
    assert code == expected
    assert report["summary"]["exit_code"] == expected


def test_default_is_warning(in_tmp: Path, run_cli: RunCli) -> None:
    (in_tmp / "m.mdl").write_bytes(b"#mdl\nodd\n")
    code, _ = run_cli("m.mdl", "--format", "json")
    assert code == 1


def test_sarif_exit_code_follows_fail_on(in_tmp: Path, run_cli: RunCli) -> None:
    (in_tmp / "m.mdl").write_bytes(b"#mdl\nodd\n")
    code, doc = run_cli("m.mdl", "--format", "sarif", "--fail-on", "critical")
    assert code == 0
    assert doc["runs"][0]["invocations"][0]["exitCode"] == 0
    assert doc["runs"][0]["results"][0]["level"] == "warning"


def test_help_documents_the_flags() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    flat = " ".join(out.split())
    assert "--fail-on {warning,critical}" in flat
    assert "'critical' fails only on CRITICAL" in flat
    assert "--sbom FILE" in flat
    assert "sarif" in flat


def test_reference_gitlab_grep_recipe_works(in_tmp: Path, run_cli: RunCli) -> None:
    """The reference's GitLab job greps the JSON report for a critical severity."""
    (in_tmp / "bad.mdl").write_bytes(b"#mdl\n" + POSIX_SYSTEM_PICKLE)
    (in_tmp / "meh.mdl").write_bytes(b"#mdl\nodd\n")
    for name, expect_match in (("bad.mdl", 0), ("meh.mdl", 1)):
        run_cli(name, "--format", "json", output="scan-results.json")
        grep = subprocess.run(
            ["grep", "-q", '"severity":"critical"', "scan-results.json"], check=False
        )
        assert grep.returncode == expect_match, name
