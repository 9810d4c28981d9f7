"""Code that runs inside a scan worker process (and, for debugging, in the parent's threads).

A worker serves one parent over a byte channel: it receives batches of files, scans each
under the sandbox, streams every WARNING and CRITICAL to the parent the moment a scanner makes
it, and sends each file's result as soon as that file ends. The parent may kill it at any
moment (deadline, memory, cancellation), so nothing here relies on cleanup running.

Entry points: `main()` for a worker started as a fresh interpreter (protocol on stdin and
stdout), `serve_fd()` for one forked by the fork server (protocol on a socket).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..findings import FileStatus, Issue, ScanResult, observing
from ..formats import Format
from . import sandbox
from .capture import FileCapture, per_rule_cap
from .protocol import (
    PROFILES_KEPT,
    PROGRESS,
    FrameReader,
    encode_issue,
    encode_result,
    frame,
    result_record,
)

if TYPE_CHECKING:
    from .dispatch import Lane

_setup_done = False
#: `dispatch`, imported with the first file (it imports the scanner registry) and kept, so
#: that a sweep's files do not each run an import statement.
_dispatch: Any = None


def _import_dispatch() -> Any:
    global _dispatch
    from . import dispatch

    _dispatch = dispatch
    return dispatch


#: Read once per file (on Python 3.11 `FileStatus.COMPLETE` costs a lookup through the enum
#: metaclass's `__getattr__` hook, about a thousand instructions).
_COMPLETE = FileStatus.COMPLETE
#: Results of a batch's files travel together, sent at most this long after the last send
#: (and at the batch's end); a file's findings are still streamed the moment they are made.
FLUSH_EVERY = 0.005
#: Hooks run once per worker before its first scan (resource limits, audit hooks).
WORKER_SETUP: list[Callable[[dict[str, Any]], None]] = [sandbox.install]


def _setup(config: dict[str, Any]) -> None:
    global _setup_done
    if _setup_done:
        return
    _setup_done = True
    for hook in WORKER_SETUP:
        hook(config)


def sha256_file(path: str) -> str:
    import hashlib

    from ..formats.regular import open_regular

    digest = hashlib.sha256()
    with open_regular(path) as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def scan_file(
    path: str,
    config: dict[str, Any],
    display: str,
    explicit: bool,
    *,
    isolated: bool = False,
    deadline: float | None = None,
    stream: Callable[[Issue], None] | None = None,
    fmt: Format | None = None,
    limits_armed: bool = False,
    hash_file: bool = True,
    lane: Lane | None = None,
) -> ScanResult:
    """Scan one top-level file: routing, the findings cap, and (in a worker) the sandbox.

    `isolated` is set only in a worker process: the setup hooks (audit hook, resource limits)
    change the whole process for good, so they never run in the parent's threads.
    `limits_armed`: the caller applied the resource limits for a whole batch already.
    `hash_file`: False for a remote object's spool (sparse: its hash comes from elsewhere).
    `lane`: a `dispatch.Lane` built from `config` once for a batch of files.
    """
    capture = FileCapture(per_rule_cap(config) if lane is None else lane.cap, stream)
    with observing(capture):
        if not isolated:
            result = _guarded_scan(path, config, display, explicit, fmt, capture, hash_file, lane)
        else:
            _setup(config)
            if stream is not None:
                sandbox.on_violation = lambda v: stream(sandbox.violation_issue(display, v))
            try:
                if limits_armed:
                    sandbox.arm(display)
                    try:
                        result = _guarded_scan(
                            path, config, display, explicit, fmt, capture, hash_file, lane
                        )
                    finally:
                        refused = sandbox.disarm()
                else:
                    with sandbox.limited(config, deadline), sandbox.watching(display) as refused:
                        result = _guarded_scan(
                            path, config, display, explicit, fmt, capture, hash_file, lane
                        )
            finally:
                sandbox.on_violation = None
            if refused:
                sandbox.report_violations(result, display, refused)
    capture.finish(result, display)
    return result


def _guarded_scan(
    path: str,
    config: dict[str, Any],
    display: str,
    explicit: bool,
    fmt: Format | None,
    capture: FileCapture,
    hash_file: bool = True,
    lane: Lane | None = None,
) -> ScanResult:
    """Scan through dispatch (and hash the file under --hashes), turning what dispatch
    lets through (CPU limit, a scanner calling exit) into a result, keeping every finding
    made before it.

    Anything else escaping here would reach the parent as a broken worker.
    """
    try:
        dispatch = _dispatch or _import_dispatch()
        result: ScanResult = dispatch.scan_path(path, config, display, explicit, 0, fmt, None, lane)
        if (
            hash_file
            and (config.get("hashes") if lane is None else lane.hashes)
            and "sha256" not in result.metadata
            and result.status is not FileStatus.SKIPPED
        ):
            with contextlib.suppress(OSError):
                result.metadata["sha256"] = sha256_file(path)
        return result
    except sandbox.ResourceLimitExceeded as exc:
        result = capture.salvage()
        sandbox.report_resource_limit(result, display, str(exc))
    except (SystemExit, KeyboardInterrupt) as exc:
        result = capture.salvage()
        result.mark_error(f"the scanner tried to end the process ({type(exc).__name__})")
    result.finish()
    return result


class Channel:
    """The worker's end of the protocol: blocking reads and whole-frame writes on fds.

    `held`: messages read while a batch ran (the next batch, its profile) that wait for it
    to end; `recv` returns them first, in the order they came."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.frames = FrameReader()
        self.ready: list[bytes] = []
        self.held: deque[Any] = deque()

    def recv(self) -> Any:
        """The parent's next message (trusted), or None once the parent is gone."""
        if self.held:
            return self.held.popleft()
        while not self.ready:
            try:
                data = os.read(self.read_fd, 1 << 16)
            except OSError:
                return None
            if not data:
                return None
            self.ready.extend(self.frames.feed(data))
        return pickle.loads(self.ready.pop(0))

    @property
    def can_poll(self) -> bool:
        return os.name == "posix"

    def poll(self) -> list[Any]:
        """Messages that arrived while a batch runs, without waiting (POSIX only)."""
        import select

        if self.can_poll and not self.ready:
            try:
                readable, _, _ = select.select([self.read_fd], [], [], 0)
                if readable:
                    data = os.read(self.read_fd, 1 << 16)
                    if not data:
                        os._exit(0)
                    self.ready.extend(self.frames.feed(data))
            except OSError:
                return []
        messages = [pickle.loads(m) for m in self.ready]
        self.ready.clear()
        return messages

    def send(self, *messages: object) -> None:
        """Write the messages in one go (one system call, one wake-up of the parent)."""
        data = memoryview(b"".join(frame(m) for m in messages))
        guard = sandbox.quiet_cpu_limit() if sandbox.armed() else contextlib.nullcontext()
        with guard:
            while data:
                written = os.write(self.write_fd, data)
                data = data[written:]


