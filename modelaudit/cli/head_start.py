"""A head start for the scan command: the process that will scan is forked as soon as the
command line is parsed, so that its imports run beside this process's settings, engine and
reporting imports instead of after them.

- One local file (what a pre-commit hook scans): the one-file run's worker
  (`engine/prefork.py`), which imports the sandbox, dispatch and the file's scanner.
- Anything else a local engine runs (a folder, several or remote targets): the sweep's
  fork server (`early.py`), which imports the worker and the scanners.

Only what the command line says is used here; the scan command decides later, with the
settings, what the run is, and discards what it does not use."""

from __future__ import annotations

import argparse
import os
import stat

from ..engine.prefork import fork_worker, import_shared, supported

__all__ = ["head_start"]


def head_start(args: argparse.Namespace) -> None:
    """Set `args.worker` (a `prefork.Forked`) or `args.fork_server` (`early`'s server), or
    neither (a cluster runs the scan, or workers start another way)."""
    args.worker = args.fork_server = None
    paths = getattr(args, "paths", None) or []
    if not paths or not supported() or args.cluster:
        return
    address = os.environ.get("DASK_SCHEDULER_ADDRESS", "").strip().lower()
    if address and address != "local":
        return
    if os.environ.get("MODELAUDIT_WORKER_START", "auto") not in ("auto", "fork"):
        return
    if _one_file(args, paths):
        import_shared()
        args.worker = fork_worker(paths)
    else:
        from .early import early_fork_server

        args.fork_server = early_fork_server(paths)


def _one_file(args: argparse.Namespace, paths: list[str]) -> bool:
    """The command line names one regular local file and nothing that makes it a sweep."""
    if len(paths) != 1 or args.cache or args.shard:
        return False
    try:
        st = os.stat(paths[0])
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(st.st_mode) and not (args.max_size and st.st_size > args.max_size)
