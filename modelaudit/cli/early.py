"""The fork server, forked from this process before the sweep's async engine is imported
(and before any thread exists: Linux). The vocabulary both sides need is imported first,
once; then the server imports the worker and the scanners the targets' names suggest while
this process imports the engine, in parallel."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

from ..engine.forkserver import fork_early, supported
from ..engine.prefork import import_shared

__all__ = ["close_early", "early_fork_server"]


def early_fork_server(targets: Sequence[str]) -> Any:
    """The started server's (socket, pid), or None where workers start otherwise."""
    if os.environ.get("MODELAUDIT_WORKER_START", "auto") not in ("auto", "fork"):
        return None
    if not supported():
        return None
    import_shared()
    return fork_early(targets)


def close_early(early: Any) -> None:
    """The server exits once its socket closes; reap it if the scan never adopted it."""
    sock, pid = early
    sock.close()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
