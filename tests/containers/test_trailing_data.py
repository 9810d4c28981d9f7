"""Bytes after the end of a format are sniffed and scanned: after the last safetensors
tensor, after a GGUF's tensor data, after a zip's end record. Files are written by the real
libraries (safetensors, gguf, torch, numpy, zipfile) and the payload appended to them."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from modelaudit.rules import containers as crules
from tests.containers._container_corpus import criticals, payload, rules_of, scan

ELF = Path(sys.executable).resolve().read_bytes()[:8192]


def _safetensors(path: Path) -> Path:
    from safetensors.numpy import save_file

    save_file({"w": np.ones((4, 4), np.float32), "b": np.zeros(4, np.float32)}, str(path))
    return path


def _gguf(path: Path) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("w", np.ones((4, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _torch(path: Path) -> Path:
    import torch

    torch.save({"w": torch.ones(4)}, path)
    return path


def _npz(path: Path) -> Path:
    np.savez(path, w=np.ones(4))
    return path


def _zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", "{}")
    return path


BUILDERS = {
    "safetensors": ("model.safetensors", _safetensors),
    "gguf": ("model.gguf", _gguf),
    "torch-zip": ("model.pt", _torch),
    "npz": ("arrays.npz", _npz),
    "zip": ("bundle.zip", _zip),
}


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_appended_pickle_is_scanned(tmp_path: Path, kind: str) -> None:
    filename, build = BUILDERS[kind]
    path = build(tmp_path / filename)
    clean = scan(path)
    assert crules.TRAILING_PAYLOAD not in rules_of(clean)
    with path.open("ab") as f:
        f.write(payload(2))
    result = scan(path)
    assert crules.TRAILING_PAYLOAD in rules_of(result), kind
    assert any("system" in m for m in criticals(result)), kind


@pytest.mark.parametrize("kind", ["safetensors", "gguf", "zip"])
def test_appended_program_is_reported(tmp_path: Path, kind: str) -> None:
    filename, build = BUILDERS[kind]
    path = build(tmp_path / filename)
    with path.open("ab") as f:
        f.write(ELF)
    result = scan(path)
    assert crules.TRAILING_PAYLOAD in rules_of(result)
    assert any("ELF" in i.message for i in result.issues if i.rule != crules.TRAILING_PAYLOAD)


@pytest.mark.parametrize("kind", ["torch-zip", "npz", "zip"])
def test_zip_comment_is_part_of_the_zip(tmp_path: Path, kind: str) -> None:
    """The zip ends after the comment its end record announces: data after it is trailing,
    the comment itself is not (the planner and the scanners take that end from zipdir)."""
    filename, build = BUILDERS[kind]
    path = build(tmp_path / filename)
    with zipfile.ZipFile(path, "a") as zf:
        zf.comment = b"\x7fELF written as a comment " * 40
    assert crules.TRAILING_PAYLOAD not in rules_of(scan(path))
    end = path.stat().st_size
    with path.open("ab") as f:
        f.write(ELF)
    result = scan(path)
    [trailing] = [i for i in result.issues if i.rule == crules.TRAILING_PAYLOAD]
    assert trailing.details["offset"] == end


@pytest.mark.parametrize("appended", ["pickle", "zip"])
@pytest.mark.parametrize("kind", ["safetensors", "gguf"])
def test_appended_data_does_not_rename_the_file(tmp_path: Path, kind: str, appended: str) -> None:
    """The file's format and details stay its own: the appended part's result is folded in
    for its findings, and once named a safetensors file with a zip behind it 'zip'."""
    filename, build = BUILDERS[kind]
    path = build(tmp_path / filename)
    own = scan(path).metadata
    with path.open("ab") as f:
        f.write(payload(2) if appended == "pickle" else _zip(tmp_path / "tail.zip").read_bytes())
    result = scan(path)
    assert crules.TRAILING_PAYLOAD in rules_of(result)
    assert result.metadata["format"] == own["format"] == kind
    assert result.metadata["format_details"].keys() == own["format_details"].keys()
