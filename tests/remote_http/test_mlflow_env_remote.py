"""An MLflow model on the Hub is judged as its local copy: MA4904 has one severity.

The spooled copy of a remote `requirements.txt` has no `MLmodel` beside it, so the scanner
recognises the file MLflow wrote by its shape (the first requirement pins MLflow).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.remote_http._remote_http_servers import FakeHub, Repo, run_cli

MODEL = Path(__file__).resolve().parents[1] / "zoo" / "repos" / "mlflow-sklearn" / "model"
OFFSITE = b"git+https://github.com/example/extras@main#egg=extras\n"


def _env_findings(stdout: str) -> list[tuple[str, str]]:
    report = json.loads(stdout)
    return sorted(
        (i["location"].rsplit("/", 1)[-1], i["severity"])
        for i in report["issues"]
        if i["rule"] == "MA4904"
    )


def test_remote_mlflow_environment_matches_the_local_verdict(hub: FakeHub, tmp_path: Path) -> None:
    files = {p.name: p.read_bytes() for p in MODEL.iterdir()}
    files["requirements.txt"] += OFFSITE
    hub.add("acme/mlflow-env", Repo(files))
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    local = run_cli(str(tmp_path), "--format", "json")
    remote = run_cli("hf://acme/mlflow-env", "--format", "json")
    assert (local.returncode, remote.returncode) == (1, 1), remote.stderr
    expected = [("requirements.txt", "warning")]
    assert _env_findings(local.stdout) == expected
    assert _env_findings(remote.stdout) == expected
