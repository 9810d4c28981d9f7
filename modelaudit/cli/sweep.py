"""A scan the engine runs: several targets, a folder, a remote target, `--cache`,
`--shard` or a Dask cluster. One `run_scan` call on the event loop (uvloop for sweeps), with
the progress display on a terminal."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

import anyio

from ..cluster.errors import ClusterError
from ..config import ScanConfig
from ..engine.scanner import run_scan
from ..progress import progress_reporter
from ..report import ScanReport

__all__ = ["ClusterError", "sweep"]


def sweep(
    args: argparse.Namespace, config: ScanConfig, argv: Sequence[str], early: Any
) -> ScanReport:
    """The report of the run; `ClusterError` if the cluster cannot be used at all."""
    paths = list(args.paths)
    with progress_reporter(enabled=not (args.no_progress or args.quiet)) as progress:

        async def main() -> ScanReport:
            return await run_scan(
                paths,
                config,
                progress=progress,
                command_line=list(argv),
                handle_signals=True,
                early_server=early,
            )

        return anyio.run(main, backend_options=_loop_options(paths))


def _loop_options(paths: Sequence[str]) -> dict[str, Any]:
    """uvloop for sweeps (a folder or a remote target), where its faster loop pays back its
    import; a run over named files (a pre-commit hook's) starts faster without it."""
    if all(os.path.isfile(p) for p in paths):
        return {}
    try:
        import uvloop  # noqa: F401  (a probe: the optional faster loop)
    except ImportError:
        return {}
    return {"use_uvloop": True}
