from __future__ import annotations

from collections.abc import Iterator

import pytest
from _remote_cloud_servers import (
    EVIL_PICKLE,
    R2_BUCKET,
    S3_BUCKET,
    MotoServer,
    clean_safetensors,
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
