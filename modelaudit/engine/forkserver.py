"""The fork server: a small, thread-free process that forks scan workers on request.

Starting a worker by forking a process that has already imported the worker's modules takes
a millisecond instead of an interpreter start plus imports, so replacing a crashed, killed or
recycled worker is cheap and a one-file CLI run is not dominated by start-up. The server is
started from a clean interpreter (`python -c ...`, never the caller's `__main__`), or, by the
CLI, forked from its own process before any thread exists.

Protocol on its control socket (frames as in `protocol`): ("fork",) -> ("forked", pid,
has_pidfd) with the worker's socket (and a pidfd where Linux has them) passed as file
descriptors; ("reap", pid) -> ("reaped", pid, status) once the worker is dead; ("preload",
[modules]) queues modules that later workers inherit, imported one at a time while no
request waits (a fork is never held up by more than one module's import). The server never reaps a worker
unasked, so a pid the parent holds cannot be reused while it may still signal it. EOF on the
control socket: every worker is killed and the server exits.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import socket
import sys
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .protocol import FrameReader

#: What every worker needs; imported by the server once so that forks inherit it.
CORE_MODULES = (
    "modelaudit.engine.worker",
    "modelaudit.engine.dispatch",
    "modelaudit.formats",
    # what sniffing imports only for files without magic (a sweep meets them; one file rarely)
    "modelaudit.formats.fasttext",
    "modelaudit.formats.sentencepiece",
    "modelaudit.formats.ctranslate2",
    "modelaudit.formats.word2vec",
    "modelaudit.formats.tiktoken",
    "modelaudit.formats.coreml",
    "modelaudit.formats.llama2c",
)


def supported() -> bool:
    """A fork server needs fork, fd passing over Unix sockets, and a platform where forking
    a process without threads is safe (Linux; macOS's system libraries are not fork-safe)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and hasattr(socket, "AF_UNIX")
        and hasattr(socket, "send_fds")
    )


def _recv(control: socket.socket, frames: FrameReader, ready: list[bytes]) -> Any:
    while not ready:
        try:
            data = control.recv(1 << 16)
        except OSError:
            return None
        if not data:
            return None
        ready.extend(frames.feed(data))
    return pickle.loads(ready.pop(0))


def _prepare() -> None:
    from . import sandbox

    # The CLI's terminal Ctrl-C reaches the whole process group; the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    sandbox.die_with_parent()
    # A worker must never write into the parent's report stream.
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(2, 1)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _fork_worker(control: socket.socket) -> tuple[int, socket.socket, int | None]:
    parent_end, child_end = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            control.close()
            parent_end.close()
            from .worker import serve_fd

            serve_fd(child_end.fileno())
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    child_end.close()
    return pid, parent_end, _pidfd(pid)


def serve(control: socket.socket, targets: Sequence[str] = ()) -> None:
    """Run the fork server on `control` until the parent closes it.

    `targets` (the CLI's) name what to import ahead for the first worker.
    """
    _prepare()
    from . import sandbox
    from .prefork import scanners_for
    from .protocol import FrameReader, frame
    from .worker import preload

    preload(CORE_MODULES)
    sandbox.prewarm()
    if targets:
        preload(scanners_for(targets))
    frames = FrameReader()
    ready: list[bytes] = []
    children: set[int] = set()
    #: Modules to import in the background: one at a time, only while no request waits, so
    #: a fork asked for meanwhile waits for one module at most, never for all of them.
    pending: deque[str] = deque()
    try:
        while True:
            if pending and not ready and not _readable(control):
                preload([pending.popleft()])
                continue
            message = _recv(control, frames, ready)
            if message is None:
                break
            kind = message[0]
            if kind == "fork":
                pid, parent_end, pidfd = _fork_worker(control)
                children.add(pid)
                fds = [parent_end.fileno()] + ([pidfd] if pidfd is not None else [])
                try:
                    socket.send_fds(control, [frame(("forked", pid, pidfd is not None))], fds)
                finally:
                    parent_end.close()
                    if pidfd is not None:
                        os.close(pidfd)
            elif kind == "reap":
                pid = int(message[1])
                status = _reap(pid) if pid in children else None
                children.discard(pid)
                control.sendall(frame(("reaped", pid, status)))
            elif kind == "preload":
                pending.extend(_one_by_one(message[1]))
    finally:
        for pid in children:
            _reap(pid)


def _readable(control: socket.socket) -> bool:
    """A request is waiting on the control socket (or it closed)."""
    try:
        return bool(select.select([control], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _one_by_one(modules: Sequence[str]) -> list[str]:
    """`modules` with the every-built-in-scanner name spelled out, module by module."""
    from . import worker

    out: list[str] = []
    for name in modules:
        if name == worker.BUILTIN_SCANNERS:
            from ..scanners.registry import BUILTIN

            out += [spec.module for spec in BUILTIN]
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def _reap(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return None


def main() -> None:
    """Entry point of a fork server started as a fresh interpreter (fd of its socket in argv)."""
    control = socket.socket(fileno=int(sys.argv[-1]))
    code = 0
    try:
        serve(control)
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def fork_early(targets: Sequence[str] = ()) -> tuple[socket.socket, int] | None:
    """Fork this process into a fork server now (the CLI calls it before any thread starts
    and before it imports the engine, which the server then imports in parallel).

    Returns the parent's end of the control socket and the server's pid, or None where a
    fork server is not supported.
    """
    if not supported():
        return None
    parent_end, child_end = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            parent_end.close()
            serve(child_end, targets)
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    child_end.close()
    return parent_end, pid