class _Control:
    """The worker's ends of its progress record and journals (protocol.ProgressFile,
    protocol.JournalFile): the job it starts and when, stored into a shared mapping before
    each file; each result, appended to the batch's journal as the file ends.

    With two journals, batches take turns (the parent names the slot): while the parent
    still reads one batch's results, the next batch, already queued here, writes the other
    journal, so the first batch's results outlive the worker until the parent has them."""

    def __init__(self, progress: str, *journals: str) -> None:
        import mmap

        fd = os.open(progress, os.O_RDWR | getattr(os, "O_BINARY", 0))
        try:
            self.map = mmap.mmap(fd, PROGRESS.size)
        finally:
            os.close(fd)
        flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0)
        self.journals: list[int] = []
        try:
            for path in journals:
                self.journals.append(os.open(path, flags))
        except OSError:
            for fd in self.journals:
                os.close(fd)
            raise
        self.journal = self.journals[0]
        self.writable = True

    def mark(self, job_id: int, now: float) -> None:
        PROGRESS.pack_into(self.map, 0, job_id, now)

    def restart(self, slot: int = 0) -> None:
        """A new batch: its journal holds only its results."""
        self.journal = self.journals[slot % len(self.journals)]
        try:
            os.ftruncate(self.journal, 0)
            self.writable = True
        except OSError:
            self.writable = False

    def keep(self, record: bytes) -> bool:
        """Append a result; False if it could not be (a file size limit): send it now."""
        if self.writable:
            try:
                data = memoryview(record)
                while data:
                    data = data[os.write(self.journal, data) :]
                return True
            except OSError:
                self.writable = False
        return False


def _open_control(options: dict[str, Any]) -> _Control | None:
    progress, journal = options.get("progress"), options.get("journal")
    if not progress or not journal:
        return None
    journals = [str(journal)]
    if options.get("journal2"):
        journals.append(str(options["journal2"]))
    try:
        return _Control(str(progress), *journals)
    except (OSError, ValueError, ImportError):
        return None


