"""Concurrency, limits, routing and merging: the only layer that knows about task groups,
worker processes, deadlines and sizes.

Submodules are imported on use: worker processes import `dispatch` without pulling in the
runner and its async stack, which keeps worker start-up short.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import ProgressCallback
    from .scanner import Scanner, run_scan

__all__ = ["ProgressCallback", "Scanner", "run_scan"]

_WHERE = {"ProgressCallback": "runner", "Scanner": "scanner", "run_scan": "scanner"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'modelaudit.engine' has no attribute {name!r}")
