"""models:/ URIs against a real `mlflow server` with basic auth and proxied artifacts."""

from __future__ import annotations

import base64
import json

import pytest

import modelaudit
from tests.remote_cloud._remote_cloud_servers import (
    MlflowModels,
    MotoServer,
    clean_env,
    run_cli,
)


def mlflow_env(models: MlflowModels, signed: bool = True, **extra: str) -> dict[str, str]:
    env = {"MLFLOW_TRACKING_URI": models.server.url}
    if signed:
        env |= {
            "MLFLOW_TRACKING_USERNAME": models.server.user,
            "MLFLOW_TRACKING_PASSWORD": models.server.password,
        }
    return clean_env(**env, **extra)


def use_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        if name.startswith(("MLFLOW_", "AWS_")):
            monkeypatch.setenv(name, value)


def test_cli_malicious_version(mlflow_models: MlflowModels) -> None:
    proc = run_cli(["-v", "-f", "json", "models:/evil-model/1"], mlflow_env(mlflow_models))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    basic = base64.b64encode(f"{mlflow_models.server.user}:".encode()).decode()[:8]
    assert basic not in proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    critical = [i for i in report["issues"] if i["severity"] == "critical"]
    assert critical
    assert all(i["location"].startswith("models:/evil-model/1/model.pkl") for i in critical)
    assert mlflow_models.server.password not in proc.stdout + proc.stderr


def test_cli_clean_alias_with_nested_artifacts(mlflow_models: MlflowModels) -> None:
    proc = run_cli(["-f", "json", "models:/clean-model@champion"], mlflow_env(mlflow_models))
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, report
    assert sorted(f["path"] for f in report["files"]) == [
        "models:/clean-model/1/model.safetensors",
        "models:/clean-model/1/sub/extra.safetensors",
    ]


async def test_api_stage_and_latest(
    mlflow_models: MlflowModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_env(monkeypatch, mlflow_env(mlflow_models))
    report = await modelaudit.scan(["models:/evil-model/Production", "models:/clean-model/latest"])
    paths = {f.path: f for f in report.files}
    assert set(paths) == {
        "models:/evil-model/1/model.pkl",
        "models:/clean-model/2/model.safetensors",
    }
    assert any(
        i.severity.value == "critical" for i in paths["models:/evil-model/1/model.pkl"].issues
    )
    assert not paths["models:/clean-model/2/model.safetensors"].issues
    assert report.exit_code == 1


async def test_api_alias_on_malicious(
    mlflow_models: MlflowModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_env(monkeypatch, mlflow_env(mlflow_models))
    report = await modelaudit.scan("models:/evil-model@suspect")
    assert report.exit_code == 1
    assert [f.path for f in report.files] == ["models:/evil-model/1/model.pkl"]


def test_cli_without_credentials_one_line(mlflow_models: MlflowModels) -> None:
    proc = run_cli(["models:/evil-model/1"], mlflow_env(mlflow_models, signed=False))
    assert proc.returncode == 2
    lines = [
        line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if "MLFLOW_" in line
    ]
    assert len(lines) == 1, proc.stdout + proc.stderr
    assert "MLFLOW_TRACKING_USERNAME" in lines[0] and "MLFLOW_TRACKING_PASSWORD" in lines[0]


def test_cli_wrong_password_is_refused_and_not_shown(mlflow_models: MlflowModels) -> None:
    env = mlflow_env(mlflow_models)
    env["MLFLOW_TRACKING_PASSWORD"] = "not-the-password-77"
    proc = run_cli(["models:/evil-model/1"], env)
    assert proc.returncode == 2
    assert "refused" in proc.stdout
    assert "not-the-password-77" not in proc.stdout + proc.stderr


def test_cli_missing_model_version_and_alias(mlflow_models: MlflowModels) -> None:
    targets = ["models:/no-such-model/1", "models:/clean-model/99", "models:/clean-model@nope"]
    proc = run_cli(["-f", "json", *targets], mlflow_env(mlflow_models))
    assert proc.returncode == 2
    errors = {e["target"]: e["error"] for e in json.loads(proc.stdout)["target_errors"]}
    assert set(errors) == set(targets)
    # With auth on, MLflow answers 403 for a model that does not exist.
    assert "does not exist" in errors[targets[0]]
    assert "version not found" in errors[targets[1]]
    assert "alias not found" in errors[targets[2]]


def test_cli_without_tracking_uri(mlflow_models: MlflowModels) -> None:
    proc = run_cli(["models:/evil-model/1"], clean_env())
    assert proc.returncode == 2
    assert "set MLFLOW_TRACKING_URI" in proc.stdout


def test_cli_bucket_artifacts_go_to_the_s3_fetcher(
    mlflow_models: MlflowModels, s3_server: MotoServer
) -> None:
    env = mlflow_env(
        mlflow_models,
        AWS_ENDPOINT_URL=s3_server.endpoint,
        AWS_ACCESS_KEY_ID=s3_server.key_id,
        AWS_SECRET_ACCESS_KEY=s3_server.secret,
    )
    proc = run_cli(["-f", "json", f"models:/s3-model/{mlflow_models.s3_version}"], env)
    assert proc.returncode == 1, proc.stdout
    report = json.loads(proc.stdout)
    version = mlflow_models.s3_version
    assert [f["path"] for f in report["files"]] == [f"models:/s3-model/{version}/evil.pkl"]
    assert all(
        i["location"].startswith(f"models:/s3-model/{version}/evil.pkl") for i in report["issues"]
    )


def test_registered_model_environment_off_the_index_warns(mlflow_models: MlflowModels) -> None:
    """Files MLflow wrote (the zoo's sklearn model), with one requirement from a VCS checkout:
    a registry model is an MLflow model by its URI, whatever sits beside the spooled file."""
    from pathlib import Path

    model = Path(__file__).resolve().parents[1] / "zoo" / "repos" / "mlflow-sklearn" / "model"
    files = {p.name: p.read_bytes() for p in model.iterdir()}
    files["requirements.txt"] += b"\ngit+https://github.com/example/extras@main#egg=extras\n"
    version = mlflow_models.server.register("env-model", files)
    proc = run_cli(["-f", "json", f"models:/env-model/{version}"], mlflow_env(mlflow_models))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    loud = [(i["location"], i["rule"]) for i in report["issues"] if i["severity"] != "info"]
    assert loud == [(f"models:/env-model/{version}/requirements.txt", "MA4904")]
