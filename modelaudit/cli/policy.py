"""The project's policy, for a run that has a settings file or a baseline: the file read and
checked, the baseline loaded, and the suppressions they make. A run without either never
imports this (nor `project_config.py` and `suppress.py`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from ..project_config import ProjectConfig, load_config
from ..report import ScanReport
from ..suppress import Baseline, IgnoreEntry, apply_suppressions

__all__ = ["load_baseline", "load_project", "suppressor"]


def load_project(path: str | None) -> ProjectConfig:
    return load_config(path)


def load_baseline(path: str | None) -> Baseline | None:
    return Baseline.load(path) if path else None


def suppressor(
    ignores: Sequence[IgnoreEntry], baseline: Baseline | None
) -> Callable[[ScanReport], None]:
    """What marks a finished report's accepted findings."""
    return partial(apply_suppressions, ignores=ignores, baseline=baseline)
