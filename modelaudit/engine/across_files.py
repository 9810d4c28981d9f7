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
and none of them native code or bytecode.

`AcrossFiles` takes the reports one by one as they end: of every remote file it keeps only
what the pass reads (complete, harmless, loud), and it holds back the reports the pass may
change (a remote MLmodel naming a `python_model`, a remote report with an unknown global).
`Scanner.iter_scan` yields every other file as it ends and those once the call's files are
in, so a service iterating a sweep hears the verdict `scan` reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..findings import FileStatus, IssueSeverity
from ..report import FileReport, ScanReport
from ..rules.pickle import UNKNOWN_GLOBAL
from ..rules.text import MLMODEL_LOADER

_MLMODEL = "/MLmodel"
_LOUD: Final = (IssueSeverity.WARNING, IssueSeverity.CRITICAL)


@dataclass(frozen=True, slots=True)
class _Seen:
    """What the pass reads of a remote file it does not change."""

    complete: bool
    #: scanned whole and harmless with its classes rebuilt (a `code` folder's Python file)
    harmless: bool
    loud: bool


class AcrossFiles:
    """The pass over one call's reports, fed as each file ends (see the module docstring)."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}
        self._held: list[FileReport] = []

    def take(self, fr: FileReport) -> bool:
        """Note a finished file; True when its report may still change (held for `finish`)."""
        if not fr.remote:
            return False
        self._seen[fr.path] = _Seen(
            fr.status is FileStatus.COMPLETE,
            fr.status is FileStatus.COMPLETE and fr.metadata.get("loaded_summary") == "",
            any(i.severity in _LOUD for i in fr.issues),
        )
        if _may_change(fr):
            self._held.append(fr)
            return True
        return False

    def finish(self) -> list[FileReport]:
        """Make the verdicts; the held reports, changed where they should be."""
        models = [fr for fr in self._held if _is_model(fr)]
        if not models:
            return self._held
        # (only now: every run's report passes here, and the one-file CLI loads no scanner)
        from ..scanners.text.mlflow_layout import NameTree, mark_own_code, module_file, vouchable

        held = {fr.path: fr for fr in self._held}
        tree = NameTree(self._seen)
        for mlmodel in models:
            folder = mlmodel.path[: -len(_MLMODEL)]
            model = _relative(mlmodel.metadata.get("mlflow_python_model"))
            code = _relative(mlmodel.metadata.get("mlflow_code"))
            if code and self._code_harmless(f"{folder}/{code}/"):
                _vouch_loader_warning(mlmodel, code)
            pickled = held.get(f"{folder}/{model}") if model and code else None
            if pickled is None:
                continue
            for issue in pickled.issues:
                module = issue.details.get("module")
                if not vouchable(issue) or not isinstance(module, str):
                    continue
                file = module_file(f"{folder}/{code}", module, tree)
                if file is not None and self._seen[file].harmless:
                    mark_own_code(issue, file[len(folder) + 1 :])
        return self._held

    def _code_harmless(self, prefix: str) -> bool:
        """Every file of the code folder was scanned in this sweep, nothing in it is native or
        bytecode, and every Python file would do only a model's work with its classes rebuilt."""
        from ..scanners.text.mlflow_layout import NATIVE_SUFFIXES

        files = [(path, seen) for path, seen in self._seen.items() if path.startswith(prefix)]
        for path, seen in files:
            if path.endswith(NATIVE_SUFFIXES) or not seen.complete or seen.loud:
                return False
            if path.endswith(".py") and not seen.harmless:
                return False
        return bool(files)


def _is_model(fr: FileReport) -> bool:
    return fr.path.endswith(_MLMODEL) and "mlflow_python_model" in fr.metadata


def _may_change(fr: FileReport) -> bool:
    return _is_model(fr) or any(i.rule == UNKNOWN_GLOBAL for i in fr.issues)


def vouch_shipped_classes(report: ScanReport) -> None:
    """The pass over a whole report (a `scan` call's, once its files are in)."""
    if not any(fr.remote and _is_model(fr) for fr in report.files):
        return
    verdicts = AcrossFiles()
    for fr in report.files:
        verdicts.take(fr)
    verdicts.finish()


def _relative(name: object) -> str | None:
    """A plain relative name inside the model's folder (MLflow writes `python_model.pkl`
    and `code`): nothing that climbs out, starts at a root or changes separators."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
        return None
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return name


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
