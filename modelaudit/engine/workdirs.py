"""The private temp folders a run's workers write in, and the sweep of folders left behind.

A run makes one folder (0700, unpredictable name) in the temp directory and removes it when
it ends: the pool on close, the one-file run when its worker is done, and an exit handler
for a process that exits with a folder still open. A run that is killed (SIGKILL, a second
signal, the OOM killer, a crashed interpreter) cannot clean up, so each folder is flock'ed
by the process that made it for as long as it lives (the lock is the kernel's: it goes
away with the last process holding it, however that process ended), and every new run
first removes the folders of its own user whose lock it can take. A folder is made under a
name sweeps leave alone and renamed once locked, so no sweep takes it in between. Only names in this
module's format are swept: the lock is what proves them abandoned.

Neither `tempfile` nor `shutil` is imported until needed: the one-file run makes its folder
on its way to the worker, and an empty folder is removed with `os.rmdir`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
import time
from typing import Final

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, folders are only removed
    fcntl = None  # type: ignore[assignment]

PREFIX: Final = "modelaudit_workers_"
#: `L` marks a locked folder (no earlier format holds an upper-case letter here).
_MARK: Final = "L"
_NAME: Final = re.compile(rf"^{PREFIX}{_MARK}[0-9a-f]{{16}}$")
#: A folder is made under an `N` name and renamed to its `L` name once locked, so another
#: run's sweep never takes a folder in the moment between its `mkdir` and its lock.
_NEW: Final = "N"
_NEW_NAME: Final = re.compile(rf"^{PREFIX}{_NEW}[0-9a-f]{{16}}$")
#: An `N` folder older than this was left by a run that died before locking it.
_NEW_STALE: Final = 60.0
#: Where `tempfile.gettempdir` looks, in its order (the current folder last).
_TEMP_VARS: Final = ("TMPDIR", "TEMP", "TMP")
_TEMP_DIRS: Final = ("/tmp", "/var/tmp", "/usr/tmp")

#: Folder -> the descriptor holding its lock, for every folder this process has open.
_open: dict[str, int] = {}
_swept: set[str] = set()
_registered = False


def make() -> str:
    """A new locked private folder where `tempfile.mkdtemp` would make it (where it makes
    them: `tempfile.gettempdir()` once `tempfile` is imported, else its search order); the
    first call in each temp directory sweeps that directory's abandoned folders."""
    loaded = sys.modules.get("tempfile")
    if loaded is not None:
        bases = [loaded.gettempdir()]  # what a program (or a test) set `tempfile.tempdir` to
    else:
        bases = [os.environ[v] for v in _TEMP_VARS if os.environ.get(v)]
        bases += [*_TEMP_DIRS, os.getcwd()]
    for base in bases:
        base = os.path.abspath(base)
        for _ in range(3):
            token = os.urandom(8).hex()
            path = os.path.join(base, PREFIX + _MARK + token)
            fresh = os.path.join(base, PREFIX + _NEW + token) if fcntl is not None else path
            try:
                os.mkdir(fresh, 0o700)
            except FileExistsError:
                continue
            except OSError:
                break
            if not _hold(fresh, path):
                continue
            if base not in _swept:
                _swept.add(base)
                sweep(base)
            return path
    import tempfile

    return tempfile.mkdtemp(prefix=PREFIX)


def remove(path: str) -> None:
    """Delete a folder `make` returned, with everything in it, and release its lock."""
    remove_tree(path)
    fd = _open.pop(path, None)
    if fd is not None:
        os.close(fd)


def make_inside(root: str, prefix: str) -> str:
    """A new folder in `root`, a folder `make` returned: only this user can create names
    there, so a random name (without `tempfile`) is enough."""
    while True:
        path = os.path.join(root, prefix + os.urandom(6).hex())
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path


def remove_tree(path: str) -> None:
    """Delete a folder and everything in it, if it is still there (`os.rmdir` first: a
    worker empties its folder after each file)."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def sweep(base: str) -> list[str]:
    """Remove the folders in `base` that this user's runs made and whose every holder has
    exited; returns what was removed. A folder whose lock is held (a run in progress, or
    its workers still winding down) is left alone."""
    if fcntl is None:
        return []
    removed: list[str] = []
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not entry.name.startswith(PREFIX) or entry.path in _open:
            continue
        young = _NEW_NAME.match(entry.name) is not None
        if not young and not _NAME.match(entry.name):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not entry.is_dir(follow_symlinks=False) or (uid is not None and st.st_uid != uid):
                continue
        except OSError:
            continue
        if young and now - st.st_mtime < _NEW_STALE:
            continue  # another run is between making it and locking it
        fd = _lock(entry.path, os.O_NOFOLLOW)
        if fd is None:
            continue
        try:
            import shutil

            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
        finally:
            os.close(fd)
    return removed


def _hold(fresh: str, path: str) -> bool:
    """Lock the folder just made as `fresh`, then give it its name `path` (the lock stays
    with the folder); False if it could not be renamed (it is removed then)."""
    global _registered
    if fcntl is None:
        return True
    fd = _lock(fresh)
    try:
        os.rename(fresh, path)
    except OSError:
        if fd is not None:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.rmdir(fresh)
        return False
    if fd is None:
        return True
    _open[path] = fd
    if not _registered:
        _registered = True
        atexit.register(_remove_all)
    return True


def _lock(path: str, flags: int = 0) -> int | None:
    """A descriptor of folder `path` holding its exclusive lock; None if another process
    holds it (or the folder cannot be opened)."""
    assert fcntl is not None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | flags)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _remove_all() -> None:
    """At exit: the folders of runs that were never closed (an exception, `sys.exit`)."""
    for path in list(_open):
        remove(path)


def _after_fork_in_child() -> None:
    """A forked child does not own its parent's folders: it neither removes them at exit
    nor keeps their locks alive once the parent is gone."""
    for fd in _open.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _open.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
