from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster._cluster import DaskCluster, start_cluster
from tests.remote_cloud._remote_cloud_servers import MotoServer, start_moto, stop

BUCKET = "sweep"


@pytest.fixture(scope="package")
def sweep_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """S3 with IAM enforced, holding the hostile corpus, clean models and small pickles."""
    from tests.hardening._malicious_corpus import build_corpus
    from tests.remote_cloud._remote_cloud_servers import clean_safetensors

    folder = tmp_path_factory.mktemp("s3-corpus")
    files = build_corpus(str(folder / "hostile"), str(folder / "sentinels"))
    objects = {f"hostile/{name}": Path(path).read_bytes() for name, path in files.items()}
    clean = clean_safetensors()
    for index in range(40):
        objects[f"clean/model{index:02d}.safetensors"] = clean
    objects["clean/config.json"] = b'{"model_type": "bert", "architectures": ["BertModel"]}'
    server = start_moto({BUCKET: objects}, enforce_auth=True)
    try:
        yield server
    finally:
        stop(server.proc)


def s3_env(server: MotoServer) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": server.key_id,
        "AWS_SECRET_ACCESS_KEY": server.secret,
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture(scope="package")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, sweep_server: MotoServer
) -> Iterator[DaskCluster]:
    """A scheduler and two workers, each node with its own S3 credentials in its environment."""
    env = s3_env(sweep_server)
    dask = start_cluster(tmp_path_factory.mktemp("dask"), workers=[env, env])
    try:
        yield dask
    finally:
        dask.close()
