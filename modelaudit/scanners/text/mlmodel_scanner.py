"""MLflow `MLmodel` files: which module loads the model, and whether code ships with it.

`mlflow.pyfunc.load_model` imports `flavors.python_function.loader_module` and calls its
`_load_pyfunc`; every flavor's loader first puts the flavor's `code` directory on `sys.path`. MLflow's
own flavors load pickles or framework files, which are scanned as files of their own; a
loader outside MLflow, or code shipped with the model, runs code we do not read.

When the model sits on disk beside its `MLmodel`, the scanner looks at what loading would
import from the model's own `code` directory: a `loader_module` found there is imported and
its `_load_pyfunc` called; a `python_model` pickle naming a class found there (a `PythonModel`
saved with `code_paths`) imports that module and calls the class's `load_context`; a model
from code (`model_code_path`) runs its file. Each is Python shipped with the model that runs
at load: CRITICAL when the file does something a model has no need to (runs commands, reads
or writes files, opens connections...: read with `ast`, never imported), named in the message;
INFO when the file was read whole and does only a model's work. A custom pyfunc is Python by
definition (MLflow's documented `PythonModel` with `load_context` and `code_paths`, or a model
from code): flagging every one would flag the format, not a risk. Unpickling the artifacts the
model ships is such work (those files are scanned as models of their own); see `python_code`.
"""

from __future__ import annotations

import os
import stat
from typing import Any, Final

from ...budget import BudgetExceeded, WorkBudget, report_budget
from ...formats import Format
from ...rules.text import MLMODEL_LOADER, MLMODEL_SHIPPED_CODE, SKOPS_DANGEROUS_TYPE
from ..base import BaseScanner, IssueSeverity, ScanResult
from .mlflow_layout import inside, module_file
from .skops_schema import dangerous_dotted
from .yaml_document import vetted_document

#: Opcodes of a `python_model` pickle walked for the classes it names. The class of a
#: pickled PythonModel is its first global, but unpickling rebuilds every class its state
#: names, so the whole stream is read (linear; ~3 M opcodes a second); past this the MLmodel
#: is inconclusive (MA9004). A model's state is mostly a few large byte strings.
MAX_PICKLE_OPCODES: Final = 8_000_000
#: Distinct modules of those globals looked up in the code folder (each a directory listing).
MAX_MODULES: Final = 4096
#: Files of shipped code named one by one in findings (every one is judged).
_MAX_LISTED: Final = 5
#: Types a flavor's own `save_model` writes into `skops_trusted_types` for every model it
#: saves (mlflow.lightgbm's `_LIGHTGBM_SKLEARN_SKOPS_TRUSTED_TYPES`). Trusting them is MLflow's
#: doing, not the file's: the model file that uses them is judged node by node by the skops
#: scanner, where a Booster rebuilt from its state (ObjectNode) is data and one called with
#: a `model_file` (ReduceNode) is CRITICAL.
_FLAVOR_TRUSTED: Final[dict[str, frozenset[str]]] = {
    "lightgbm": frozenset(
        {
            "collections.OrderedDict",
            "lightgbm.basic.Booster",
            "lightgbm.sklearn.LGBMClassifier",
            "lightgbm.sklearn.LGBMRegressor",
        }
    ),
}


