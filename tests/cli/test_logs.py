"""Log lines on stderr (-v): their format and redaction, in a one-file run (which imports
logging only for -v) and in a sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli._helper import SAFE_PICKLE, run

SECRET = "s3cr3t-value-in-a-folder-name"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A settings file whose ignore entry matches nothing, in a folder named by a secret."""
    root = tmp_path / SECRET
    (root / "models").mkdir(parents=True)
    (root / "models" / "ok.pkl").write_bytes(SAFE_PICKLE)
    (root / ".modelaudit.toml").write_text(
        '[[ignore]]\nrules = ["MA1001"]\npaths = ["nothing/*.pkl"]\nreason = "stale entry"\n'
    )
    return root


@pytest.mark.parametrize("target", ["models/ok.pkl", "models"])
def test_verbose_logs_a_stale_ignore_entry_redacted(project: Path, target: str) -> None:
    proc = run(target, "-v", "--no-progress", cwd=project, env={"HF_TOKEN": SECRET})
    assert proc.returncode == 0, proc.stderr
    [line] = [x for x in proc.stderr.decode().splitlines() if x.startswith("modelaudit: INFO:")]
    assert line.startswith("modelaudit: INFO: ignore entry for MA1001 in ")
    assert line.endswith("/***/.modelaudit.toml matched nothing")


@pytest.mark.parametrize("target", ["models/ok.pkl", "models"])
def test_without_verbose_no_info_line(project: Path, target: str) -> None:
    proc = run(target, "--no-progress", cwd=project, env={"HF_TOKEN": SECRET})
    assert proc.returncode == 0, proc.stderr
    assert b"INFO" not in proc.stderr
