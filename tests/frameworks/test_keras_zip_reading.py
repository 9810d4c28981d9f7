"""`.keras` archives are read by `formats/zipdir`, the one zip parser, never by a second one.

Archives written by Keras, then rewritten by hand: duplicate config.json, zip64 records,
prepended data, truncated data, and members zipfile refuses (a bad CRC, a local name that
disagrees) but other readers take. Python's zipfile, which Keras loads with, is used here only
to say what Keras would read; the scanner must judge that and report where readers differ.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from modelaudit.findings import FileStatus, IssueSeverity, ScanResult
from modelaudit.formats import Format
from modelaudit.formats.zipdir import read_directory
from modelaudit.rules import MALFORMED
from modelaudit.rules import containers as crules
from modelaudit.rules import frameworks as R
from modelaudit.scanners.keras.config import model_names
from tests.containers._container_corpus import Member, raw_zip, two_directories
from tests.frameworks._frameworks_helpers import alarms, rules_at, scan
from tests.frameworks.test_keras_zip import _lambda3, _weights

CRIT = IssueSeverity.CRITICAL
EVIL = "lambda x: exec('import os; os.system(\"id\")') or x"


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _config(real: dict[str, bytes], name: str, evil: bool) -> bytes:
    config: dict[str, Any] = json.loads(real["config.json"])
    config["config"]["name"] = name
    if evil:
        config["config"]["layers"].append(_lambda3(EVIL))
    return json.dumps(config).encode()


def _linked_weights(tmp_path: Path) -> bytes:
    """Weights whose HDF5 file links outside itself: found only if the member was read."""
    target = tmp_path / "linked.h5"
    _weights(target, link_to="/etc/x.h5")
    data = target.read_bytes()
    target.unlink()
    return data


def _what_keras_reads(data: bytes) -> bytes:
    """`saving_lib._load_model_from_fileobj`: zipfile, then `config.json` by name."""
    with warnings.catch_warnings(), zipfile.ZipFile(io.BytesIO(data)) as zf:
        warnings.simplefilter("ignore")
        return zf.read("config.json")


def _critical(result: ScanResult) -> set[str]:
    return rules_at(result, CRIT)


@pytest.mark.parametrize("name", ["legit.keras", "lambda.keras", "lambda_functions.keras"])
def test_keras_written_archive_is_listed_as_zipfile_lists_it(tf_models: Path, name: str) -> None:
    path = tf_models / name
    with zipfile.ZipFile(path) as zf, open(path, "rb") as f:
        directory = read_directory(f, path.stat().st_size)
        assert directory.names == zf.namelist()
        assert [e.size for e in directory.entries] == [i.file_size for i in zf.infolist()]
        loaded = json.loads(zf.read("config.json"))
    result = scan(path)
    assert result.scanner_name == "keras_zip"
    assert result.metadata["format"] == Format.KERAS_ZIP  # not its weights member's hdf5
    assert result.metadata["model_names"] == model_names(loaded)
    if name == "legit.keras":
        assert result.status is FileStatus.COMPLETE
        assert alarms(result) == []


@pytest.mark.parametrize("evil_last", [True, False], ids=["evil-loaded", "evil-decoy"])
def test_duplicate_config_judges_every_copy_and_names_the_loaded_one(
    tf_models: Path, tmp_path: Path, evil_last: bool
) -> None:
    real = _members(tf_models / "legit.keras")
    first = _config(real, "first_net", evil=not evil_last)
    last = _config(real, "last_net", evil=evil_last)
    data = raw_zip(
        [
            Member("config.json", first),
            Member("metadata.json", real["metadata.json"]),
            Member("model.weights.h5", real["model.weights.h5"]),
            Member("config.json", last, method=8),
        ]
    )
    assert _what_keras_reads(data) == last
    path = tmp_path / "model.keras"
    path.write_bytes(data)
    result = scan(path)
    assert R.KERAS_LAMBDA_DANGEROUS in _critical(result)
    assert result.metadata["model_names"] == ["last_net"]
    [differ] = [i for i in result.issues if "different contents" in i.message]
    assert differ.rule == crules.ZIP_ANOMALY
    assert "loads entry #3" in differ.message


def test_identical_duplicate_config_is_one_anomaly_not_a_disagreement(
    tf_models: Path, tmp_path: Path
) -> None:
    real = _members(tf_models / "legit.keras")
    members = [Member(name, data) for name, data in real.items()]
    path = tmp_path / "model.keras"
    path.write_bytes(raw_zip([*members, Member("config.json", real["config.json"])]))
    result = scan(path)
    assert crules.ZIP_ANOMALY in rules_at(result, IssueSeverity.WARNING)
    assert not [i for i in result.issues if "different contents" in i.message]
    assert not _critical(result)


def _evil_archive(tf_models: Path, tmp_path: Path) -> list[tuple[str, bytes]]:
    real = _members(tf_models / "legit.keras")
    return [
        ("metadata.json", real["metadata.json"]),
        ("config.json", _config(real, "evil_net", evil=True)),
        ("model.weights.h5", _linked_weights(tmp_path)),
    ]


def _assert_evil_found(result: ScanResult) -> None:
    assert result.scanner_name == "keras_zip"
    assert {R.KERAS_LAMBDA_DANGEROUS, R.HDF5_EXTERNAL_LINK} <= _critical(result)
    link = next(i for i in result.issues if i.rule == R.HDF5_EXTERNAL_LINK)
    assert link.location and "model.weights.h5" in link.location
    assert result.metadata["model_names"] == ["evil_net"]


def test_zip64_archive(tf_models: Path, tmp_path: Path) -> None:
    saved = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 100  # type: ignore[misc]
    buf = io.BytesIO()
    try:
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in _evil_archive(tf_models, tmp_path):
                zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    finally:
        zipfile.ZIP64_LIMIT = saved  # type: ignore[misc]
    data = buf.getvalue()
    assert b"PK\x06\x06" in data[-200:]
    path = tmp_path / "model.keras"
    path.write_bytes(data)
    _assert_evil_found(scan(path))


def test_prepended_data(tf_models: Path, tmp_path: Path) -> None:
    """zipfile shifts every offset by the bytes before the zip, so Keras still loads it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in _evil_archive(tf_models, tmp_path):
            zf.writestr(name, data)
    data = b"\x00junk before the zip" * 5000 + buf.getvalue()
    assert b"evil_net" in _what_keras_reads(data)
    path = tmp_path / "model.keras"
    path.write_bytes(data)
    _assert_evil_found(scan(path))


