"""Path tricks are CRITICAL in every container: `../`, absolute and drive paths, the
Info-ZIP Unicode Path (0x7075) name that `unzip` extracts under, and links — any link in a
model container (torch zip, .npz, .keras, .nemo), an escaping one in a plain archive.

Containers are written by the real libraries (torch, numpy, zipfile, tarfile, py7zr) and the
hostile member added with zipfile/tarfile the way an attacker repacks a file.
"""

from __future__ import annotations

import io
import shutil
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from modelaudit.rules import containers as crules
from tests.containers._container_corpus import rules_of, scan
from tests.frameworks.test_keras_zip import keras3_config, write_keras_zip

BAD_NAMES = ["../../.bashrc", "/etc/cron.d/evil", "C:\\Windows\\evil.dll", "a/../../b"]


def _torch(path: Path) -> Path:
    import torch

    torch.save({"w": torch.zeros(3)}, path)
    return path


def _npz(path: Path) -> Path:
    np.savez(path, w=np.zeros(3, np.float32))
    return path


def _keras(path: Path) -> Path:
    return write_keras_zip(path, keras3_config([]))


def _plain(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("README.md", "weights inside")
    return path


CONTAINERS: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "torch-zip": ("model.pt", _torch),
    "npz": ("arrays.npz", _npz),
    "keras": ("model.keras", _keras),
    "zip": ("bundle.zip", _plain),
}


def _add(path: Path, info: zipfile.ZipInfo, data: bytes = b"#!/bin/sh\nid\n") -> None:
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(info, data)


