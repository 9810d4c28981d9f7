"""Concurrency, limits, routing and merging: the only layer that knows about task groups,
worker processes, deadlines and sizes.

Submodules are imported on use: worker processes import `dispatch` without pulling in the
runner and its async stack, which keeps worker start-up short.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import ProgressCallback, run_scan

__all__ = ["ProgressCallback", "run_scan"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'modelaudit.engine' has no attribute {name!r}")
