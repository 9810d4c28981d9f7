"""The cluster layer's one error class."""

from __future__ import annotations

__all__ = ["MISSING_EXTRA", "ClusterError"]

MISSING_EXTRA = (
    "--cluster needs Dask distributed: install modelaudit with the 'cluster' (or 'all') extra, "
    "e.g. pip install -e '.[cluster]' in its checkout"
)


class ClusterError(Exception):
    """The cluster cannot be used at all (extra missing, scheduler unreachable, a scanner the
    nodes cannot import); the message says what to do."""
