"""Verdicts that take more than one file of a sweep, made once the sweep's files are in.

A local scan reads a file's neighbours from disk; a remote sweep spools each object on its
own, so what one object means for another is only known from their reports. The one such
verdict: an MLflow `python_model` pickle saved with `code_paths` names its class by a module
of the model's `code` folder. Scanned locally, the pickle scanner finds that module beside it
and the import is INFO (the model's own Python, judged where it is read); in a remote sweep
the same pickle said "unknown global", a WARNING, so the same model scanned from S3 or the
Hub failed CI where its local copy passed.

Here, with every report of the sweep at hand, the module is looked up among the sweep's
object names in the import system's order (`mlflow_layout.module_file` over a `NameTree`),
and the import is INFO only when that file was scanned whole and would do nothing a model
has no need to even with every one of its classes rebuilt (`loaded_summary`, which the
Python scanner records for files under a `code` folder). The MLmodel's own WARNING that
loading puts that folder on `sys.path` (MA4903, where a local scan reads the folder and says
INFO) becomes INFO when every file of the folder is in the sweep, scanned whole, harmless so,
and none of them native code or bytecode. `Scanner.iter_scan` yields each file as it ends,
before this pass: the final report is the one that has it.
"""

from __future__ import annotations

from typing import Final

from ..findings import FileStatus, IssueSeverity
from ..report import FileReport, ScanReport
from ..rules.text import MLMODEL_LOADER

_MLMODEL = "/MLmodel"
_LOUD: Final = (IssueSeverity.WARNING, IssueSeverity.CRITICAL)


def vouch_shipped_classes(report: ScanReport) -> None:
    """INFO for the unknown globals of remote `python_model` pickles that are classes of
    their model's own, harmless, scanned code (see the module docstring)."""
    models = [
        fr
        for fr in report.files
        if fr.remote and fr.path.endswith(_MLMODEL) and "mlflow_python_model" in fr.metadata
    ]
    if not models:
        return
    # (only now: every run's report passes here, and the one-file CLI loads no scanner)
    from ..scanners.text.mlflow_layout import NameTree, mark_own_code, module_file, vouchable

    by_path = {fr.path: fr for fr in report.files if fr.remote}
    tree = NameTree(by_path)
    for mlmodel in models:
        folder = mlmodel.path[: -len(_MLMODEL)]
        model = _relative(mlmodel.metadata.get("mlflow_python_model"))
        code = _relative(mlmodel.metadata.get("mlflow_code"))
        if code and _code_harmless(f"{folder}/{code}/", by_path):
            _vouch_loader_warning(mlmodel, code)
        pickled = by_path.get(f"{folder}/{model}") if model and code else None
        if pickled is None:
            continue
        for issue in pickled.issues:
            module = issue.details.get("module")
            if not vouchable(issue) or not isinstance(module, str):
                continue
            file = module_file(f"{folder}/{code}", module, tree)
            if file is not None and _harmless(by_path[file]):
                mark_own_code(issue, file[len(folder) + 1 :])


def _relative(name: object) -> str | None:
    """A plain relative name inside the model's folder (MLflow writes `python_model.pkl`
    and `code`): nothing that climbs out, starts at a root or changes separators."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
        return None
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return name


def _harmless(code: FileReport) -> bool:
    return code.status is FileStatus.COMPLETE and code.metadata.get("loaded_summary") == ""


def _code_harmless(prefix: str, by_path: dict[str, FileReport]) -> bool:
    """Every file of the code folder was scanned in this sweep, nothing in it is native or
    bytecode, and every Python file would do only a model's work with its classes rebuilt."""
    from ..scanners.text.mlflow_layout import NATIVE_SUFFIXES

    files = [fr for path, fr in by_path.items() if path.startswith(prefix)]
    for fr in files:
        if fr.path.endswith(NATIVE_SUFFIXES) or fr.status is not FileStatus.COMPLETE:
            return False
        if fr.path.endswith(".py") and not _harmless(fr):
            return False
        if any(i.severity in _LOUD for i in fr.issues):
            return False
    return bool(files)


def _vouch_loader_warning(mlmodel: FileReport, code: str) -> None:
    """The MLmodel's "puts Python shipped with the model on sys.path" WARNING, when that
    is its only reason (its loader module is MLflow's) and the folder was judged whole:
    INFO, as a local scan that reads the same files says."""
    for issue in mlmodel.issues:
        loader = issue.details.get("loader_module")
        if (
            issue.rule != MLMODEL_LOADER
            or issue.severity is not IssueSeverity.WARNING
            or not (loader is None or loader == "mlflow" or str(loader).startswith("mlflow."))
        ):
            continue
        issue.severity = IssueSeverity.INFO
        issue.message += (
            f"; every file of '{code}' was scanned in this sweep and does only a model's work"
        )
