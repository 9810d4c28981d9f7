"""Cloud SDKs are optional extras: without one, its targets are refused in one line naming it."""

from __future__ import annotations

import os
from pathlib import Path

from tests.cli._helper import SAFE_PICKLE, json_report, run

NO_EXTRAS = str(Path(__file__).resolve().parent / "_no_extras")


def _without_extras() -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([NO_EXTRAS, os.environ.get("PYTHONPATH", "")])}


def test_missing_extra_is_named_and_the_rest_is_scanned(tmp_path: Path) -> None:
    (tmp_path / "ok.pkl").write_bytes(SAFE_PICKLE)
    proc = run(
        "s3://bucket/model.pkl",
        "r2://bucket/model.pkl",
        "gs://bucket/model.pkl",
        str(tmp_path),
        "--format",
        "json",
        env=_without_extras(),
    )
    assert proc.returncode == 2
    report = json_report(proc)
    assert report["files_scanned"] == 1
    errors = {e["target"]: e["error"] for e in report["target_errors"]}
    assert errors == {
        "s3://bucket/model.pkl": "s3://bucket/model.pkl: S3 and R2 support is not installed; "
        "install modelaudit with its 's3' (or 'all') extra, e.g. pip install -e '.[s3]' in "
        "its checkout",
        "r2://bucket/model.pkl": "r2://bucket/model.pkl: S3 and R2 support is not installed; "
        "install modelaudit with its 's3' (or 'all') extra, e.g. pip install -e '.[s3]' in "
        "its checkout",
        "gs://bucket/model.pkl": "gs://bucket/model.pkl: Google Cloud Storage support is not "
        "installed; install modelaudit with its 'gcs' (or 'all') extra, e.g. pip install -e "
        "'.[gcs]' in its checkout",
    }
    # One line each on stderr, no traceback.
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 3 and all(line.startswith("modelaudit: error: ") for line in lines)


def test_local_scans_never_need_an_extra(tmp_path: Path) -> None:
    (tmp_path / "ok.pkl").write_bytes(SAFE_PICKLE)
    proc = run(str(tmp_path), env=_without_extras())
    assert proc.returncode == 0, proc.stderr
