"""The reference page's S3, R2, GCS and MLflow examples, as written, against local servers.

Each example is the page's block of `export` lines and its command (checked against the
page), run in a shell with the page's placeholder values replaced by the local server's:
credentials, and the endpoint a real cloud would not need (AWS_ENDPOINT_URL for S3,
STORAGE_EMULATOR_HOST instead of a key file for GCS). `promptfoo scan-model` runs as
`modelaudit scan`. The page's buckets and names are used as written (`my-bucket/model.pkl`,
`models:/MyModel/Latest`); `models:/model-name/version` names version 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.remote_cloud._remote_cloud_servers import (
    EVIL_PICKLE,
    GcsEmulator,
    MlflowModels,
    MotoServer,
    clean_env,
    clean_safetensors,
)
from tests.reporting import _reference as ref

REPO = Path(__file__).resolve().parents[2]
BUCKET = "my-bucket"


def _run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**env, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        ["sh", "-ec", ref.as_modelaudit_script(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _fill(block: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        block = block.replace(placeholder, value)
    return block


S3_BLOCK = """\
export AWS_ACCESS_KEY_ID="your-access-key"
export AWS_SECRET_ACCESS_KEY="your-secret-key"
export AWS_DEFAULT_REGION="us-east-1"
promptfoo scan-model s3://my-bucket/model.pkl
"""
R2_BLOCK = """\
export AWS_ACCESS_KEY_ID="your-r2-access-key"
export AWS_SECRET_ACCESS_KEY="your-r2-secret-key"
export AWS_ENDPOINT_URL="https://your-account.r2.cloudflarestorage.com"
promptfoo scan-model r2://my-bucket/model.safetensors
"""
GCS_BLOCK = """\
export GOOGLE_APPLICATION_CREDENTIALS="/path/to/service-account-key.json"
promptfoo scan-model gs://my-bucket/model.pt
"""
MLFLOW_BLOCK = """\
# Authenticate with MLflow
export MLFLOW_TRACKING_URI="https://your-mlflow-server.com"
export MLFLOW_TRACKING_USERNAME="your-username"
export MLFLOW_TRACKING_PASSWORD="your-password"
promptfoo scan-model models:/model-name/version
"""


def _put(server: MotoServer, objects: dict[str, bytes]) -> None:
    s3 = server.admin()
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    for key, data in objects.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)


def test_s3_example(s3_server: MotoServer) -> None:
    ref.assert_from_reference(S3_BLOCK)
    _put(s3_server, {"model.pkl": EVIL_PICKLE})
    values = {"your-access-key": s3_server.key_id, "your-secret-key": s3_server.secret}
    env = clean_env(AWS_ENDPOINT_URL=s3_server.endpoint)  # moto, not AWS itself
    done = _run(_fill(S3_BLOCK, values), env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "s3://my-bucket/model.pkl" in done.stdout and "CRITICAL" in done.stdout
    assert s3_server.secret not in done.stdout + done.stderr
    _put(s3_server, {"model.pkl": b"\x80\x02}q\x00."})
    assert _run(_fill(S3_BLOCK, values), env).returncode == 0


def test_r2_example(r2_server: MotoServer) -> None:
    ref.assert_from_reference(R2_BLOCK)
    _put(r2_server, {"model.safetensors": clean_safetensors()})
    values = {
        "your-r2-access-key": r2_server.key_id,
        "your-r2-secret-key": r2_server.secret,
        "https://your-account.r2.cloudflarestorage.com": r2_server.endpoint,
    }
    done = _run(_fill(R2_BLOCK, values), clean_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Scanned 1 file(s)" in done.stdout


def test_gcs_example(gcs_emulator: GcsEmulator) -> None:
    """The emulator takes no key file: STORAGE_EMULATOR_HOST stands in for the export."""
    ref.assert_from_reference(GCS_BLOCK)
    gcs_emulator.create_bucket(BUCKET)
    gcs_emulator.upload(BUCKET, "model.pt", EVIL_PICKLE)
    script = GCS_BLOCK.splitlines()[-1]
    done = _run(script, clean_env(STORAGE_EMULATOR_HOST=gcs_emulator.url))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "gs://my-bucket/model.pt" in done.stdout


@pytest.mark.parametrize(
    ("command", "name", "code"),
    [
        (MLFLOW_BLOCK, "model-name", 0),
        ("promptfoo scan-model models:/MyModel/Latest", "MyModel", 1),
    ],
)
def test_mlflow_examples(mlflow_models: MlflowModels, command: str, name: str, code: int) -> None:
    ref.assert_from_reference(command)
    server = mlflow_models.server
    files = {"model.safetensors": clean_safetensors()} if code == 0 else {"model.pkl": EVIL_PICKLE}
    version = server.register(name, files)
    exports = _fill(
        MLFLOW_BLOCK.rsplit("\n", 2)[0],
        {
            "https://your-mlflow-server.com": server.url,
            "your-username": server.user,
            "your-password": server.password,
        },
    )
    line = command.strip().splitlines()[-1]
    script = (
        exports + "\n" + line.replace("models:/model-name/version", f"models:/{name}/{version}")
    )
    done = _run(script, clean_env())
    assert done.returncode == code, done.stdout + done.stderr
    assert f"models:/{name}/" in done.stdout or code == 0
