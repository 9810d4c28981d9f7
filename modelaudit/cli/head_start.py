"""A head start for the one-file run: its worker forked as soon as the command line is
parsed (`engine/prefork.py`), so that the worker's imports run beside this process's
settings and reporting imports. Only what the command line says is used here; the scan
command decides later, with the settings, whether the run is the one-file run, and discards
the worker otherwise."""

from __future__ import annotations

import argparse
import importlib
import os
import stat

from ..engine.prefork import Forked, fork_worker, supported

__all__ = ["early_worker"]

#: What both processes use, imported once before the fork (the vocabulary); the rest of
#: each side's imports run in parallel after it.
_SHARED = (
    "modelaudit.findings",
    "modelaudit.rules",
    "modelaudit.formats",
    "modelaudit.redact",
    "modelaudit.engine.protocol",
    "modelaudit.engine.capture",
)


def early_worker(args: argparse.Namespace) -> Forked | None:
    """A forked worker when the command line names one local file and nothing that makes
    the run a sweep (a cluster, the cache, a shard, another way to start workers)."""
    paths = getattr(args, "paths", None) or []
    if len(paths) != 1 or not supported():
        return None
    if args.cluster or args.cache or args.shard:
        return None
    address = os.environ.get("DASK_SCHEDULER_ADDRESS", "").strip().lower()
    if address and address != "local":
        return None
    if os.environ.get("MODELAUDIT_WORKER_START", "auto") not in ("auto", "fork"):
        return None
    try:
        st = os.stat(paths[0])
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode) or (args.max_size and st.st_size > args.max_size):
        return None
    for name in _SHARED:
        importlib.import_module(name)
    return fork_worker(paths)
