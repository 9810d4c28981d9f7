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
from typing import Any, Final

from ...budget import read_capped
from ...formats import Format
from ...rules.text import MLMODEL_LOADER, MLMODEL_SHIPPED_CODE, SKOPS_DANGEROUS_TYPE
from ..base import BaseScanner, IssueSeverity, ScanResult
from .mlflow_layout import inside, module_file
from .skops_schema import dangerous_dotted
from .yaml_document import vetted_document

#: How much of a `python_model` pickle is walked for the classes it names: the class of a
#: pickled PythonModel is its first global; the rest of the file is the model's state.
MAX_PICKLE_HEAD: Final = 4 * 1024 * 1024
_MAX_GLOBALS: Final = 200
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
        """CRITICAL findings for Python in the model's own folder that pyfunc loading runs;
        True when one was made (the generic loader warning would only repeat it)."""
        folder = os.path.dirname(path)
        code = pyfunc.get("code")
        code_dir = inside(folder, code) if isinstance(code, str) and code else None
        runs: list[tuple[str, str, str]] = []  # (what loading does, file, class or "")
        loader = pyfunc.get("loader_module")
        if code_dir and isinstance(loader, str):
            file = module_file(code_dir, loader)
            if file:
                what = f"imports the loader module '{loader}' and calls its _load_pyfunc"
                runs.append((what, file, ""))
        model = pyfunc.get("python_model")
        if code_dir and isinstance(model, str):
            pickled = inside(folder, model)
            for name in pickle_globals(pickled) if pickled else []:
                module, _, cls = name.rpartition(".")
                file = module_file(code_dir, module) if module else None
                if file and all(r[1] != file for r in runs):
                    runs.append(
                        (f"rebuilds the PythonModel {name} and calls its load_context", file, cls)
                    )
        source = pyfunc.get("model_code_path")
        if isinstance(source, str) and source and loader == "mlflow.pyfunc.loaders.code_model":
            file = inside(folder, os.path.basename(source.replace("\\", "/")))
            if file and os.path.isfile(file):
                runs.append(("runs the model's code file (a model from code)", file, ""))
        for what, file, cls in runs[:_MAX_LISTED]:
            shown = os.path.relpath(file, folder).replace(os.sep, "/")
            from .python_scanner import file_behaviour_summary

            does = file_behaviour_summary(file, cls)
            result.add_issue(
                f"Loading this MLflow model {what}: Python shipped with the model ({shown}) "
                "runs at load" + (f"; it {does}" if does else ""),
                severity=IssueSeverity.INFO if does == "" else IssueSeverity.CRITICAL,
                location=self.location(path),
                details={"file": shown, "loader_module": loader, "class": cls or None},
                why="mlflow.pyfunc.load_model puts the model's code directory on sys.path and "
                "imports this file: its module-level code and the loader functions or "
                "load_context it defines run with the loading user's rights.",
                rule=MLMODEL_SHIPPED_CODE,
            )
        return bool(runs)


def pickle_globals(path: str) -> list[str]:
    """Dotted names the first `MAX_PICKLE_HEAD` bytes of a pickle import (a stream that
    breaks keeps what came before)."""
    from ...formats.pickle_names import pickle_names

    try:
        data = read_capped(path, MAX_PICKLE_HEAD)
    except OSError:
        return []
    return pickle_names(data[:MAX_PICKLE_HEAD], max_names=_MAX_GLOBALS, lenient=True).names
