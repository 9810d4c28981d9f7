"""Where reports go: destination checks before a scan, atomic writes after it, and colour.

A CI job that scans for an hour must not learn at the end that `--output` names a missing
folder, so destinations are checked first. Reports are written to a temporary file beside the
destination and renamed over it, so a reader never sees half a report, with the permissions
any other file the user creates would get (the umask, or the mode of the file replaced).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Mapping

__all__ = ["STDOUT", "OutputError", "check_destination", "current_umask", "use_color", "write"]

#: `--output -` writes to standard output.
STDOUT = "-"


class OutputError(Exception):
    """A report cannot be written where the user asked; the message is one line."""


_umask: int | None = None


def current_umask() -> int:
    """The process umask, read once (reading it means setting it, so do it before threads
    exist: the CLI calls this at start-up)."""
    global _umask
    if _umask is None:
        _umask = os.umask(0o022)
        os.umask(_umask)
    return _umask


def _special(path: str) -> bool:
    """An existing destination that is not a regular file (/dev/stdout, a FIFO): written in
    place, since nothing can be renamed over it."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode)


def check_destination(path: str, what: str) -> None:
    """Raise `OutputError` if a report could not be written to `path` (checked, not written)."""
    if path == STDOUT:
        return
    if os.path.isdir(path):
        raise OutputError(f"cannot write {what} {path}: it is a folder")
    if _special(path):
        return
    real = os.path.realpath(path)
    folder = os.path.dirname(real) or os.curdir
    if not os.path.isdir(folder):
        raise OutputError(f"cannot write {what} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {what} {path}: folder {folder} is not writable")


def write(path: str, data: bytes) -> None:
    """Write `data` to `path` atomically; raise `OutputError` with the reason if it fails."""
    if path == STDOUT:
        try:
            write_stdout(data)
        except OSError as exc:
            raise OutputError(f"{exc.strerror or exc}") from None
        return
    try:
        if _special(path):
            # A FIFO or device (/dev/stdout) may be non-blocking too.
            fd = os.open(path, os.O_WRONLY | getattr(os, "O_BINARY", 0))
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            return
        real = os.path.realpath(path)
        try:
            mode = stat.S_IMODE(os.stat(real).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~current_umask()
        _replace(real, data, mode)
    except OSError as exc:
        raise OutputError(f"{exc.strerror or exc}") from None


def write_stdout(data: bytes) -> None:
    """Write all of `data` to standard output, even when it is a pipe or socket left in
    non-blocking mode by whoever shares it (a buffered write would then stop at the pipe's
    capacity, 64 KiB, and the rest of the report would be lost without an error)."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        # Not a real file (a test's capture, an embedding application): it takes it all.
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    write_all(fd, data)


def write_all(fd: int, data: bytes) -> None:
    """`os.write` until every byte is out, waiting for room when the fd is non-blocking."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            _wait_writable(fd)


def _wait_writable(fd: int) -> None:
    import select

    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        poller.poll()
    else:
        select.select([], [fd], [])


def _create_beside(path: str) -> tuple[int, str]:
    """A new file (0600) with a random name in `path`'s folder, opened for writing, as
    `tempfile.mkstemp` makes one: O_EXCL, never through a link. (tempfile, with the
    random, shutil, bz2 and lzma it imports, is a few ms of every CLI run's start.)"""
    folder = os.path.dirname(path) or os.curdir
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(folder, f".modelaudit-{os.urandom(6).hex()}")
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue


def _replace(path: str, data: bytes, mode: int) -> None:
    fd, tmp = _create_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _set(environ: Mapping[str, str], name: str) -> bool:
    return bool(environ.get(name))


def use_color(stream: object, environ: Mapping[str, str] | None = None) -> bool:
    """Colour for `stream`: never with a non-empty NO_COLOR (no-color.org), always with a
    non-empty FORCE_COLOR (force-color.org), else only on a terminal that is not "dumb"."""
    env = os.environ if environ is None else environ
    if _set(env, "NO_COLOR"):
        return False
    if _set(env, "FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and env.get("TERM") != "dumb"