def keras_two_directories(real: dict[str, bytes], evil_loaded: bool) -> bytes:
    """A .keras whose end record leads zipfile (so Keras) to one central directory and
    miniz (torch, `torch.load` of it) to another, each with its own config.json; the two
    configs are padded to one length (trailing JSON space) so the layout holds."""
    loaded = _config(real, "loaded_net", evil=evil_loaded)
    other = _config(real, "other_net", evil=not evil_loaded)
    width = max(len(loaded), len(other))
    rest = [
        ("metadata.json", real["metadata.json"]),
        ("model.weights.h5", real["model.weights.h5"]),
    ]
    return two_directories(
        [("config.json", other.ljust(width)), *rest],
        [("config.json", loaded.ljust(width)), *rest],
    )


@pytest.mark.parametrize("evil_loaded", [True, False], ids=["evil-loaded", "evil-other"])
def test_two_central_directories_primary_is_the_one_zipfile_reads(
    tf_models: Path, tmp_path: Path, evil_loaded: bool
) -> None:
    data = keras_two_directories(_members(tf_models / "legit.keras"), evil_loaded)
    assert b'"loaded_net"' in _what_keras_reads(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf, io.BytesIO(data) as f:
        seen = zf.infolist()
        directory = read_directory(f, len(data))
    assert directory.concat > 0
    assert directory.primary == len(seen) == len(directory.entries) // 2
    primary = directory.entries[: directory.primary]
    assert [(e.name, e.local_offset) for e in primary] == [
        (i.filename, i.header_offset) for i in seen
    ]
    assert all(e.local_offset < directory.concat for e in directory.entries[directory.primary :])
    path = tmp_path / "model.keras"
    path.write_bytes(data)
    result = scan(path)
    assert result.scanner_name == "keras_zip"
    assert R.KERAS_LAMBDA_DANGEROUS in _critical(result)  # whichever copy holds it
    assert result.metadata["model_names"] == ["loaded_net"]
    anomalies = [i.message for i in result.issues if i.rule == crules.ZIP_ANOMALY]
    assert any("second central directory" in m for m in anomalies)
    [differ] = [m for m in anomalies if "different contents" in m]
    loaded_index = next(e.index for e in primary if e.name == "config.json")
    assert f"loads entry #{loaded_index}," in differ


@pytest.mark.parametrize(
    "tamper",
    [{"crc": 0}, {"local_name": "config.jsoN"}],
    ids=["bad-crc", "local-name-differs"],
)
def test_config_zipfile_refuses_is_still_judged(
    tf_models: Path, tmp_path: Path, tamper: dict[str, Any]
) -> None:
    """zipfile (so Keras) refuses this config.json, `unzip` and other readers take it: a
    scanner reading with zipfile would see nothing to judge."""
    real = _members(tf_models / "legit.keras")
    members = [
        Member("metadata.json", real["metadata.json"]),
        Member("config.json", _config(real, "evil_net", evil=True), **tamper),
        Member("model.weights.h5", real["model.weights.h5"]),
    ]
    data = raw_zip(members)
    with pytest.raises(zipfile.BadZipFile):
        _what_keras_reads(data)
    path = tmp_path / "model.keras"
    path.write_bytes(data)
    result = scan(path)
    assert R.KERAS_LAMBDA_DANGEROUS in _critical(result)
    assert crules.ZIP_ANOMALY in rules_at(result, IssueSeverity.WARNING)


def test_truncated_member_data_is_malformed(tf_models: Path, tmp_path: Path) -> None:
    real = _members(tf_models / "legit.keras")
    config = _config(real, "evil_net", evil=True)
    members = [
        Member("metadata.json", real["metadata.json"]),
        Member("config.json", config, stored=config[: len(config) // 2]),
        Member("model.weights.h5", real["model.weights.h5"]),
    ]
    path = tmp_path / "model.keras"
    path.write_bytes(raw_zip(members))
    result = scan(path)
    assert result.status is FileStatus.INCONCLUSIVE
    assert MALFORMED in {i.rule for i in result.issues}


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_archive_is_never_clean(tf_models: Path, tmp_path: Path, keep: float) -> None:
    data = (tf_models / "lambda.keras").read_bytes()
    path = tmp_path / "model.keras"
    path.write_bytes(data[: int(len(data) * keep)])
    result = scan(path)
    assert result.status is not FileStatus.COMPLETE
