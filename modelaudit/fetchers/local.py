"""Local files and directory walks.

Every entry a walk meets ends up in the report: regular files are scanned; excluded folders,
FIFOs, devices, sockets, symlink loops and links to folders are listed as skipped with the
reason; a folder that cannot be read is an error, never a silent gap. Only regular files are
handed on, so nothing ever blocks opening a FIFO. Names are kept as the OS gives them (str
with surrogate escapes for undecodable bytes), so a file is always reopened by its own name.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Literal

from ..formats.pyc import hash_based
from ..formats.regular import kind_of, open_regular
from ..pathglob import GlobSet, posix
from .base import FetchError, ObjectRef, Source, TargetNotFound

#: Entries listed per thread hop: the first hop returns soon (a small folder is listed in
#: one), later ones list more each, since each hop costs the event loop a wake-up and the
#: two threads a hand-over of the interpreter lock (a sweep of 50,000 files made 196 hops).
_BATCH = 256
_BATCH_LATER = 2048
_DEFAULT_HINT = " (--no-default-excludes scans it)"
#: Folders a walk leaves out by default, by name.
DEFAULT_EXCLUDED_NAMES: Mapping[str, str] = {
    ".git": "version-control folder",
    ".hg": "version-control folder",
    ".svn": "version-control folder",
    ".bzr": "version-control folder",
    "_darcs": "version-control folder",
    "__pycache__": "Python bytecode cache",
}
_PYCACHE = "__pycache__"
_PYCACHE_SKIP = (
    "excluded by default: Python bytecode cache (but for hash-based .pyc files, which import "
    f"runs whatever the source's date){_DEFAULT_HINT}"
)
#: A folder holding one of these is an environment of installed packages, whatever its name.
_VENV_MARKERS: Mapping[str, str] = {
    "pyvenv.cfg": "virtual environment",
    "conda-meta": "conda environment",
}

Kind = Literal["file", "skip", "error"]
#: ("file", path, its stat), or ("skip"/"error", path, why)
Item = tuple[Kind, str, "os.stat_result | str"]


def _hash_based_bytecode(folder: str) -> Iterator[Item]:
    """The hash-based `.pyc` files of a `__pycache__` folder a walk skips by default.

    Python writes timestamp `.pyc` files, and takes one only while its source keeps the date
    and size it records: a checkout or an unzip gives the source new dates, so a shipped
    one is left for the source. A hash-based one is taken without a look at the source
    (unchecked) or when the source's hash matches the one it records, whatever bytecode
    follows (checked): shipped with a model, it is code no scan of the sources reads."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if not entry.name.endswith(".pyc") or entry.is_symlink():
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                continue
            # (a FIFO swapped in since the stat must not block the walk)
            with open_regular(entry.path) as f:
                head = f.read(8)
        except OSError:
            continue
        if hash_based(head):
            yield "file", entry.path, st


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


class _Walk:
    """A depth-first walk in name order that never follows links to folders."""

    def __init__(self, root: str, excludes: GlobSet, default_excludes: bool) -> None:
        self.root = root
        self.excludes = excludes
        self.default_excludes = default_excludes

    def _excluded(self, path: str, is_dir: bool) -> str | None:
        if not self.excludes:
            return None
        rel = posix(os.path.relpath(path, self.root))
        spellings = (rel, posix(path), posix(os.path.abspath(path)))
        pattern = self.excludes.match(spellings, is_dir=is_dir)
        return None if pattern is None else f"excluded by --exclude {pattern}"

    def _default_excluded(self, name: str) -> str | None:
        if not self.default_excludes or name not in DEFAULT_EXCLUDED_NAMES:
            return None
        if name == _PYCACHE:
            return _PYCACHE_SKIP
        return f"excluded by default: {DEFAULT_EXCLUDED_NAMES[name]}{_DEFAULT_HINT}"

    def _environment(self, entries: list[os.DirEntry[str]]) -> str | None:
        if not self.default_excludes:
            return None
        for entry in entries:
            if entry.name in _VENV_MARKERS:
                return f"excluded by default: {_VENV_MARKERS[entry.name]}{_DEFAULT_HINT}"
        return None

    def __iter__(self) -> Iterator[Item]:
        stack = [self.root]
        while stack:
            top = stack.pop()
            try:
                with os.scandir(top) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                yield "error", top, f"cannot list folder: {_why(exc)}"
                continue
            if top != self.root:
                reason = self._environment(entries)
                if reason is not None:
                    yield "skip", top, reason
                    continue
            subdirs: list[str] = []
            for entry in entries:
                item = self._entry(entry, subdirs)
                if item is not None:
                    yield item
                    if entry.name == _PYCACHE and item[0] == "skip" and item[2] == _PYCACHE_SKIP:
                        yield from _hash_based_bytecode(entry.path)
            stack.extend(reversed(subdirs))

    def _entry(self, entry: os.DirEntry[str], subdirs: list[str]) -> Item | None:
        path = entry.path
        try:
            if entry.is_dir(follow_symlinks=False):
                reason = self._default_excluded(entry.name) or self._excluded(path, True)
                if reason is not None:
                    return "skip", path, reason
                subdirs.append(path)
                return None
            if entry.is_symlink():
                return self._link(path)
            reason = self._excluded(path, False)
            if reason is not None:
                return "skip", path, reason
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            return "skip", path, "removed while the folder was being walked"
        except OSError as exc:
            return "error", path, f"cannot read: {_why(exc)}"
        if stat.S_ISREG(st.st_mode):
            return "file", path, st
        return "skip", path, f"not a regular file ({kind_of(st.st_mode)})"

    def _link(self, path: str) -> Item:
        reason = self._excluded(path, False)
        if reason is not None:
            return "skip", path, reason
        try:
            st = os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "skip", path, "symbolic link loop"
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return "skip", path, "broken symbolic link"
            return "error", path, f"cannot follow symbolic link: {_why(exc)}"
        if stat.S_ISDIR(st.st_mode):
            return "skip", path, "symbolic link to a folder (not followed)"
        if stat.S_ISREG(st.st_mode):
            return "file", path, st
        return "skip", path, f"symbolic link to a non-regular file ({kind_of(st.st_mode)})"