class MlflowModelScanner(BaseScanner):
    name = "mlmodel"
    description = "MLflow MLmodel files: flavors, loader modules, shipped code"
    formats = (Format.MLMODEL,)

    def scan(self, path: str) -> ScanResult:
        result, doc = vetted_document(self, path)
        flavors = doc.get("flavors") if isinstance(doc, dict) else None
        if not isinstance(flavors, dict):
            result.finish()
            return result
        pyfunc = flavors.get("python_function")
        pyfunc = pyfunc if isinstance(pyfunc, dict) else {}
        loader = pyfunc.get("loader_module")
        code = next(
            (f["code"] for f in flavors.values() if isinstance(f, dict) and f.get("code")), None
        )
        if not self._shipped_code(pyfunc, path, result):
            self._loader(loader, code, path, result)
        for name, flavor in flavors.items():
            if isinstance(flavor, dict) and isinstance(flavor.get("skops_trusted_types"), list):
                own = _FLAVOR_TRUSTED.get(name, frozenset()) if isinstance(name, str) else ()
                trusted = [
                    t
                    for t in flavor["skops_trusted_types"]
                    if not (isinstance(t, str) and t in own)
                ]
                self._skops_trusted(trusted, path, result)
        result.metadata["mlflow_flavors"] = list(map(str, flavors))
        if isinstance(loader, str):
            result.metadata["mlflow_loader_module"] = loader
        for key in ("python_model", "code"):
            if isinstance(pyfunc.get(key), str):
                result.metadata[f"mlflow_{key}"] = pyfunc[key]
        result.finish()
        return result

    def _skops_trusted(self, trusted: list[Any], path: str, result: ScanResult) -> None:
        """mlflow.sklearn hands these to skops.io.load as trusted: the file decides what its
        own model file may build."""
        for name in trusted:
            verdict = dangerous_dotted(name) if isinstance(name, str) else None
            if verdict is None:
                continue
            result.add_issue(
                f"MLmodel trusts the skops type {name}, which loading then builds",
                severity=IssueSeverity.CRITICAL,
                location=self.location(path),
                details={"type": name, "family": verdict.family},
                why="mlflow.sklearn.load_model passes skops_trusted_types to skops.io.load. "
                + verdict.why,
                rule=SKOPS_DANGEROUS_TYPE,
            )

    def _loader(self, loader: Any, code: Any, path: str, result: ScanResult) -> None:
        reasons = []
        if isinstance(loader, str) and loader != "mlflow" and not loader.startswith("mlflow."):
            reasons.append(f"imports the loader module '{loader}', which is not MLflow's")
        if code:
            reasons.append(f"puts Python shipped with the model ('{code}') on sys.path")
        if not reasons:
            return
        result.add_issue(
            f"Loading this MLflow model {' and '.join(reasons)}",
            severity=IssueSeverity.WARNING,
            location=self.location(path),
            details={"loader_module": loader, "code": code},
            why="mlflow.pyfunc.load_model imports the loader module and calls it; code that "
            "ships with the model is imported too, and modelaudit does not read Python files.",
            rule=MLMODEL_LOADER,
        )

    def _shipped_code(self, pyfunc: dict[str, Any], path: str, result: ScanResult) -> bool:
        """Findings for Python in the model's own folder that pyfunc loading runs, every file
        judged (CRITICAL when one does harm; at most `_MAX_LISTED` named one by one); True
        when one was made (the generic loader warning would only repeat it)."""
        folder = os.path.dirname(path)
        code = pyfunc.get("code")
        code_dir = inside(folder, code) if isinstance(code, str) and code else None
        runs: list[tuple[str, str, tuple[str, ...]]] = []  # (what loading does, file, classes)
        loader = pyfunc.get("loader_module")
        loader_file = None
        if code_dir and isinstance(loader, str):
            loader_file = module_file(code_dir, loader)
            if loader_file:
                what = f"imports the loader module '{loader}' and calls its _load_pyfunc"
                runs.append((what, loader_file, ()))
        model = pyfunc.get("python_model")
        if code_dir and isinstance(model, str):
            pickled = inside(folder, model)
            for what, file, classes in self._pickled_classes(code_dir, pickled, path, result):
                if file != loader_file:  # the loader's run judges its whole file
                    runs.append((what, file, classes))
        source = pyfunc.get("model_code_path")
        if isinstance(source, str) and source and loader == "mlflow.pyfunc.loaders.code_model":
            code_file = inside(folder, os.path.basename(source.replace("\\", "/")))
            if code_file and os.path.isfile(code_file):
                runs.append(("runs the model's code file (a model from code)", code_file, ()))
        from .python_scanner import file_behaviour_summary

        judged = []
        for what, file, classes in runs:
            shown = os.path.relpath(file, folder).replace(os.sep, "/")
            does = file_behaviour_summary(file, frozenset(classes))
            severity = IssueSeverity.INFO if does == "" else IssueSeverity.CRITICAL
            judged.append((severity, what, shown, does, classes))
        judged.sort(key=lambda j: -j[0].rank)  # harm first: the listed ones are the worst
        for severity, what, shown, does, classes in judged[:_MAX_LISTED]:
            result.add_issue(
                f"Loading this MLflow model {what}: Python shipped with the model ({shown}) "
                "runs at load" + (f"; it {does}" if does else ""),
                severity=severity,
                location=self.location(path),
                details={
                    "file": shown,
                    "loader_module": loader,
                    "class": classes[0] if classes else None,
                },
                why=_SHIPPED_WHY,
                rule=MLMODEL_SHIPPED_CODE,
            )
        rest = judged[_MAX_LISTED:]
        if rest:
            harmful = [
                shown for severity, _w, shown, _d, _c in rest if severity is IssueSeverity.CRITICAL
            ]
            result.add_issue(
                f"Loading this MLflow model runs {len(rest)} more Python file(s) shipped with "
                "the model"
                + (
                    f", {len(harmful)} of which do harm ({', '.join(harmful[:_MAX_LISTED])})"
                    if harmful
                    else ""
                ),
                severity=IssueSeverity.CRITICAL if harmful else IssueSeverity.INFO,
                location=self.location(path),
                details={"files": [j[2] for j in rest[:_MAX_LISTED]], "count": len(rest)},
                why=_SHIPPED_WHY,
                rule=MLMODEL_SHIPPED_CODE,
            )
        return bool(runs)

    def _pickled_classes(
        self, code_dir: str, pickled: str | None, path: str, result: ScanResult
    ) -> list[tuple[str, str, tuple[str, ...]]]:
        """(what loading does, file, classes) for each file of the code folder that the
        `python_model` pickle's globals import: all of them, wherever they stand in the pickle
        (the first is the PythonModel; any other is rebuilt too, its `__setstate__` or
        constructor run). A walk stopped by a budget leaves the MLmodel inconclusive."""
        names, stopped = pickle_globals(pickled) if pickled else ([], None)
        files: dict[str, dict[str, None]] = {}  # file -> its classes, in the pickle's order
        first: dict[str, str] = {}
        lookups: dict[str, str | None] = {}
        modules = WorkBudget("python_model modules looked up", MAX_MODULES)
        try:
            for name in names:
                module, _, cls = name.rpartition(".")
                if not module:
                    continue
                if module not in lookups:
                    modules.charge()
                    lookups[module] = module_file(code_dir, module)
                file = lookups[module]
                if file:
                    files.setdefault(file, {})[cls] = None
                    first.setdefault(file, name)
        except BudgetExceeded as exc:
            stopped = stopped or exc
        if stopped is not None:
            report_budget(result, self.location(path), stopped)
        out = []
        for file, classes in files.items():
            name = first[file]
            others = [f"{name.rpartition('.')[0]}.{c}" for c in list(classes)[1:]]
            more = f" (and {', '.join(others[:3])}{', ...' if len(others) > 3 else ''})"
            more = more if others else ""
            if names and name == names[0]:
                what = f"rebuilds the PythonModel {name}{more} and calls its load_context"
            else:
                what = f"rebuilds {name}{more}, which its python_model pickle names"
            out.append((what, file, tuple(classes)))
        return out


_SHIPPED_WHY: Final = (
    "mlflow.pyfunc.load_model puts the model's code directory on sys.path and imports this "
    "file: its module-level code, the loader functions or load_context it defines and the "
    "methods of the classes the python_model pickle rebuilds run with the loading user's rights."
)


def pickle_globals(path: str) -> tuple[list[str], BudgetExceeded | None]:
    """Dotted names a pickle imports, the whole stream walked (a stream that breaks keeps
    what came before), and the budget that stopped the walk, if one did."""
    from ...formats.pickle_names import pickle_names

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError:
        return [], None
    with os.fdopen(fd, "rb") as f:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return [], None
        except OSError:
            return [], None
        budget = WorkBudget("python_model pickle opcodes", MAX_PICKLE_OPCODES)
        found = pickle_names(f, lenient=True, budget=budget, keep_values=False)
    return found.names, found.stopped
