"""torch.package archives that ship their own copy of a module the pickle policy trusts.

PackageImporter imports every module `.data/extern_modules` does not list from the archive's
own sources, also the modules its pickles name: a pickle naming
`torch.nn.modules.linear.Linear` runs the archive's `torch/nn/modules/linear.py`. The archives
are written by `torch.package.PackageExporter` (sources saved as strings, never imported),
then given the shadowing sources with zipfile.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from torch.package.package_exporter import PackageExporter

from modelaudit.findings import Issue, IssueSeverity
from modelaudit.rules import containers as crules
from tests.containers._container_corpus import scan

#: Source a name check cannot judge: the class runs its state as code when BUILD sets it.
_SHADOW = b"class Linear:\n    def __setstate__(self, s):\n        getattr(__builtins__, 'ex' + 'ec')(s)\n"
#: BUILD on a torch.nn.modules.linear.Linear: the packaged class's __setstate__ runs "print(1)".
_PICKLE = b"\x80\x02ctorch.nn.modules.linear\nLinear\n)\x81X\x08\x00\x00\x00print(1)b."


def _package(path: Path, externs: list[str]) -> Path:
    with PackageExporter(str(path)) as exp:
        exp.extern(externs)
        exp.save_source_string("mymodels.net", "class Net:\n    pass\n")
        exp.save_pickle("model", "model.pkl", {"lr": 0.1})
    return path


def _shadowing(src: Path, dst: Path, externs: str | None = None, data_pkl: bool = False) -> Path:
    """`src` with its own torch/nn/modules/linear.py and a pickle naming its Linear."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        root = zin.namelist()[0].split("/", 1)[0]
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("model/model.pkl"):
                data = _PICKLE
            if externs is not None and item.filename.endswith(".data/extern_modules"):
                data = externs.encode()
            zout.writestr(item, data)
        for name in ("torch/__init__.py", "torch/nn/__init__.py", "torch/nn/modules/__init__.py"):
            zout.writestr(f"{root}/{name}", b"")
        zout.writestr(f"{root}/torch/nn/modules/linear.py", _SHADOW)
        if data_pkl:
            # torch.package ignores it; the zip is then read as a PyTorch checkpoint
            zout.writestr(f"{root}/archive/data.pkl", b"\x80\x02}q\x00.")
    return dst


def _shadow_findings(path: Path) -> list[Issue]:
    return [
        i
        for i in scan(path).issues
        if i.rule == crules.TORCH_PACKAGE_SHADOW and i.severity is IssueSeverity.WARNING
    ]


@pytest.mark.parametrize("data_pkl", [False, True], ids=["zip", "pytorch-zip"])
def test_packaged_copy_of_torch_is_reported(tmp_path: Path, data_pkl: bool) -> None:
    src = _package(tmp_path / "src.pt", ["collections"])
    found = _shadow_findings(_shadowing(src, tmp_path / "m.pt", data_pkl=data_pkl))
    assert len(found) == 1, [i.message for i in found]
    assert "'torch'" in found[0].message
    assert "torch.nn.modules.linear" in found[0].details["modules"]


def test_module_files_under_an_extern_module_are_not_reported(tmp_path: Path) -> None:
    """The importer refuses an archive with a module file inside an extern module."""
    src = _package(tmp_path / "src.pt", ["collections"])
    assert (
        _shadow_findings(_shadowing(src, tmp_path / "m.pt", externs="collections\ntorch\n")) == []
    )


def test_exporter_archives_with_their_own_modules_are_not_shadows(tmp_path: Path) -> None:
    """A package of the user's own modules, torch extern, as PackageExporter writes it."""
    path = _package(tmp_path / "m.pt", ["torch.**"])
    with zipfile.ZipFile(path) as z:
        assert any(n.endswith("mymodels/net.py") for n in z.namelist())
    assert _shadow_findings(path) == []


def test_extern_module_list_is_text_not_a_protocol_0_pickle(tmp_path: Path) -> None:
    """`collections\\ntorch\\n...` sniffs as a GLOBAL of module `ollections`: the list was
    scanned as a malformed pickle and a state-dict package ended incomplete (exit 2)."""
    from collections import OrderedDict

    import torch

    from modelaudit.findings import FileStatus

    path = tmp_path / "state.pt"
    with PackageExporter(str(path)) as exp:
        exp.extern(["collections", "torch.**"])
        exp.save_pickle("model", "sd.pkl", OrderedDict(w=torch.zeros(2)))
    with zipfile.ZipFile(path) as z:
        (listed,) = [n for n in z.namelist() if n.endswith(".data/extern_modules")]
        assert z.read(listed).startswith(b"collections\ntorch")
    result = scan(path)
    assert result.status is FileStatus.COMPLETE, result.status_reason
    assert not [i for i in result.issues if "extern_modules" in (i.location or "")]
