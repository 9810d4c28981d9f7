"""A worker forked for the one-file run, as early as the CLI knows it may need one.

A pre-commit hook's run is mostly imports: this process's (settings, reporting) and the
worker's (sandbox, dispatch, the file's scanner). Forked right after the command line is
parsed, the worker imports its side while this process imports its own, on another core,
instead of after it. The worker then waits for its job (`direct.OneFileRun` sends it); a
run that turns out to be a sweep discards it. Only the standard library is imported here,
so forking costs the CLI nothing it would not import anyway.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence

__all__ = ["SHARED_MODULES", "Forked", "fork_worker", "import_shared", "scanners_for", "supported"]

#: What a forked worker (or fork server) and this process both use: imported once, before
#: the fork, so that neither imports it again. `tempfile` (shutil, bz2, lzma, random) is
#: not: a worker's folder is made with `os.mkdir`, and a worker that spools imports it.
SHARED_MODULES = (
    "modelaudit.findings",
    "modelaudit.rules",
    "modelaudit.formats",
    "modelaudit.redact",
    "modelaudit.engine.protocol",
    "modelaudit.engine.capture",
)


def import_shared() -> None:
    """Import `SHARED_MODULES` now, before a fork."""
    for name in SHARED_MODULES:
        importlib.import_module(name)


def supported() -> bool:
    """Forking a worker from the CLI's own process needs fork and a platform where forking
    a process without threads is safe (as for the fork server: Linux)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


class Forked:
    """The parent's end of a forked worker: its pid and its two pipes."""

    __slots__ = ("pid", "read_fd", "write_fd")

    def __init__(self, pid: int, read_fd: int, write_fd: int) -> None:
        self.pid = pid
        self.read_fd = read_fd
        self.write_fd = write_fd

    def discard(self) -> None:
        """The run did not need it: kill it and collect it (nothing once a run adopted it,
        which leaves pid 0 and no pipes here)."""
        for fd in (self.read_fd, self.write_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.read_fd = self.write_fd = -1
        pid, self.pid = self.pid, 0
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def scanners_for(targets: Sequence[str]) -> list[str]:
    """What to import ahead for the CLI's targets: the scanners their names suggest, or all
    of them for a directory (it will hold many kinds)."""
    from . import worker

    wanted: list[str] = []
    for target in targets:
        if "://" in target or target.startswith("models:/"):
            continue
        if os.path.isdir(target):
            return [worker.BUILTIN_SCANNERS]
        from ..scanners.registry import BUILTIN

        wanted += [spec.module for spec in BUILTIN if spec.can_handle(target)]
    return wanted


def fork_worker(targets: Sequence[str] = (), in_child: Callable[[], None] | None = None) -> Forked:
    """Fork a worker that serves the protocol on two pipes (`worker.serve`), having first
    imported what `targets` (the CLI's) will need (`scanners_for`, and dispatch) while it
    waits for its first message. `in_child` runs first in the child (closing what it must
    not keep)."""
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    pid = os.fork()
    if pid == 0:
        os.close(to_child_w)
        os.close(from_child_r)
        _child(to_child_r, from_child_w, targets, in_child)
    os.close(to_child_r)
    os.close(from_child_w)
    return Forked(pid, from_child_r, to_child_w)


def _child(
    to_child: int,
    from_child: int,
    targets: Sequence[str],
    in_child: Callable[[], None] | None,
) -> None:
    """The forked worker: what the fork server does before `serve_fd`, then the worker."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if in_child is not None:
            in_child()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        # A worker must never write into the parent's report stream.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.close(devnull)
            os.dup2(2, 1)
        from .worker import Channel, preload, serve

        if targets:
            preload(["modelaudit.engine.dispatch", *scanners_for(targets)])
        serve(Channel(to_child, from_child))
    except BaseException:
        code = 70
    finally:
        os._exit(code)
