"""Real files from torch, scikit-learn/joblib and numpy: no CRITICAL, no container warning,
complete scans, and the right scanner for each."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelaudit.findings import FileStatus, IssueSeverity
from tests.containers._container_corpus import JOBLIB_COMPRESSORS, criticals, scan

LEGIT = [
    "state_dict.pt",
    "whole_module.pth",
    "optimizer.ckpt",
    "legacy.pt",
    "folder_name.bin",
    "big.pt",
    "forest.joblib",
    "pipeline.joblib",
    *[f"{m}.{c}.joblib" for m in ("forest", "pipeline") for c in JOBLIB_COMPRESSORS],
    "array.npy",
    "structured.npy",
    "arrays.npz",
    "compressed.npz",
    "objects.npy",
    "models.tar.gz",
    "models.zip",
    "model.7z",
]

SCANNER = {
    "state_dict.pt": "pytorch_zip",
    "whole_module.pth": "pytorch_zip",
    "optimizer.ckpt": "pytorch_zip",
    "folder_name.bin": "pytorch_zip",
    "forest.zlib.joblib": "compressed",
    "pipeline.lz4.joblib": "compressed",
    "array.npy": "numpy",
    "compressed.npz": "numpy",
    "models.tar.gz": "compressed",
    "models.zip": "archive",
    "model.7z": "archive",
}


@pytest.mark.parametrize("key", LEGIT)
def test_legitimate_file_has_no_critical(legit: dict[str, Path], key: str) -> None:
    result = scan(legit[key])
    assert not criticals(result), [i.to_dict() for i in result.issues]
    assert result.status is FileStatus.COMPLETE, result.status_reason
    container_warnings = [
        i
        for i in result.issues
        if (i.rule or "").startswith("MA2") and i.severity.rank >= IssueSeverity.WARNING.rank
    ]
    assert not container_warnings, [i.to_dict() for i in container_warnings]


@pytest.mark.parametrize("key", sorted(SCANNER))
def test_routed_to_container_scanner(legit: dict[str, Path], key: str) -> None:
    assert scan(legit[key]).scanner_name == SCANNER[key]


def test_checkpoint_tensor_data_is_not_read(legit: dict[str, Path]) -> None:
    path = legit["big.pt"]
    size = os.path.getsize(path)
    result = scan(path)
    assert size > 4_000_000
    assert 0 < result.bytes_scanned < size // 50
    details = result.metadata["format_details"]
    assert details["pickle_records"] == ["big/data.pkl"]


def test_inner_folder_name_is_reported(legit: dict[str, Path]) -> None:
    details = scan(legit["folder_name.bin"]).metadata["format_details"]
    assert details["folders"] == ["pytorch_model_custom_folder"]


def test_numeric_npy_data_is_not_read(legit: dict[str, Path]) -> None:
    result = scan(legit["array.npy"])
    assert result.bytes_scanned == 128
    assert result.metadata["format_details"]["arrays"][0]["shape"] == [10, 10]


def test_archive_members_are_scanned_by_their_own_format(legit: dict[str, Path]) -> None:
    result = scan(legit["models.zip"])
    assert result.bytes_scanned > 0
    assert result.metadata["format"] == "zip"
    assert result.metadata["format_details"] == {"archive": "zip", "members": 3}
    tar = scan(legit["models.tar.gz"])
    assert tar.metadata["format_details"]["content"] == "tar"
    assert scan(legit["model.7z"]).metadata["format_details"]["members"] == 1


def test_benign_legacy_tar_layout_is_followed(tmp_path: Path) -> None:
    from tests.containers._container_corpus import legacy_tar

    path = tmp_path / "old.pt"
    path.write_bytes(legacy_tar())
    result = scan(path)
    assert result.status is FileStatus.COMPLETE, result.status_reason
    assert not criticals(result)
    assert result.scanner_name == "archive"


TRUNCATABLE = [
    "state_dict.pt",
    "array.npy",
    "arrays.npz",
    "compressed.npz",
    "objects.npy",
    *[f"forest.{c}.joblib" for c in JOBLIB_COMPRESSORS],
    "models.tar.gz",
    "models.zip",
    "model.7z",
]


@pytest.mark.parametrize("key", TRUNCATABLE)
@pytest.mark.parametrize("keep", [0.5, -1])
def test_truncated_file_is_never_clean(
    legit: dict[str, Path], tmp_path: Path, key: str, keep: float
) -> None:
    data = legit[key].read_bytes()
    cut = int(len(data) * keep) if keep > 0 else len(data) - 1
    path = tmp_path / legit[key].name
    path.write_bytes(data[:cut])
    result = scan(path)
    flagged = any(i.severity.rank >= IssueSeverity.WARNING.rank for i in result.issues)
    assert result.status is not FileStatus.COMPLETE or flagged, [i.to_dict() for i in result.issues]


@pytest.mark.parametrize(
    "key",
    [
        "state_dict.pt",
        "compressed.npz",
        "forest.gzip.joblib",
        "models.tar.gz",
        "models.zip",
        "model.7z",
    ],
)
def test_corrupted_containers_never_crash_the_scanner(
    legit: dict[str, Path], tmp_path: Path, key: str
) -> None:
    import random

    rng = random.Random(key)
    data = legit[key].read_bytes()
    for trial in range(12):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        path = tmp_path / f"{trial}_{legit[key].name}"
        path.write_bytes(bytes(mutated[: rng.randrange(len(mutated) // 2, len(mutated) + 1)]))
        result = scan(path)
        assert result.status is not FileStatus.ERROR, result.status_reason


def test_all_legitimate_files_through_the_public_api(legit: dict[str, Path]) -> None:
    """Worker processes and their sandbox included: nothing above INFO, every file complete."""
    from modelaudit.core import scan_model_directory_or_file

    root = next(iter(legit.values())).parent
    report = scan_model_directory_or_file(str(root), timeout=300)
    loud = [i for i in report["issues"] if i["severity"] in ("warning", "critical")]
    assert not loud, loud
    assert report["files_scanned"] >= 25
    assert not report["has_errors"]