def _unicode_path(header_name: str, real: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(header_name)
    raw = header_name.encode("cp437")
    body = b"\x01" + struct.pack("<L", zlib.crc32(raw)) + real.encode()
    info.extra = struct.pack("<HH", 0x7075, len(body)) + body
    return info


@pytest.mark.parametrize("kind", sorted(CONTAINERS))
@pytest.mark.parametrize("name", BAD_NAMES)
def test_escaping_member_names(tmp_path: Path, kind: str, name: str) -> None:
    filename, build = CONTAINERS[kind]
    path = build(tmp_path / filename)
    _add(path, zipfile.ZipInfo(name))
    assert crules.PATH_TRAVERSAL in rules_of(scan(path)), kind


@pytest.mark.parametrize("kind", sorted(CONTAINERS))
def test_unicode_path_extra_field_name(tmp_path: Path, kind: str) -> None:
    filename, build = CONTAINERS[kind]
    path = build(tmp_path / filename)
    _add(path, _unicode_path("notes/readme.txt", "../../../.ssh/authorized_keys"))
    result = scan(path)
    found = [i for i in result.issues if i.rule == crules.PATH_TRAVERSAL]
    assert found and "Unicode Path" in found[0].message


def test_unicode_path_with_a_wrong_crc_is_ignored_as_unzip_does(tmp_path: Path) -> None:
    path = _plain(tmp_path / "bundle.zip")
    info = _unicode_path("notes/readme.txt", "../../evil")
    info.extra = info.extra[:5] + b"\0\0\0\0" + info.extra[9:]
    _add(path, info)
    assert crules.PATH_TRAVERSAL not in rules_of(scan(path))


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = 0o120777 << 16
    return info


@pytest.mark.parametrize("kind", ["torch-zip", "npz", "keras"])
def test_any_link_in_a_model_container(tmp_path: Path, kind: str) -> None:
    filename, build = CONTAINERS[kind]
    path = build(tmp_path / filename)
    _add(path, _symlink("assets/vocab.txt"), b"vocab_real.txt")
    assert crules.LINK_ESCAPE in rules_of(scan(path))


def test_plain_zip_links_critical_only_when_escaping(tmp_path: Path) -> None:
    inside = _plain(tmp_path / "inside.zip")
    _add(inside, _symlink("docs/latest"), b"v1")
    assert crules.LINK_ESCAPE not in rules_of(scan(inside))
    outside = _plain(tmp_path / "outside.zip")
    _add(outside, _symlink("docs/latest"), b"../../../etc/passwd")
    assert crules.LINK_ESCAPE in rules_of(scan(outside))


def _tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w") as tf:
        data = b"weights"
        info = tarfile.TarInfo("model_weights.ckpt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        for m in members:
            tf.addfile(m, io.BytesIO(b"x" * m.size) if m.isfile() else None)
    return path


@pytest.mark.parametrize("name", BAD_NAMES[:2])
def test_tar_escaping_names(tmp_path: Path, name: str) -> None:
    m = tarfile.TarInfo(name)
    m.size = 1
    assert crules.PATH_TRAVERSAL in rules_of(scan(_tar(tmp_path / "m.tar", [m])))


def test_nemo_tar_with_any_link(tmp_path: Path) -> None:
    link = tarfile.TarInfo("model_config.yaml")
    link.type = tarfile.SYMTYPE
    link.linkname = "other.yaml"
    assert crules.LINK_ESCAPE in rules_of(scan(_tar(tmp_path / "m.nemo", [link])))
    assert crules.LINK_ESCAPE not in rules_of(scan(_tar(tmp_path / "m.tar", [link])))


def test_7z_escaping_name(tmp_path: Path) -> None:
    import py7zr

    src = tmp_path / "payload.sh"
    src.write_text("id\n")
    path = tmp_path / "m.7z"
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.write(src, "../../payload.sh")
    assert crules.PATH_TRAVERSAL in rules_of(scan(path))


def test_real_containers_have_no_path_findings(tmp_path: Path) -> None:
    for kind, (filename, build) in CONTAINERS.items():
        path = build(tmp_path / filename)
        rules = rules_of(scan(path))
        assert not rules & {crules.PATH_TRAVERSAL, crules.LINK_ESCAPE}, kind
    shutil.rmtree(tmp_path, ignore_errors=True)


# -- the Unicode Path as the name a member is opened and routed by (Python 3.12+ zipfile
# renames members by it, `unzip` extracts under it)

PY_PAYLOAD = b"import os\nos.system('id')\n"


def _info_zip_utf8(path: Path, name: str, data: bytes) -> None:
    """What Info-ZIP's zip writes for a non-ASCII name: the header holds the UTF-8 bytes
    without the UTF-8 flag, and a Unicode Path field repeats the name."""
    raw = name.encode()
    info = zipfile.ZipInfo(name)
    body = b"\x01" + struct.pack("<L", zlib.crc32(raw)) + raw
    info.extra = struct.pack("<HH", 0x7075, len(body)) + body
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(info, data)
    blob = bytearray(path.read_bytes())
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = blob.find(sig)
        while pos >= 0:
            if blob[pos + (30 if sig == b"PK\x03\x04" else 46) :].startswith(raw):
                flags = struct.unpack_from("<H", blob, pos + at)[0]
                struct.pack_into("<H", blob, pos + at, flags & ~0x800)
            pos = blob.find(sig, pos + 4)
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize("filename", ["bundle.zip", "model.nemo"])
def test_member_renamed_by_unicode_path_is_routed_by_that_name(
    tmp_path: Path, filename: str
) -> None:
    path = _plain(tmp_path / filename)
    _add(path, _unicode_path("notes.txt", "modeling_evil.py"), PY_PAYLOAD)
    result = scan(path)
    found = [i for i in result.issues if i.severity.value == "critical"]
    assert found and "modeling_evil.py" in (found[0].location or "")
    assert crules.ZIP_ANOMALY in rules_of(result)


def test_keras_config_renamed_by_unicode_path_is_analysed(tmp_path: Path) -> None:
    from modelaudit.rules import frameworks as R
    from tests.frameworks.test_keras_zip import _lambda3

    path = _keras(tmp_path / "model.keras")
    evil = keras3_config([_lambda3("lambda x: exec('import os; os.system(\"id\")') or x")])
    import json

    _add(path, _unicode_path("notes.txt", "config.json"), json.dumps(evil).encode())
    result = scan(path)
    assert R.KERAS_LAMBDA_DANGEROUS in {
        i.rule for i in result.issues if i.severity.value == "critical"
    }


@pytest.mark.parametrize("kind", ["keras", "zip", "npz"])
def test_info_zip_utf8_names_are_quiet(tmp_path: Path, kind: str) -> None:
    filename, build = CONTAINERS[kind]
    path = build(tmp_path / filename)
    _info_zip_utf8(path, "notes-\u00fcber.txt", b"plain notes\n")
    with zipfile.ZipFile(path) as zf:
        assert not zf.getinfo("notes-\u00fcber.txt".encode().decode("cp437")).flag_bits & 0x800
    result = scan(path)
    assert not rules_of(result) & {crules.ZIP_ANOMALY, crules.PATH_TRAVERSAL}, [
        i.message for i in result.issues
    ]
    assert not [i for i in result.issues if i.severity.value == "critical"]


@pytest.mark.parametrize("filename", ["bundle.zip", "model.nemo"])
def test_member_name_cut_at_a_nul_byte_is_routed_by_the_cut_name(
    tmp_path: Path, filename: str
) -> None:
    from tests.containers._container_corpus import Member, raw_zip

    path = tmp_path / filename
    members = [Member("model_config.yaml", b"a: 1\n"), Member("modeling_evil.py\0.txt", PY_PAYLOAD)]
    path.write_bytes(raw_zip(members))
    with zipfile.ZipFile(path) as zf:  # what zipfile (and so an extractor) names it
        assert "modeling_evil.py" in zf.namelist()
    result = scan(path)
    assert [i for i in result.issues if i.severity.value == "critical"]
    assert crules.ZIP_ANOMALY in rules_of(result)


def test_member_name_without_nul_keeps_its_extension(tmp_path: Path) -> None:
    from tests.containers._container_corpus import Member, raw_zip

    path = tmp_path / "bundle.zip"
    path.write_bytes(raw_zip([Member("notes/modeling_evil.py.txt", PY_PAYLOAD)]))
    result = scan(path)
    assert not [i for i in result.issues if i.severity.value == "critical"]
    assert crules.ZIP_ANOMALY not in rules_of(result)


def test_keras_duplicate_config_is_an_anomaly_and_both_are_read(tmp_path: Path) -> None:
    import json
    import warnings

    from modelaudit.rules import frameworks as R
    from tests.frameworks.test_keras_zip import _lambda3

    path = _keras(tmp_path / "model.keras")
    evil = keras3_config([_lambda3("lambda x: exec('import os; os.system(\"id\")') or x")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        _add(path, zipfile.ZipInfo("config.json"), json.dumps(evil).encode())
    result = scan(path)
    assert crules.ZIP_ANOMALY in rules_of(result)
    assert R.KERAS_LAMBDA_DANGEROUS in rules_of(result)


def test_a_header_in_another_code_page_is_not_a_rename() -> None:
    from modelaudit.formats.zipdir import renamed

    # Windows writes the header name in the OEM code page and the Unicode Path in UTF-8
    oem = "модель.py".encode("cp866")
    assert renamed(oem, oem.decode("cp437"), "модель.py") is None
    assert renamed(b"notes.txt", "notes.txt", "modeling.py") == "modeling.py"
    assert renamed(b"x.txt", "x.txt", "\u044b.py") == "\u044b.py"
