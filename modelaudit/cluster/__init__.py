"""Sweeps on a Dask cluster: the client side (`executor`), the node side (`node`) and what
travels between them (`payload`). Needs the `cluster` extra (Dask distributed); nothing here
is imported unless `cluster=` is set."""

from __future__ import annotations

from .errors import ClusterError

__all__ = ["ClusterError"]