def _wipe(folder: str) -> None:
    """Empty the worker's temp folder between files (the parent removes it in the end)."""
    try:
        with os.scandir(folder) as it:
            names = [e.path for e in it]
    except OSError:
        return
    for name in names:
        if os.path.isdir(name) and not os.path.islink(name):
            import shutil

            shutil.rmtree(name, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(name)


def _use_tempdir(folder: str) -> None:
    # Not imported just for this: imported later, tempfile reads TMPDIR.
    tempfile: Any = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile.tempdir = folder
    for name in ("TMPDIR", "TEMP", "TMP"):
        os.environ[name] = folder


def _adopt_sys_path(paths: Sequence[str]) -> None:
    """The parent's import path, so that its scanner modules import here too (never its
    `__main__`: a class defined there is run by the parent itself)."""
    merged = list(paths)
    merged += [p for p in sys.path if p not in merged]
    sys.path[:] = merged


#: A `preload` name meaning every built-in scanner module.
BUILTIN_SCANNERS = "builtin-scanners"


def preload(modules: Iterable[str]) -> None:
    """Import modules now (in the fork server, so that later workers inherit them)."""
    for name in modules:
        with contextlib.suppress(Exception):
            if name == BUILTIN_SCANNERS:
                from ..scanners.registry import BUILTIN

                for spec in BUILTIN:
                    spec.load()
            else:
                importlib.import_module(name)


class _Results:
    """A batch's finished results on their way to the parent: kept in the journal as each
    file ends, and sent together every `FLUSH_EVERY` (after each file without a journal)."""

    __slots__ = ("channel", "control", "done", "sent_at")

    def __init__(self, channel: Channel, control: _Control | None) -> None:
        self.channel = channel
        self.control = control
        self.done: list[bytes] = []
        self.sent_at = time.monotonic()

    def add(self, job_id: int, result: ScanResult) -> bool:
        """Queue a result; True when it was sent (time to look for parent messages too)."""
        record = result_record((job_id, encode_result(result)))
        self.done.append(record)
        kept = self.control is not None and self.control.keep(record)
        if not kept or time.monotonic() - self.sent_at >= FLUSH_EVERY:
            self.send()
            return True
        return False

    def send(self, *after: object) -> None:
        """Send what is queued, then `after` (in the same write)."""
        messages: list[object] = [("done", b"".join(self.done))] if self.done else []
        self.channel.send(*messages, *after)
        self.done = []
        self.sent_at = time.monotonic()


class _Streamer:
    """Sends one file's findings to the parent as they are made (after the results queued
    before them, so the parent sees events in order)."""

    __slots__ = ("job_id", "results")

    def __init__(self, results: _Results, job_id: int) -> None:
        self.results = results
        self.job_id = job_id

    def __call__(self, issue: Issue) -> None:
        try:
            self.results.send(("issue", self.job_id, encode_issue(issue)))
        except Exception:
            return


Job = tuple[int, str, str, bool, float, int, bool]


def _run_batch(
    channel: Channel,
    profile: tuple[dict[str, Any], Sequence[Any] | None],
    jobs: Sequence[Job],
    tmpdir: str,
    control: _Control | None,
    slot: int = 0,
) -> None:
    from ..scanners.registry import ScannerSpec
    from . import dispatch

    if not jobs:
        # Every file of a queued batch was given back before it began.
        channel.send(("idle", sandbox.resident_bytes()))
        return
    config, registry = profile
    dispatch.set_registry(registry)
    if control is not None:
        control.restart(slot)
    results = _Results(channel, control)
    longest = max(job[4] for job in jobs)
    mapped = max(job[5] for job in jobs)
    # Built-in scanners (sent as specs) write files only through Python, which the
    # sandbox's hook sees; a class of the caller's may write from native code.
    watch_tmp = registry is not None and not all(
        isinstance(entry, ScannerSpec) for entry in registry
    )
    with sandbox.limited(config, longest, mapped):
        _run_files(results, config, jobs, tmpdir, control, longest, mapped, watch_tmp)
    results.send(("idle", sandbox.resident_bytes()))


def _run_files(
    results: _Results,
    config: dict[str, Any],
    jobs: Sequence[Job],
    tmpdir: str,
    control: _Control | None,
    longest: float,
    mapped: int,
    watch_tmp: bool = True,
) -> None:
    """The files of one batch, in order, under limits armed once for the batch.

    The temp folder is looked at after a file whose scan may have written a file (the
    sandbox's hook saw it; after every file with `watch_tmp`) and at the batch's end."""
    channel = results.channel
    lane = (_dispatch or _import_dispatch()).Lane(config)
    skipped: set[int] = set()
    wiped = _mtime(tmpdir)
    # A "skip" sent while the previous batch ran may wait behind this batch's own message.
    look = True
    for position, (job_id, path, display, explicit, deadline, _size, hashed) in enumerate(jobs):
        if look and channel.can_poll:
            for message in channel.poll():
                if message[0] == "skip":
                    ahead = {j[0] for j in jobs[position:]}
                    given_back = [i for i in message[1] if i in ahead]
                    skipped.update(given_back)
                    given_back += _skip_held(channel.held, message[1])
                    results.send(("skipped", given_back))
                else:
                    channel.held.append(message)
        if job_id in skipped:
            continue
        if control is not None:
            control.mark(job_id, time.monotonic())
        sandbox.wrote = False
        result = scan_file(
            path,
            config,
            display,
            explicit,
            isolated=True,
            deadline=deadline,
            stream=_Streamer(results, job_id),
            limits_armed=True,
            hash_file=hashed,
            lane=lane,
        )
        look = results.add(job_id, result)
        if result.status is not _COMPLETE:
            # It may have run into a limit: the next file gets fresh ones.
            sandbox.rearm(config, longest, mapped)
        if tmpdir and (watch_tmp or sandbox.wrote) and _mtime(tmpdir) != wiped:
            _wipe(tmpdir)
            wiped = _mtime(tmpdir)
    if tmpdir and _mtime(tmpdir) != wiped:
        _wipe(tmpdir)


def _skip_held(held: deque[Any], ids: Iterable[int]) -> list[int]:
    """Take given-back files out of the batches queued here; the ids taken out."""
    gone = set(ids)
    taken: list[int] = []
    for n in range(len(held)):
        message = held[n]
        if message[0] != "scan" or not gone:
            continue
        kept = [job for job in message[2] if job[0] not in gone]
        if len(kept) != len(message[2]):
            taken += [job[0] for job in message[2] if job[0] in gone]
            held[n] = (*message[:2], kept, *message[3:])
    return taken


def _mtime(folder: str) -> int:
    """Changes whenever an entry is added to or removed from the folder."""
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return -1


def serve(channel: Channel) -> None:
    """The worker's loop: set up from the parent's first message, then run its jobs."""
    init = channel.recv()
    if init is None:
        return
    options: dict[str, Any] = init[1]
    _adopt_sys_path(options.get("sys_path", ()))
    tmpdir = str(options.get("tmpdir") or "")
    if tmpdir:
        _use_tempdir(tmpdir)
    control = _open_control(options)
    _setup({})
    notices = list(dict.fromkeys(sandbox.NOTICES))
    hello = ("hello", os.getpid(), notices, sandbox.has_rlimits(), channel.can_poll)
    journals = len(control.journals) if control is not None else 0
    channel.send((*hello, control is not None, journals))
    profiles: OrderedDict[int, tuple[dict[str, Any], Sequence[Any] | None]] = OrderedDict()
    while (message := channel.recv()) is not None:
        kind = message[0]
        if kind == "scan":
            profiles.move_to_end(message[1])
            slot = int(message[3]) if len(message) > 3 else 0
            _run_batch(channel, profiles[message[1]], message[2], tmpdir, control, slot)
        elif kind == "profile":
            # The parent mirrors this: least recently used first out, PROFILES_KEPT kept.
            profiles[message[1]] = (message[2], message[3])
            if len(profiles) > PROFILES_KEPT:
                profiles.popitem(last=False)
        elif kind == "preload":
            preload(message[1])
        elif kind == "skip":
            # Its batch ended already; a batch queued behind it may hold files it names.
            taken = _skip_held(channel.held, message[1])
            if taken:
                channel.send(("skipped", taken))
        elif kind == "exit":
            return


def serve_fd(fd: int) -> None:
    """A forked worker: the protocol runs on one socket."""
    serve(Channel(fd, fd))


def main() -> None:
    """A worker started as a fresh interpreter: the protocol runs on stdin and stdout, and
    anything a library prints goes to stderr instead."""
    if sys.platform == "win32":
        import msvcrt

        msvcrt.setmode(0, os.O_BINARY)  # type: ignore[attr-defined]
        msvcrt.setmode(1, os.O_BINARY)  # type: ignore[attr-defined]
    write_fd = os.dup(1)
    os.dup2(2, 1)
    if hasattr(os, "set_inheritable"):
        os.set_inheritable(write_fd, False)
    serve(Channel(0, write_fd))
