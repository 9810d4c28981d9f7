"""MLflow models whose loading runs Python shipped in the model's own folder.

The models are written by MLflow's own `save_model` (`_mlflow_code_models.py`, in a child
process): a loader module passed as `code_paths`, a `PythonModel` class from `code_paths`, and a
model from code. Each MLmodel must be CRITICAL when the file does harm (INFO when it only
does a model's work, unpickling its own artifacts included) and say which file runs and how;
plain sklearn and pytorch models saved by MLflow stay quiet. Nothing here loads a model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch
from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.rules import text as rt
from tests.dataformats._dataformats_util import assert_clean, rules_of, scan


@pytest.fixture(scope="module")
def models(mlflow_saved: tuple[Path, Path]) -> Path:
    """The shipped-code models (`_mlflow_code_models.py`), written with the environment ones."""
    return mlflow_saved[1]


def _critical(path: Path) -> list[str]:
    return [i.message for i in scan(path).issues if i.severity is IssueSeverity.CRITICAL]


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ("loader", ["'shipped_loader'", "_load_pyfunc", "code/shipped_loader.py", "os.system"]),
        (
            "pythonmodel",
            ["shipped_model.ShippedModel", "load_context", "code/shipped_model.py", "os.system"],
        ),
        ("fromcode", ["model from code", "from_code.py", "os.system"]),
    ],
)
def test_shipped_code_that_loading_runs_is_critical(
    models: Path, model: str, words: list[str]
) -> None:
    result = scan(models / model / "MLmodel")
    [message] = _critical(models / model / "MLmodel")
    for word in words:
        assert word in message, message
    assert rules_of(result, IssueSeverity.CRITICAL) == {rt.MLMODEL_SHIPPED_CODE}


@pytest.mark.parametrize(
    ("model", "file", "harmless"),
    [
        ("loader", "code/shipped_loader.py", "HARMLESS_LOADER"),
        ("pythonmodel", "code/shipped_model.py", "HARMLESS_MODEL"),
        ("fromcode", "from_code.py", "HARMLESS_FROM_CODE"),
    ],
)
def test_routine_shipped_code_is_info(
    models: Path, tmp_path: Path, model: str, file: str, harmless: str
) -> None:
    """A custom pyfunc is Python by definition: one whose code does nothing a model has no
    need to is recorded (INFO, naming the file), not flagged."""
    import shutil

    from tests.dataformats import _mlflow_code_models as built

    copy = tmp_path / model
    shutil.copytree(models / model, copy)
    (copy / file).write_text(getattr(built, harmless))
    result = scan(copy / "MLmodel")
    assert not rules_of(result, IssueSeverity.WARNING)
    assert rules_of(result, IssueSeverity.INFO) == {rt.MLMODEL_SHIPPED_CODE}
    [message] = [i.message for i in result.issues if i.rule == rt.MLMODEL_SHIPPED_CODE]
    assert file in message, message


def test_plain_mlflow_models_stay_quiet(models: Path) -> None:
    for model in ("sklearn", "pytorch"):
        for path in sorted((models / model).rglob("*")):
            if path.is_file():
                assert_clean(scan(path))


def test_documented_custom_model_unpickling_its_artifacts_is_not_flagged(models: Path) -> None:
    """mlflow.pyfunc.save_model(python_model=..., artifacts=..., code_paths=...) with the
    load_context MLflow documents: the MLmodel, the code and the artifacts (each scanned as a
    pickle of its own) carry no warning."""
    folder = models / "artifacts"
    assert sorted(p.name for p in (folder / "artifacts").iterdir()) == [
        "encoder.pkl",
        "model.joblib",
    ]
    for name in (
        "MLmodel",
        "code/churn_model.py",
        "python_model.pkl",
        "artifacts/encoder.pkl",
        "artifacts/model.joblib",
    ):
        result = scan(folder / name)
        assert not rules_of(result, IssueSeverity.WARNING), (name, result.issues)
    # the hostile version of the same load_context: an inline payload instead of an artifact
    code = folder / "code" / "churn_model.py"
    original = code.read_text()
    try:
        code.write_text(
            "import base64\n"
            + original.replace(
                'joblib.load(context.artifacts["model"])',
                'pickle.loads(base64.b64decode("gASVAAAA"))',
            )
        )
        [message] = _critical(folder / "MLmodel")
        assert "pickle.loads" in message and "churn_model.py" in message, message
    finally:
        code.write_text(original)


def test_python_model_pickle_names_its_class(models: Path) -> None:
    from modelaudit.scanners.text.mlmodel_scanner import pickle_globals

    names, stopped = pickle_globals(str(models / "pythonmodel" / "python_model.pkl"))
    assert names[0] == "shipped_model.ShippedModel" and stopped is None


def test_names_in_the_mlmodel_cannot_leave_the_model_folder(models: Path, tmp_path: Path) -> None:
    """A loader module or code directory pointing outside the model is not followed."""
    (tmp_path / "outside.py").write_text("import os\nos.system('id')\n")
    model = tmp_path / "model"
    model.mkdir()
    src = (models / "loader" / "MLmodel").read_text()
    (model / "MLmodel").write_text(
        src.replace("code: code", "code: ..").replace(
            "loader_module: shipped_loader", "loader_module: outside"
        )
    )
    assert not _critical(model / "MLmodel")


def _copy(models: Path, tmp_path: Path, model: str) -> Path:
    import shutil

    copy = tmp_path / model
    shutil.copytree(models / model, copy)
    return copy


def _unknown_global_severity(path: Path) -> IssueSeverity:
    [issue] = [i for i in scan(path).issues if i.rule == "MA1010"]
    return issue.severity


def test_python_model_class_from_the_model_code_is_vouched_only_there(
    models: Path, tmp_path: Path
) -> None:
    """The pickle's class is the model's own code only when the MLmodel names that pickle as
    its python_model and `import` would run the `.py` in its code folder."""
    folder = _copy(models, tmp_path, "artifacts")
    assert _unknown_global_severity(folder / "python_model.pkl") is IssueSeverity.INFO
    config = ScanConfig(strict=True).scanner_config()
    [strict] = dispatch.scan_path(str(folder / "python_model.pkl"), config).issues
    assert strict.severity is IssueSeverity.INFO, strict
    # another pickle naming the same class is not the python_model MLflow unpickles
    (folder / "artifacts" / "other.pkl").write_bytes((folder / "python_model.pkl").read_bytes())
    assert _unknown_global_severity(folder / "artifacts" / "other.pkl") is IssueSeverity.WARNING
    # an extension module of the same name is what `import` takes: no Python was judged
    native = folder / "code" / "churn_model.cpython-311-x86_64-linux-gnu.so"
    native.write_bytes(b"\x7fELF")
    assert _unknown_global_severity(folder / "python_model.pkl") is IssueSeverity.WARNING
    native.unlink()
    mlmodel = folder / "MLmodel"
    mlmodel.write_text(mlmodel.read_text().replace("python_model: python_model.pkl", ""))
    assert _unknown_global_severity(folder / "python_model.pkl") is IssueSeverity.WARNING


def test_a_package_shadowing_the_shipped_module_is_what_is_judged(
    models: Path, tmp_path: Path
) -> None:
    """`import churn_model` takes the package `churn_model/` over `churn_model.py`: its
    `__init__.py` is the code loading runs, so that is the file judged."""
    from tests.dataformats import _mlflow_code_models as built

    folder = _copy(models, tmp_path, "artifacts")
    package = folder / "code" / "churn_model"
    package.mkdir()
    (package / "__init__.py").write_text(built.HOSTILE_MODEL.replace("ShippedModel", "ChurnModel"))
    [message] = _critical(folder / "MLmodel")
    assert "code/churn_model/__init__.py" in message and "os.system" in message, message


_HARMLESS_CLASS = (
    "import mlflow.pyfunc\n\n"
    "class M{i}(mlflow.pyfunc.PythonModel):\n"
    "    def load_context(self, context):\n"
    "        self.k = {i}\n"
)
#: A plain class (no loader base, so its own file's scan calls its methods "call" time, INFO)
#: whose __setstate__ unpickling runs.
_HELPER = "class Helper:\n    def __setstate__(self, state):\n        import os\n        os.system('id')\n"
_MLMODEL = (
    "flavors:\n  python_function:\n    code: code\n    loader_module: mlflow.pyfunc.model\n"
    "    python_model: python_model.pkl\nmlflow_version: 2.14.1\n"
)


def _rebuilt(module: str, cls: str) -> bytes:
    """Protocol-2 opcodes that rebuild `module.cls` and set its state (GLOBAL, NEWOBJ, BUILD)."""
    return b"c" + module.encode() + b"\n" + cls.encode() + b"\n)\x81}b0"


def _hand_made(tmp_path: Path, files: dict[str, str], body: bytes) -> Path:
    """An MLmodel, its code folder and a python_model pickle of `body` (never unpickled)."""
    (tmp_path / "code").mkdir()
    for name, text in files.items():
        (tmp_path / "code" / name).write_text(text)
    (tmp_path / "MLmodel").write_text(_MLMODEL)
    (tmp_path / "python_model.pkl").write_bytes(b"\x80\x02" + body + b"N.")
    return tmp_path / "MLmodel"


@pytest.mark.parametrize("where", ["same-file", "sixth-file", "201st-global", "past-4MiB"])
def test_every_class_the_python_model_pickle_rebuilds_is_judged(tmp_path: Path, where: str) -> None:
    """Unpickling rebuilds every class the python_model names, not only the PythonModel: a
    harmful class after a harmless one in the same file, in a 6th file after 5 harmless
    ones, as the 201st global or past the pickle's first 4 MiB was INFO (each file judged
    once, by its first class; 5 files judged; 200 globals and 4 MiB read)."""
    files = {"m0.py": _HARMLESS_CLASS.format(i=0), "m5.py": _HELPER}
    body = _rebuilt("m0", "M0")
    if where == "same-file":
        files = {"m0.py": _HARMLESS_CLASS.format(i=0) + _HELPER}
        body += _rebuilt("m0", "Helper")
    elif where == "sixth-file":
        for i in range(1, 5):
            files[f"m{i}.py"] = _HARMLESS_CLASS.format(i=i)
            body += _rebuilt(f"m{i}", f"M{i}")
        body += _rebuilt("m5", "Helper")
    elif where == "201st-global":
        body += b"ccollections\nOrderedDict\n0" * 200 + _rebuilt("m5", "Helper")
    else:
        pad = 5 << 20
        body += b"B" + pad.to_bytes(4, "little") + b"\0" * pad + b"0" + _rebuilt("m5", "Helper")
    mlmodel = _hand_made(tmp_path, files, body)
    result = scan(mlmodel)
    [message] = _critical(mlmodel)
    assert "Helper" in message and "os.system" in message, message
    assert result.status is FileStatus.COMPLETE


def test_many_shipped_files_are_listed_up_to_a_bound(tmp_path: Path) -> None:
    """Every file is judged; five are named one by one (the harmful first), the rest counted."""
    files = {f"m{i}.py": _HARMLESS_CLASS.format(i=i) for i in range(9)}
    files["m9.py"] = _HELPER
    body = b"".join(_rebuilt(f"m{i}", f"M{i}") for i in range(9)) + _rebuilt("m9", "Helper")
    result = scan(_hand_made(tmp_path, files, body))
    shipped = [i for i in result.issues if i.rule == rt.MLMODEL_SHIPPED_CODE]
    assert len(shipped) == 6
    assert shipped[0].severity is IssueSeverity.CRITICAL and "code/m9.py" in shipped[0].message
    assert "5 more Python file(s)" in shipped[-1].message
    assert shipped[-1].severity is IssueSeverity.INFO


def test_a_python_model_pickle_past_the_opcode_budget_is_inconclusive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pickle is walked whole for the classes it rebuilds, within an opcode budget: past
    it the MLmodel is inconclusive (MA9004), what was found before still judged."""
    from modelaudit.scanners.text import mlmodel_scanner

    monkeypatch.setattr(mlmodel_scanner, "MAX_PICKLE_OPCODES", 100)
    files = {"m0.py": _HARMLESS_CLASS.format(i=0) + _HELPER}
    body = _rebuilt("m0", "Helper") + b"ccollections\nOrderedDict\n0" * 200
    result = scan(_hand_made(tmp_path, files, body))
    assert result.status is FileStatus.INCONCLUSIVE
    assert "MA9004" in rules_of(result)
    assert rules_of(result, IssueSeverity.CRITICAL) == {rt.MLMODEL_SHIPPED_CODE}
