"""Text formats that configure what a loader builds or runs (JSON, YAML, PMML, chat templates),
and the files beside models that nothing loads as code (licenses, notebooks, DVC and Git LFS
pointers, MLflow MLmodel)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._lazy import load_export

if TYPE_CHECKING:
    from .dvc_scanner import DvcScanner
    from .inert_scanner import InertFileScanner
    from .json_scanner import JsonScanner
    from .lfs_pointer_scanner import LfsPointerScanner
    from .mlmodel_scanner import MlflowModelScanner
    from .notebook_scanner import NotebookScanner
    from .pmml_scanner import PmmlScanner
    from .python_scanner import PythonScanner
    from .yaml_scanner import YamlScanner

_EXPORTS = {
    "DvcScanner": ".dvc_scanner",
    "InertFileScanner": ".inert_scanner",
    "JsonScanner": ".json_scanner",
    "LfsPointerScanner": ".lfs_pointer_scanner",
    "MlflowModelScanner": ".mlmodel_scanner",
    "NotebookScanner": ".notebook_scanner",
    "PmmlScanner": ".pmml_scanner",
    "PythonScanner": ".python_scanner",
    "YamlScanner": ".yaml_scanner",
}
__all__ = [
    "DvcScanner",
    "InertFileScanner",
    "JsonScanner",
    "LfsPointerScanner",
    "MlflowModelScanner",
    "NotebookScanner",
    "PmmlScanner",
    "PythonScanner",
    "YamlScanner",
]


def __getattr__(name: str) -> Any:
    return load_export(__name__, _EXPORTS, name)
