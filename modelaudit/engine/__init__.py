"""Concurrency, limits, routing and merging: the only layer that knows about task groups,
worker processes, deadlines and sizes."""

from .runner import ProgressCallback, run_scan

__all__ = ["ProgressCallback", "run_scan"]
