from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.remote_cloud._remote_cloud_servers import (
    EVIL_PICKLE,
    GCS_BUCKET,
    GCS_PRIVATE_BUCKET,
    R2_BUCKET,
    S3_BUCKET,
    GcsAuthProxy,
    GcsEmulator,
    MlflowModels,
    MlflowServer,
    MotoServer,
    clean_safetensors,
    launch_mlflow,
    ready_mlflow,
    start_gcs_emulator,
    start_moto,
    stop,
)


def _objects() -> dict[str, bytes]:
    clean = clean_safetensors()
    return {
        "evil.pkl": EVIL_PICKLE,
        "clean.safetensors": clean,
        "sweep/a/evil.pkl": EVIL_PICKLE,
        "sweep/b/clean.safetensors": clean,
        "mutable.safetensors": clean,
    }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    """S3 with IAM enforced: unsigned or unknown keys are refused."""
    server = start_moto({S3_BUCKET: _objects()}, enforce_auth=True)
    try:
        yield server
    finally:
        stop(server.proc)


@pytest.fixture(scope="session")
def r2_server() -> Iterator[MotoServer]:
    """A second S3-compatible endpoint standing in for an R2 account."""
    server = start_moto({R2_BUCKET: _objects()}, enforce_auth=True)
    try:
        yield server
    finally:
        stop(server.proc)


@pytest.fixture(scope="session", autouse=True)
def mlflow_launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """Started with the session so its slow start-up overlaps the other tests."""
    server = launch_mlflow(str(tmp_path_factory.mktemp("mlflow")))
    try:
        yield server
    finally:
        stop(server.proc)


@pytest.fixture(scope="session")
def mlflow_models(mlflow_launched: MlflowServer, s3_server: MotoServer) -> MlflowModels:
    """Registered models: evil-model v1 (Production, @suspect), clean-model v1 and v2
    (@champion -> 1), and s3-model v1 whose source is a bucket on the S3 server."""
    server = ready_mlflow(mlflow_launched)
    api = "/api/2.0/mlflow"
    clean = clean_safetensors()
    server.register("evil-model", {"model.pkl": EVIL_PICKLE})
    server.call(
        "POST",
        f"{api}/model-versions/transition-stage",
        {
            "name": "evil-model",
            "version": "1",
            "stage": "Production",
            "archive_existing_versions": False,
        },
    )
    server.call(
        "POST",
        f"{api}/registered-models/alias",
        {"name": "evil-model", "alias": "suspect", "version": "1"},
    )
    server.register("clean-model", {"model.safetensors": clean, "sub/extra.safetensors": clean})
    server.register("clean-model", {"model.safetensors": clean})
    server.call(
        "POST",
        f"{api}/registered-models/alias",
        {"name": "clean-model", "alias": "champion", "version": "1"},
    )
    s3_version = server.register("s3-model", {}, source=f"s3://{S3_BUCKET}/sweep/a")
    return MlflowModels(server, s3_version)


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GcsEmulator]:
    emulator = start_gcs_emulator()
    try:
        for bucket in (GCS_BUCKET, GCS_PRIVATE_BUCKET):
            emulator.create_bucket(bucket)
            for name, data in _objects().items():
                emulator.upload(bucket, name, data)
        yield emulator
    finally:
        stop(emulator.proc)


@pytest.fixture(scope="session")
def gcs_private(
    gcs_emulator: GcsEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GcsAuthProxy]:
    """The emulator behind a front that demands a token from the service-account key."""
    key_file = str(tmp_path_factory.mktemp("gcs") / "service-account.json")
    proxy = GcsAuthProxy(gcs_emulator.url, key_file)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture(scope="session")
def s3_open_server() -> Iterator[MotoServer]:
    """An S3 server that takes any key, as moto is usually run (AWS_ACCESS_KEY_ID=test)."""
    server = start_moto({"models": {"test-models/latest_model.pkl": EVIL_PICKLE}}, False)
    try:
        yield server
    finally:
        stop(server.proc)
