"""TorchServe `.mar` archives: the handler the manifest names, and the members beside it.

Archives are written in torch-model-archiver's layout (`_torchserve.py`); the serialized
models are written by torch.save. Nothing is extracted or imported.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from modelaudit.findings import IssueSeverity
from tests.containers._torchserve import (
    HARMLESS_HANDLER,
    HOSTILE_HANDLER,
    MODEL_PY,
    ROUTINE_HANDLER,
    state_dict_bytes,
    write_folder,
    write_mar,
    write_tgz,
)
from tests.dataformats._dataformats_util import assert_clean, scan

RULE = "MA2016"


def _handler_findings(path: Path) -> list[tuple[IssueSeverity, str]]:
    return [(i.severity, i.message) for i in scan(path).issues if i.rule == RULE]


def test_builtin_handler_eager_model_is_quiet(tmp_path: Path) -> None:
    files: dict[str, bytes | str] = {"model.pt": state_dict_bytes(), "model.py": MODEL_PY}
    result = scan(write_mar(tmp_path / "net.mar", "image_classifier", files))
    assert_clean(result)
    assert result.metadata["torchserve"]["handler"] == "image_classifier"


def test_custom_handler_in_the_archive_is_critical(tmp_path: Path) -> None:
    files: dict[str, bytes | str] = {
        "model.pt": state_dict_bytes(),
        "model.py": MODEL_PY,
        "handler.py": HOSTILE_HANDLER,
    }
    [(severity, message)] = _handler_findings(write_mar(tmp_path / "net.mar", "handler.py", files))
    assert severity is IssueSeverity.CRITICAL
    assert "handler.py" in message and "initialize()" in message and "os.system" in message


def test_custom_handler_doing_a_handlers_work_is_a_warning(tmp_path: Path) -> None:
    """Most archives ship their own handler: unvetted code that runs at load, not an attack."""
    for name, source in (("my_handler", HARMLESS_HANDLER), ("handler", ROUTINE_HANDLER)):
        files: dict[str, bytes | str] = {"model.pt": state_dict_bytes(), f"{name}.py": source}
        path = write_mar(tmp_path / f"{name}.mar", f"{name}:entry", files, model_file=None)
        [(severity, message)] = _handler_findings(path)
        assert severity is IssueSeverity.WARNING and "entry()" in message, message


def test_harmless_module_shadowing_a_builtin_handler_is_critical(tmp_path: Path) -> None:
    files: dict[str, bytes | str] = {
        "model.pt": state_dict_bytes(),
        "image_classifier.py": HARMLESS_HANDLER,
    }
    path = write_mar(tmp_path / "net.mar", "image_classifier", files, model_file=None)
    [(severity, message)] = _handler_findings(path)
    assert severity is IssueSeverity.CRITICAL and "shadowing" in message


def test_shipped_module_shadowing_a_builtin_handler_is_critical(tmp_path: Path) -> None:
    files: dict[str, bytes | str] = {
        "model.pt": state_dict_bytes(),
        "image_classifier.py": HOSTILE_HANDLER,
    }
    path = write_mar(tmp_path / "net.mar", "image_classifier", files, model_file=None)
    [(severity, message)] = _handler_findings(path)
    assert severity is IssueSeverity.CRITICAL and "shadowing" in message


def test_handler_neither_shipped_nor_builtin_warns(tmp_path: Path) -> None:
    path = write_mar(tmp_path / "net.mar", "site_handlers", {"model.pt": state_dict_bytes()})
    [(severity, message)] = _handler_findings(path)
    assert severity is IssueSeverity.WARNING and "site_handlers" in message


def test_serialized_model_is_scanned_as_a_member(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, ("id",))

    files: dict[str, bytes | str] = {"model.pt": pickle.dumps(Payload()), "model.py": MODEL_PY}
    result = scan(write_mar(tmp_path / "net.mar", "image_classifier", files))
    critical = [i for i in result.issues if i.severity is IssueSeverity.CRITICAL]
    assert critical and all("model.pt" in (i.location or "") for i in critical)


def test_extracted_archive_folder_is_judged_from_its_manifest(tmp_path: Path) -> None:
    """torch-model-archiver's `no-archive` format: the same layout in a folder."""
    files: dict[str, bytes | str] = {"model.pt": state_dict_bytes(), "handler.py": HOSTILE_HANDLER}
    root = write_folder(tmp_path / "net", "handler.py", files)
    [(severity, message)] = _handler_findings(root / "MAR-INF" / "MANIFEST.json")
    assert severity is IssueSeverity.CRITICAL and "os.system" in message
    quiet = write_folder(tmp_path / "quiet", "image_classifier", {"model.pt": state_dict_bytes()})
    assert_clean(scan(quiet / "MAR-INF" / "MANIFEST.json"))


@pytest.mark.parametrize("prefix", ["", "net/"])
def test_tgz_archive_is_judged_from_its_manifest(tmp_path: Path, prefix: str) -> None:
    """torch-model-archiver's `tgz` format, walked as a stream: the manifest and Python files
    are kept while the walk passes them and judged at its end."""
    files: dict[str, bytes | str] = {"model.pt": state_dict_bytes(), "handler.py": HOSTILE_HANDLER}
    path = write_tgz(tmp_path / "net.tar.gz", "handler.py", files, prefix)
    [(severity, message)] = _handler_findings(path)
    assert severity is IssueSeverity.CRITICAL and "os.system" in message
    quiet = write_tgz(tmp_path / "q.tar.gz", "image_classifier", {"model.pt": b"x"}, prefix)
    assert not _handler_findings(quiet)