def _ref(kind: Kind, path: str, value: os.stat_result | str, explicit: bool = False) -> ObjectRef:
    if kind == "file":
        assert isinstance(value, os.stat_result)
        return ObjectRef(
            uri=path, size=value.st_size, local_path=path, explicit=explicit, stat=value
        )
    ref = ObjectRef(uri=path, local_path=path, explicit=explicit)
    if kind == "skip":
        ref.skipped = str(value)
    else:
        ref.error = str(value)
    return ref


class LocalSource(Source):
    def __init__(self, target: str, config: Mapping[str, Any] | None = None) -> None:
        self.target = target
        config = config or {}
        self.excludes = GlobSet(config.get("exclude") or ())
        self.default_excludes = bool(config.get("default_excludes", True))

    def _explicit(self, path: str) -> Item | None:
        """The target itself: None for a folder to walk, else what to report for it."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if os.path.lexists(path):
                raise TargetNotFound(f"{path}: broken symbolic link") from None
            raise TargetNotFound(f"{path}: no such file or directory") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise TargetNotFound(f"{path}: symbolic link loop") from None
            raise FetchError(f"{path}: cannot read: {_why(exc)}") from None
        is_dir = stat.S_ISDIR(st.st_mode)
        pattern = self.excludes.match((posix(path), posix(os.path.abspath(path))), is_dir=is_dir)
        if pattern is not None:
            return "skip", path, f"excluded by --exclude {pattern}"
        if is_dir:
            return None
        if stat.S_ISREG(st.st_mode):
            return "file", path, st
        return "skip", path, f"not a regular file ({kind_of(st.st_mode)})"

    def named(self) -> ObjectRef | None:
        """The target itself when it is not a folder: a file, or why it is skipped; None for
        a folder to walk. It stats the target (blocking): async callers use a thread."""
        item = self._explicit(self.target)
        return None if item is None else _ref(*item, explicit=True)

    async def objects(self) -> AsyncIterator[ObjectRef]:
        import anyio.to_thread

        path = self.target
        named = await _named_in_thread(self)
        if named is not None:
            yield named
            return
        walker = iter(_Walk(path, self.excludes, self.default_excludes))

        limit = _BATCH

        def next_batch() -> list[Item]:
            nonlocal limit
            batch = list(itertools.islice(walker, limit))
            limit = _BATCH_LATER
            return batch

        while batch := await anyio.to_thread.run_sync(next_batch):
            for found in batch:
                yield _ref(*found)


class _Named:
    """Targets waiting to be stat'ed, and each one's answer once the thread has run."""

    __slots__ = ("answers", "done", "sources")

    def __init__(self) -> None:
        import anyio

        self.sources: list[LocalSource] = []
        self.answers: list[tuple[ObjectRef | None, BaseException | None]] = []
        self.done = anyio.Event()

    def run(self) -> None:
        for source in self.sources:
            try:
                self.answers.append((source.named(), None))
            except Exception as exc:
                self.answers.append((None, exc))


#: The event loop's batch of targets still open for more (anyio RunVar, made on first use).
_open_batch: Any = None


async def _named_in_thread(source: LocalSource) -> ObjectRef | None:
    """`source.named()` in a worker thread (a stat can hang on a network file system, and
    the event loop must not wait for it), shared: the targets of calls started together
    (a service's concurrent one-file calls) are stat'ed in one thread hop, not one each.

    The first caller opens a batch, lets the others that are ready join it, then runs it;
    the stat itself cannot be interrupted (as a single thread call could not), so the batch
    runs to its end whatever happens to the caller that started it. That caller's wait is
    shielded from anyio's cancellation only: an asyncio `Task.cancel()` ends it at once, and
    a target the thread has not answered yet is then stat'ed by its own caller."""
    global _open_batch
    import anyio
    import anyio.lowlevel
    import anyio.to_thread

    if _open_batch is None:
        _open_batch = anyio.lowlevel.RunVar("modelaudit_local_named", default=None)
    batch: _Named | None = _open_batch.get()
    if batch is not None:
        index = len(batch.sources)
        batch.sources.append(source)
        await batch.done.wait()
    else:
        batch = _Named()
        index = 0
        batch.sources.append(source)
        _open_batch.set(batch)
        try:
            with anyio.CancelScope(shield=True):
                await anyio.lowlevel.checkpoint()
                _open_batch.set(None)
                await anyio.to_thread.run_sync(batch.run)
        finally:
            _open_batch.set(None)
            batch.done.set()
        await anyio.lowlevel.checkpoint_if_cancelled()
    if index >= len(batch.answers):
        # The caller that started the batch was cancelled by asyncio itself (`Task.cancel`,
        # `asyncio.wait_for`), which no shield stops, before its thread had answered.
        return await anyio.to_thread.run_sync(source.named)
    named, error = batch.answers[index]
    if error is not None:
        raise error
    return named
