"""Lazy package exports: `from modelaudit.scanners.text import JsonScanner` still works, but
importing one module of a family (`scanners.text.payloads`) no longer imports every scanner
of that family, so a worker that scans one safetensors file loads what it needs only."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any


def load_export(package: str, exports: Mapping[str, str], name: str) -> Any:
    """The module-level `__getattr__` of a family package: import the module that defines
    `name` (a key of `exports`, mapped to a relative module name) and keep the value."""
    module = exports.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, package), name)
    setattr(sys.modules[package], name, value)
    return value
