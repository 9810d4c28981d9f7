"""Redaction masks secrets, never the paths and names a report is about (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.remote_cloud._remote_cloud_servers import EVIL_PICKLE, MotoServer, clean_env, run_cli

#: moto's usual credentials, and a tracking user named like a common word
WEAK = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "MLFLOW_TRACKING_USERNAME": "admin",
    "MLFLOW_TRACKING_PASSWORD": "admin",
}


def _outputs(tmp_path: Path, target: str, env: dict[str, str]) -> dict[str, str]:
    """Text, JSON and SARIF reports and the SBOM of one target, with stdout and stderr."""
    out: dict[str, str] = {}
    for fmt in ("text", "json", "sarif"):
        report = tmp_path / f"report.{fmt}"
        sbom = tmp_path / f"sbom-{fmt}.json"
        proc = run_cli(["-f", fmt, "-o", str(report), "--sbom", str(sbom), target], env)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        out[fmt] = report.read_text()
        out[f"sbom-{fmt}"] = sbom.read_text()
        out[f"streams-{fmt}"] = proc.stdout + proc.stderr
    return out


def test_weak_secrets_do_not_mangle_s3_keys(tmp_path: Path, s3_open_server: MotoServer) -> None:
    env = clean_env(AWS_ENDPOINT_URL=s3_open_server.endpoint, **WEAK)
    uri = "s3://models/test-models/latest_model.pkl"
    out = _outputs(tmp_path, uri, env)
    for name, text in out.items():
        assert "***-models" not in text and "la***_model" not in text, name
    assert uri in out["text"] and uri in out["sbom-text"]
    report = json.loads(out["json"])
    assert [f["path"] for f in report["files"]] == [uri]
    assert all(i["location"].startswith(uri) for i in report["issues"])
    sarif = json.loads(out["sarif"])
    uris = {
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for result in sarif["runs"][0]["results"]
        for loc in result.get("locations", [])
    }
    assert uris == {uri}


def test_weak_secrets_do_not_mangle_local_paths(tmp_path: Path) -> None:
    folder = tmp_path / "test-models"
    folder.mkdir()
    (folder / "latest_model.pkl").write_bytes(EVIL_PICKLE)
    (folder / "admin_notes.pkl").write_bytes(EVIL_PICKLE)
    out = _outputs(tmp_path, str(folder), clean_env(**WEAK))
    for name, text in out.items():
        assert "***" not in text, (name, text[:2000])
    report = json.loads(out["json"])
    assert sorted(f["path"] for f in report["files"]) == [
        str(folder / "admin_notes.pkl"),
        str(folder / "latest_model.pkl"),
    ]
