"""MLflow `MLmodel` files: which module loads the model, and whether code ships with it.

`mlflow.pyfunc.load_model` imports `flavors.python_function.loader_module` and calls its
`_load_pyfunc`; every flavor's loader first puts the flavor's `code` directory on `sys.path`. MLflow's
own flavors load pickles or framework files, which are scanned as files of their own; a
loader outside MLflow, or code shipped with the model, runs code we do not read.
"""

from __future__ import annotations

from typing import Any

from ...formats import Format
from ...rules.text import MLMODEL_LOADER, SKOPS_DANGEROUS_TYPE
from ..base import BaseScanner, IssueSeverity, ScanResult
from .skops_schema import dangerous_dotted
from .yaml_document import vetted_document


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
        self._loader(loader, code, path, result)
        for flavor in flavors.values():
            if isinstance(flavor, dict) and isinstance(flavor.get("skops_trusted_types"), list):
                self._skops_trusted(flavor["skops_trusted_types"], path, result)
        result.metadata["mlflow_flavors"] = list(map(str, flavors))
        if isinstance(loader, str):
            result.metadata["mlflow_loader_module"] = loader
        result.finish()
        return result

    def _skops_trusted(self, trusted: list[Any], path: str, result: ScanResult) -> None:
        """mlflow.sklearn hands these to skops.io.load as trusted: the file decides what its
        own model file may build."""
        for name in trusted[:1000]:
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
