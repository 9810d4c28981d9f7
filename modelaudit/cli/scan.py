"""`modelaudit [scan] PATH...`: settle the settings, scan, write the reports.

One local file on Linux is scanned by a worker this process forks itself
(`engine/direct.py`): no event loop, fork server or pool. Anything else is a sweep
(`sweep.py`), whose fork server is started (`early.py`) before the async engine is imported.
The reporters are imported once the scan has started, so they load while it runs; logging
(`logs.py`) for a sweep, whose engine logs, and with -v.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from ..cluster.errors import MISSING_EXTRA
from ..config import ConfigError, ScanConfig
from ..engine.direct import OneFileRun, one_local_file
from ..engine.prefork import Forked
from ..output import OutputError, current_umask
from ..report import ScanReport
from .messages import error
from .settings import Plan, cluster_address, prepare, scan_config
from .signals import restore_handlers, saved_handlers

__all__ = ["run"]


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    saved = saved_handlers()
    worker: Forked | None = getattr(args, "worker", None)
    try:
        return _scan(args, ["modelaudit", *argv], worker)
    except KeyboardInterrupt:
        # Only reachable outside the scan itself (start-up): no report to keep.
        print("modelaudit: interrupted", file=sys.stderr)
        return 130
    finally:
        if worker is not None:
            worker.discard()  # nothing left to do once the one-file run adopted it
        server = getattr(args, "fork_server", None)
        if server is not None:  # forked by the head start, never used: not a sweep after all
            args.fork_server = None
            _phase("early").close_early(server)
        restore_handlers(saved)


def _scan(args: argparse.Namespace, argv: list[str], worker: Forked | None) -> int:
    current_umask()
    cluster = cluster_address(args)
    if cluster is not None and not _has_dask():
        print(f"modelaudit: error: {MISSING_EXTRA}", file=sys.stderr)
        return 2
    try:
        plan = prepare(args)
    except (ConfigError, OutputError) as exc:
        error(str(exc))
        return 2
    if not args.quiet:
        for notice in plan.notices:
            print(f"modelaudit: notice: {notice}", file=sys.stderr)
    config = scan_config(args, plan)
    one = None if cluster is not None else _one_file_run(args.paths, config, worker)
    if one is None:
        if worker is not None:
            worker.discard()
        return _sweep(args, argv, plan, config, early=cluster is None)
    # The worker has its job now, and scans while this process imports what reports need.
    one.start()
    try:
        if args.verbose:
            _phase("logs").configure(args)
        _phase("reports").import_writers(args)
        return _finish(args, plan, one.report(argv))
    finally:
        one.close()


def _sweep(
    args: argparse.Namespace, argv: list[str], plan: Plan, config: ScanConfig, early: bool
) -> int:
    server = None
    if early:
        # The head start's server, taken over (run() closes one nobody took), or one now.
        server = getattr(args, "fork_server", None) or _phase("early").early_fork_server(args.paths)
        args.fork_server = None
    try:
        sweep = _phase("sweep")
        _phase("logs").configure(args)
        try:
            report = sweep.sweep(args, config, argv, server)
        except sweep.ClusterError as exc:
            print(f"modelaudit: error: {exc}", file=sys.stderr)
            return 2
        return _finish(args, plan, report)
    finally:
        if server is not None:
            _phase("early").close_early(server)


def _finish(args: argparse.Namespace, plan: Plan, report: ScanReport) -> int:
    reports = _phase("reports")
    reports.settle(plan, report)
    if args.verbose:
        _phase("logs").note_unused_ignores(plan.ignores)
    code: int = reports.write_reports(args, report)
    return code


def _phase(name: str) -> Any:
    """A phase's module, imported when the run reaches it: a one-file run never loads the
    sweep's async engine, and the reporters load while the worker scans."""
    return importlib.import_module(f".{name}", __package__)


def _one_file_run(
    paths: Sequence[str], config: ScanConfig, worker: Forked | None
) -> OneFileRun | None:
    """The one-file run (engine/direct.py) when it applies, else None. `worker`: the one
    forked when the command line was parsed (`head_start.py`), if any."""
    if len(paths) != 1:
        return None
    obj = one_local_file(paths, config)
    if obj is None:
        return None
    return OneFileRun(obj, config, handle_signals=True, worker=worker)


def _has_dask() -> bool:
    try:
        import distributed  # noqa: F401  (a probe: the optional 'cluster' extra)
    except ImportError:
        return False
    return True
