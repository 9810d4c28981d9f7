"""onnx's operator-schema registry, without the second of start-up its Python package costs.

The scanner only asks whether a standard domain defines an operator, and onnx answers that
from its C++ extension (`onnx.onnx_cpp2py_export.defs`). Importing it the usual way first runs
`onnx/__init__.py`, which imports numpy, protobuf and ml_dtypes: about a second of CPU on a
small machine, charged to the first ONNX file's deadline in every worker. So the extension is
loaded straight from the installed onnx package (a few milliseconds); if that ever fails (a
different packaging of onnx), `onnx.defs` is imported as usual and answers the same question.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable

HasSchema = Callable[[str, str], bool]

_has_schema: HasSchema | None = None


def has_schema_function() -> HasSchema:
    """onnx's `has_schema(op_type, domain)`; ImportError when onnx is not installed."""
    global _has_schema
    if _has_schema is None:
        _has_schema = _load()
    return _has_schema


def _load() -> HasSchema:
    loaded = sys.modules.get("onnx", ...)
    if loaded is None:
        raise ImportError("onnx is blocked in this process")
    if loaded is ...:
        direct = _extension_defs()
        if direct is not None:
            return direct
    import onnx.defs

    has: HasSchema = onnx.defs.has
    return has


def _extension_defs() -> HasSchema | None:
    spec = importlib.util.find_spec("onnx")
    if spec is None:
        raise ImportError("onnx is not installed")
    for folder in spec.submodule_search_locations or ():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            location = os.path.join(folder, "onnx_cpp2py_export" + suffix)
            if not os.path.isfile(location):
                continue
            name = "onnx.onnx_cpp2py_export"
            loader = importlib.machinery.ExtensionFileLoader(name, location)
            ext_spec = importlib.util.spec_from_file_location(name, location, loader=loader)
            if ext_spec is None:
                return None
            try:
                module = importlib.util.module_from_spec(ext_spec)
                loader.exec_module(module)
                has: HasSchema = module.defs.has_schema
            except (ImportError, AttributeError, OSError):
                return None
            # Registered under its own name: an `import onnx` later in this process (a
            # library user's, after an in-process scan) then takes this module instead of
            # initialising the extension a second time, which nanobind refuses.
            sys.modules.setdefault(name, module)
            return has
    return None
