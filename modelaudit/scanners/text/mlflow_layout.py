"""Where an MLflow model keeps the Python its loading imports, read from its `MLmodel`.

Shared by the MLmodel scanner (which judges that Python as what loading runs) and the pickle
scanner: a pickled `PythonModel` saved with `code_paths` names its class by the module in the
model's `code` folder, and that import is the model's own code, judged there, not an unknown
package's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Final, Protocol

from ...findings import Issue, IssueSeverity
from ...rules import pickle as pickle_rules
from ..base import BaseScanner


def inside(folder: str, relative: str) -> str | None:
    """`folder/relative` when that stays inside `folder` (the names come from the file)."""
    if not relative or os.path.isabs(relative) or "\x00" in relative:
        return None
    joined = os.path.normpath(os.path.join(folder, relative))
    base = os.path.normpath(folder)
    if joined != base and not joined.startswith(base.rstrip(os.sep) + os.sep):
        return None
    return joined


#: Files `import` would take for a module before (or instead of) its `.py`: extension
#: modules (any platform's) and bytecode, neither of which this scan can judge as Python.
NATIVE_SUFFIXES: Final = (".so", ".pyd", ".dylib", ".pyc")


class Tree(Protocol):
    """The files `import` would look through: a folder on disk, or the names of a remote
    sweep's objects (`NameTree`)."""

    def join(self, *parts: str) -> str: ...

    def isdir(self, path: str) -> bool: ...

    def isfile(self, path: str) -> bool: ...

    def listdir(self, path: str) -> list[str]: ...


class DiskTree:
    def join(self, *parts: str) -> str:
        return os.path.join(*parts)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)

    def isfile(self, path: str) -> bool:
        return os.path.isfile(path)

    def listdir(self, path: str) -> list[str]:
        try:
            return os.listdir(path)
        except OSError:
            return []


class NameTree:
    """Folders and files made of `/`-separated object names (URIs of one sweep)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.files = set(names)
        self.children: dict[str, set[str]] = {}
        for name in self.files:
            parent, _, leaf = name.rpartition("/")
            while parent:
                self.children.setdefault(parent, set()).add(leaf)
                parent, _, leaf = parent.rpartition("/")

    def join(self, *parts: str) -> str:
        return "/".join(p.strip("/") if n else p.rstrip("/") for n, p in enumerate(parts))

    def isdir(self, path: str) -> bool:
        return path in self.children

    def isfile(self, path: str) -> bool:
        return path in self.files

    def listdir(self, path: str) -> list[str]:
        return sorted(self.children.get(path, ()))


DISK: Final = DiskTree()


def module_file(code_dir: str, module: str, tree: Tree = DISK) -> str | None:
    """The Python source `import module` runs for the module itself from the code directory
    (its `.py`, or its package's `__init__.py`), found in the import system's order: a
    package directory wins over a module of the same name, and an extension module over a
    `.py`. None when the module is not there, or when anything the import would run on the
    way (its packages' `__init__`) is not Python source this scan can judge."""
    parts = module.split(".")
    if not all(p.isidentifier() for p in parts) or not tree.isdir(code_dir):
        return None
    folder, found = code_dir, None
    for n, part in enumerate(parts):
        found = _importable(tree, folder, part)
        if found is None:
            return None
        if n < len(parts) - 1:
            if not found.endswith("__init__.py"):
                return None  # a plain module has no submodules
            folder = found[: -len("__init__.py") - 1]
    return found


def _importable(tree: Tree, folder: str, name: str) -> str | None:
    """What `import name` finds in `folder`, if it is Python source."""
    package = tree.join(folder, name)
    if tree.isdir(package):
        entries = tree.listdir(package)
        if any("__init__" + s in entries for s in NATIVE_SUFFIXES):
            return None
        if "__init__.py" in entries:
            return tree.join(package, "__init__.py")
    prefix = name + "."
    if any(e.startswith(prefix) and e.endswith(NATIVE_SUFFIXES) for e in tree.listdir(folder)):
        return None
    source = tree.join(folder, name + ".py")
    return source if tree.isfile(source) else None


def python_model_code_dir(scanner: BaseScanner, pickle_path: str) -> str | None:
    """The model's `code` folder when `pickle_path` is the `python_model` that the `MLmodel`
    beside it names (`mlflow.pyfunc.load_model` puts that folder on `sys.path` before it
    unpickles the file); None for any other pickle, or an MLmodel that is not plain YAML."""
    folder = os.path.dirname(pickle_path)
    mlmodel = os.path.join(folder, "MLmodel")
    if not os.path.isfile(mlmodel):
        return None
    from .yaml_document import vetted_document

    _result, doc = vetted_document(scanner, mlmodel)
    flavors = doc.get("flavors") if isinstance(doc, dict) else None
    pyfunc = flavors.get("python_function") if isinstance(flavors, dict) else None
    if not isinstance(pyfunc, dict):
        return None
    model, code = pyfunc.get("python_model"), pyfunc.get("code")
    if not isinstance(model, str) or not isinstance(code, str) or not code:
        return None
    if inside(folder, model) != os.path.normpath(pickle_path):
        return None
    code_dir = inside(folder, code)
    return code_dir if code_dir is not None and os.path.isdir(code_dir) else None


def vouchable(issue: Issue) -> bool:
    """An unknown-global finding (`--strict`'s CRITICAL one included) not yet placed."""
    return (
        issue.rule == pickle_rules.UNKNOWN_GLOBAL
        and (issue.severity is IssueSeverity.WARNING or bool(issue.details.get("strict")))
        and "shipped_code" not in issue.details
    )


def mark_own_code(issue: Issue, shown: str) -> None:
    """The unknown global is a class of the model's own code (`shown`, from the model's
    folder): INFO, since what that file does is judged where it is read."""
    issue.severity = IssueSeverity.INFO
    issue.message += f" (the model's own code, {shown}, judged on its own)"
    issue.details["shipped_code"] = shown
    issue.why = (
        f"mlflow.pyfunc.load_model puts the model's code folder on sys.path, so loading "
        f"imports {shown}; what that file does is judged on its own and in the MLmodel's "
        "findings."
    )
