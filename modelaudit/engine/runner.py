"""One scan call on a `Scanner`: list targets, queue their files, collect every result.

Listing runs one task per target; every listed object takes a slot of the scanner's global
bound on files in flight. A local file goes straight onto the call's queue (no task per
file, so a sweep of 50,000 small files costs the parent microseconds per file); a remote one
is fetched into a spool by its own task first. Dispatcher tasks (at most two per worker) lease
a worker, take a batch of small files or one large file off the queue (and, while the pool
allows, the next batch to queue in the worker behind it), and hand back the files the worker
never started. Each file's result becomes a `FileReport` the moment it ends.

The run deadline and a signal stop the call: every finished result is kept, files being
scanned end inconclusive *with* the findings their worker streamed, and files not yet started
are listed as such.

Between listing and scanning sit `--shard` (objects of other parts are dropped) and `--cache`
(an unchanged object is reported from its last scan). Where the scanning happens is the
engine's choice: its own pool, or an `Executor` (a Dask cluster) that takes each admitted
object and hands back its `FileReport`.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio import CapacityLimiter, get_cancelled_exc_class
from anyio.abc import TaskGroup, TaskStatus

from .. import gcquiet, rules
from ..config import ScanConfig
from ..fetchers import FetchError, ObjectRef, Source, is_remote_target, resolve
from ..fetchers.local import LocalSource
from ..findings import FileStatus, Issue, IssueSeverity, ScanResult, format_location
from ..formats import extension_format
from ..report import FileReport, ScanReport
from .abandonable import run_abandonable
from .capture import rescue
from .flight import FileJob
from .outcomes import Outcome, apply_outcome, info, mark_stopped, run_timeout_reason
from .pool import PoolClosed, Profile, WorkerStartError, give_back
from .sharding import Shard, parse_shard

if TYPE_CHECKING:
    from ..scanners.base import BaseScanner
    from .acquire import SpoolFolders
    from .cache import Candidate, Identity, ResultCache

log = logging.getLogger("modelaudit")
#: Loops that handle many items without awaiting anything yield the event loop this often.
_YIELD_EVERY = 32

ProgressCallback = Callable[[FileReport], None]


class ProgressEvents(Protocol):
    """What a progress display may also hear besides each finished file (every method is
    optional): each object as it is listed (skipped entries too; a listing error is not
    one), the end of every listing (totals are known), bytes of a remote object as they
    arrive, then its download's end, and a remote object scanned before its download ended
    (`--hash-remote`: its result waits for the hash)."""

    def listed(self, uri: str, size: int | None) -> None: ...
    def listing_done(self) -> None: ...
    def fetch_progress(self, uri: str, nbytes: int, size: int | None) -> None: ...
    def fetch_done(self, uri: str) -> None: ...
    def scanned(self, uri: str) -> None: ...


#: How long listing goes on after an interruption, to name the files left unscanned.
_LISTING_GRACE = 2.0
#: A file this large always travels alone.
_ALONE = 1024 * 1024
#: Cache entries written at a time; local files confirmed by hash at a time.
_CACHE_BATCH = 512
_CONFIRM_BATCH = 256

_job_ids = itertools.count(1)
_profile_ids = itertools.count(1)


class Pool(Protocol):
    batches: bool

    def lease(self, lane: object) -> Any: ...

    def waiting_lanes(self) -> list[object]: ...

    def may_queue(self, worker: Any, lane: object) -> bool: ...


def sendable(cls: type) -> bool:
    """Can a worker process import this class by name? Not if it lives in `__main__` (a
    script, a notebook, `python -c`), inside a function, or in a module that cannot be found
    again by import."""
    import pickle

    module = sys.modules.get(cls.__module__)
    if module is None or cls.__module__ in ("__main__", "__mp_main__"):
        return False
    if "<locals>" in cls.__qualname__ or getattr(module, "__spec__", None) is None:
        return False
    try:
        return pickle.loads(pickle.dumps(cls)) is cls
    except Exception:
        return False


class Profiles:
    """The profiles of one `Scanner`: a call whose settings and registry equal an earlier
    call's reuses its profile, so its workers are not sent the same thing again."""

    #: Profiles kept. A worker keeps as many, evicting by its own use, which can differ
    #: (`pool.Worker.profiles` follows each worker's).
    SIZE = 32

    def __init__(self) -> None:
        self.known: OrderedDict[tuple[Any, ...], tuple[Profile, frozenset[type[BaseScanner]]]]
        self.known = OrderedDict()

    def get(self, config: ScanConfig) -> tuple[Profile, frozenset[type[BaseScanner]]]:
        """The profile sent to workers, and the registered scanners only the parent can run.

        Until user code reads `SCANNER_REGISTRY` (the only way to change it), the workers use
        their built-in specs and the parent never imports a scanner module. Built-in classes
        are sent as specs, so a worker still imports only the scanners its files need.
        """
        scanners = sys.modules.get("modelaudit.scanners.registry")
        classes: tuple[type[BaseScanner], ...] = ()
        if scanners is not None and scanners.registry_in_use():
            classes = tuple(scanners.materialize())
        # The config's repr names every setting (extra ones included): a fifth of the cost
        # of the sorted settings' repr, which a service's every call would pay.
        key = (repr(config), classes)
        found = self.known.get(key)
        if found is not None:
            self.known.move_to_end(key)
            return found
        settings = config.scanner_config()
        registry: tuple[Any, ...] | None = None
        parent_only: frozenset[type[BaseScanner]] = frozenset()
        if scanners is not None and classes:
            parent_only = frozenset(c for c in classes if not sendable(c))
            registry = tuple(scanners.spec_of(c) or c for c in classes if c not in parent_only)
        made = Profile(next(_profile_ids), settings, registry), parent_only
        self.known[key] = made
        if len(self.known) > self.SIZE:
            self.known.popitem(last=False)
        return made


class Offload(Protocol):
    """One call's side of an `Executor`.

    `admit` takes an object the call has listed and given a slot; the offload later hands
    its report to `call.finish_report` (which releases the slot). Whatever it still owes
    when the call is stopped is listed by `unfinished` as (report, started) pairs.
    """

    def admit(self, target: str, obj: ObjectRef, fr: FileReport) -> None: ...

    def unfinished(self) -> list[tuple[FileReport, bool]]: ...


class Executor(Protocol):
    """Scans a call's objects somewhere other than the engine's own pool (a Dask cluster).

    The Scanner starts it on entry and closes it on exit; each call `begin`s its own part.
    """

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    def begin(self, call: ScanCall) -> Offload: ...


class Engine(Protocol):
    """What a call needs from its `Scanner`."""

    pool: Pool
    slots: anyio.Semaphore
    jobs: int
    profiles: Profiles
    executor: Executor | None
    #: The calls running now, in the order they started (an ordered set).
    calls: dict[Any, None]
    opening: Opening | None


class Opening:
    """A dispatcher spawned that has not taken its batch yet. Calls of the same profile
    that queue a few small files meanwhile ride on it (its `_borrow` takes their files)
    instead of each spawning a dispatcher that would then find its files gone: 40
    concurrent one-file calls spawned 40 tasks for one batch, a sixth of their event
    loop's CPU. Once it has taken its batch, or ended without one, each rider with files
    still queued gets dispatchers of its own (`ScanCall._close_opening`)."""

    __slots__ = ("bytes", "call", "files", "riders")

    def __init__(self, call: ScanCall, limit_files: int) -> None:
        self.call = call
        ready = call.ready
        self.files = len(ready)
        self.bytes = 0
        if self.files < limit_files:
            self.bytes = sum(j.size for j in ready)
            if any(j.size >= _ALONE for j in ready):
                # (`_borrow` adds nothing behind a large file)
                self.files = limit_files
        #: each rider and the files and bytes of it counted in `files` and `bytes`
        self.riders: dict[ScanCall, tuple[int, int]] = {}


def _kind(job: FileJob) -> str:
    """A batch's files go kind by kind (by name extension; stable, so in listing order
    within a kind): a worker running one scanner's code on file after file keeps it in the
    CPU's caches, 5-10% less CPU per small file than the kinds interleaved as listed."""
    name = job.path.rpartition("/")[2]
    return name.rpartition(".")[2].lower() if "." in name else ""


class _Job(FileJob):
    """A queued file with the report it will fill."""

    obj: ObjectRef
    report: FileReport
    finished: anyio.Event | None
    #: its object is still streaming to be hashed: the outcome waits in `outcome` (`ended`:
    #: when the scan ended) until `ScanCall._settle` records it
    settling: bool
    outcome: Outcome
    ended: float


class ScanCall:
    def __init__(
        self,
        engine: Engine,
        config: ScanConfig,
        report: ScanReport,
        emit: Callable[[FileReport], None],
        observer: object = None,
    ) -> None:
        self.engine = engine
        self.observer = observer
        self.hears_listed = getattr(observer, "listed", None) is not None
        self.listings = 0
        self.config = config
        self.report = report
        self.emit = emit
        self.profile, self.parent_only = engine.profiles.get(config)
        self.shard: Shard | None = parse_shard(config.shard) if config.shard else None
        self.cache: ResultCache | None = None
        #: Reports whose result goes into the cache when they end, with their identity.
        self.identities: dict[int, Identity] = {}
        #: Local files waiting to be hashed against their cache entry.
        self.confirming: deque[tuple[Candidate, ObjectRef, FileReport, str]] = deque()
        self.confirmer_running = False
        self.flushing = False
        self.offload: Offload | None = None
        self._fetch: CapacityLimiter | None = None
        #: Reused folders for this call's spools (engine/acquire.py), made on the first fetch.
        self.folders: SpoolFolders | None = None
        self._parent_cpu: CapacityLimiter | None = None
        self.cap = int(config.max_findings_per_rule or 0)
        self.ready: deque[_Job] = deque()
        #: Queued or scanning, not finished; each holds a slot.
        self.pending: dict[int, _Job] = {}
        #: Remote objects being fetched (their FileReport); each holds a slot.
        self.fetching: dict[int, FileReport] = {}
        #: Files scanned whose stream is still being hashed (by id of their report); each
        #: holds a slot.
        self.settling: dict[int, _Job] = {}
        #: Listed objects waiting for a slot; reported as not started on interruption.
        self.unstarted: dict[int, ObjectRef] = {}
        self.dispatchers = 0
        #: Dispatchers at most: two per worker (one sending a batch while one waits).
        self.dispatcher_limit = 2 * engine.jobs
        self.busy = 0
        #: Targets still being listed; with `pending` and `fetching` empty the call is done.
        self.listing = 0
        self.drained = anyio.Event()
        self.tg: TaskGroup | None = None
        #: Why the run stopped early (a signal); None while running or on the run deadline.
        self.stop_reason: str | None = None
        self.scope: anyio.CancelScope | None = None

    @property
    def fetch(self) -> CapacityLimiter:
        """Downloads of this call at a time (made on first use: most calls fetch nothing)."""
        if self._fetch is None:
            self._fetch = CapacityLimiter(max(1, self.config.fetch_jobs))
        return self._fetch

    @property
    def parent_cpu(self) -> CapacityLimiter:
        """Parent-only scanners of this call at a time."""
        if self._parent_cpu is None:
            self._parent_cpu = CapacityLimiter(max(1, self.engine.jobs))
        return self._parent_cpu

    # -- running -----------------------------------------------------------------------

    async def run(self, targets: Sequence[str | Source], handle_signals: bool = False) -> None:
        """Scan every target; on the run deadline or `stop()`, report what is unfinished."""
        self.engine.calls[self] = None
        try:
            with gcquiet.quiet():
                await self._run(targets, handle_signals)
        finally:
            # (a dispatcher cancelled before it ran never closed its opening)
            self._close_opening()
            self.engine.calls.pop(self, None)

    async def _run(self, targets: Sequence[str | Source], handle_signals: bool) -> None:
        timeout = self.config.timeout
        deadline = anyio.current_time() + timeout if timeout and timeout > 0 else math.inf
        self.scope = anyio.CancelScope(deadline=deadline)
        if self.config.cache_dir:
            await self._open_cache(self.config.cache_dir)
        if self.engine.executor is not None:
            self.offload = self.engine.executor.begin(self)
        self.listings = len(targets)
        if not targets:
            self._notify("listing_done")
        try:
            if handle_signals and threading.current_thread() is threading.main_thread():
                async with anyio.create_task_group() as watcher:
                    await watcher.start(self._stop_on_signals)
                    await self._scan_all(targets)
                    watcher.cancel_scope.cancel()
            else:
                # No watcher to cancel: a cancel formats the current task, a cost every
                # call of a service would pay.
                await self._scan_all(targets)
            owing = self.offload is not None and bool(self.offload.unfinished())
            unfinished = self.unstarted or self.pending or self.settling
            if self.scope.cancelled_caught or unfinished or owing:
                self.report.interrupted = self.stop_reason or run_timeout_reason(timeout)
                self._record_unfinished()
        finally:
            owed = len(self.offload.unfinished()) if self.offload is not None else 0
            for _ in range(len(self.pending) + len(self.fetching) + len(self.settling) + owed):
                self.engine.slots.release()
            self.pending.clear()
            self.fetching.clear()
            self.settling.clear()
            await self._close_cache()
            folders, self.folders = self.folders, None
            if folders is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(folders.close)

    async def _scan_all(self, targets: Sequence[str | Source]) -> None:
        assert self.scope is not None
        with self.scope:
            async with anyio.create_task_group() as tg:
                self.tg = tg
                self.listing = len(targets)
                if len(targets) == 1:
                    # One target (a service's usual call) is listed here, without a task.
                    await self._scan_target(targets[0])
                else:
                    for target in targets:
                        tg.start_soon(self._scan_target, target)
                # Files of this call may be scanned in another call's batch: the call ends
                # when every file has, not when its own tasks have.
                self._check_drained()
                await self.drained.wait()

    def _check_drained(self) -> None:
        if not self.listing and not self.pending and not self.fetching and not self.settling:
            self.drained.set()

    def _notify(self, event: str, *args: object) -> None:
        """Tell the progress display (see `ProgressEvents`); its failures are not ours."""
        method = getattr(self.observer, event, None)
        if method is None:
            return
        try:
            method(*args)
        except Exception:
            log.debug("progress event %s failed", event, exc_info=True)

    def _listing_ended(self) -> None:
        self.listings -= 1
        if self.listings == 0:
            self._notify("listing_done")

    def stop(self, reason: str) -> None:
        """End the call as its deadline would, giving `reason` for every unfinished file."""
        self.stop_reason = reason
        if self.scope is not None:
            self.scope.cancel()

    async def _stop_on_signals(self, *, task_status: TaskStatus[None]) -> None:
        """First SIGINT/SIGTERM: stop scanning and report what is done. Second: exit at once."""
        import signal

        signalled = False
        try:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                task_status.started()
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if self.stop_reason is not None:
                        sys.stderr.write(f"modelaudit: {name} again, exiting without a report\n")
                        sys.stderr.flush()
                        os._exit(128 + signum)
                    signalled = True
                    self.stop(f"Interrupted by {name} before the scan finished")
        finally:
            # (the receiver gave SIGINT back to KeyboardInterrupt, which a weakref callback
            # swallows; a second signal must still exit while the report is assembled)
            from .report_signals import finish_on_signals

            finish_on_signals(already_signalled=signalled)

    # -- listing -----------------------------------------------------------------------

    async def _open_cache(self, directory: str) -> None:
        registry = self.profile.registry
        if registry is None:
            scanners = sys.modules.get("modelaudit.scanners.registry")
            registry = tuple(scanners.routing_entries()) if scanners is not None else None

        # Imported only for --cache: sqlite3 and hmac are a start-up cost every other run
        # would pay for nothing.
        from .cache import CacheError, ResultCache, engine_fingerprint

        def open_cache() -> ResultCache:
            return ResultCache.open(directory, engine_fingerprint(self.config, registry))

        try:
            self.cache = await anyio.to_thread.run_sync(open_cache)
        except CacheError as exc:
            log.warning("%s; scanning without the cache", exc)

    async def _close_cache(self) -> None:
        cache, self.cache = self.cache, None
        if cache is None:
            return
        with anyio.CancelScope(shield=True):
            entries = cache.take()
            await anyio.to_thread.run_sync(cache.write, entries)
            await anyio.to_thread.run_sync(cache.close)

    async def _flush_cache(self) -> None:
        try:
            while self.cache is not None and self.cache.pending >= _CACHE_BATCH:
                await anyio.to_thread.run_sync(self.cache.write, self.cache.take())
        finally:
            self.flushing = False

    async def _scan_target(self, target: str | Source) -> None:
        try:
            await self._list_target(target)
        finally:
            self.listing -= 1
            self._check_drained()

    async def _list_target(self, target: str | Source) -> None:
        """List one target and scan its objects; the source stays open until they are done."""
        try:
            if isinstance(target, Source):
                source = target
                target = source.target
            elif is_remote_target(target):
                # The first remote target imports its fetcher and SDK (aiobotocore, the
                # Hub client): hundreds of milliseconds the event loop must not wait for.
                config = self.profile.config
                if self.listings == 1:
                    # a source may take what it lists from the object's first read
                    # (fetchers/http.py), bounded by the call having no other target
                    config = {**config, "one_target": True}
                source = await anyio.to_thread.run_sync(resolve, target, config)
            else:
                source = resolve(target, self.profile.config)
        except FetchError as exc:
            assert isinstance(target, str)
            self.report.target_errors.append({"target": target, "error": str(exc)})
            self._listing_ended()
            return
        except Exception as exc:
            assert isinstance(target, str)
            log.debug("resolving %s failed", target, exc_info=True)
            error = f"cannot open target: {type(exc).__name__}: {exc}"
            self.report.target_errors.append({"target": target, "error": error})
            self._listing_ended()
            return
        listing = source.objects()
        try:
            if isinstance(source, LocalSource) and self.tg is not None:
                # Its objects start no task of their own and it holds nothing open: no
                # task group of its own (a service's one-file call pays for each one).
                await self._list_objects(listing, self.tg, target)
            else:
                async with anyio.create_task_group() as tg:
                    await self._list_objects(listing, tg, target)
        finally:
            if type(source).aclose is not Source.aclose:
                # (a shielded scope per call, for sources that hold nothing, as local ones)
                with anyio.CancelScope(shield=True):
                    await source.aclose()

    async def _list_objects(
        self, listing: AsyncIterator[ObjectRef], tg: TaskGroup, target: str
    ) -> None:
        admitted = 0
        slots = self.engine.slots
        try:
            async for obj in listing:
                if self.shard is not None and not self.shard.holds(obj.uri):
                    await _discard(obj)
                    continue
                if self.hears_listed and obj.error is None:
                    self._notify("listed", obj.uri, obj.size)
                admitted += 1
                if admitted % _YIELD_EVERY == 0:
                    # A listing batch arrives whole: let other tasks run between files.
                    await anyio.lowlevel.checkpoint()
                try:
                    slots.acquire_nowait()
                except anyio.WouldBlock:
                    self.unstarted[id(obj)] = obj
                    await slots.acquire()
                    del self.unstarted[id(obj)]
                if self._admit(obj, tg, target) and obj.reader is not None:
                    await _discard(obj)
        except FetchError as exc:
            self.report.target_errors.append({"target": target, "error": str(exc)})
        except get_cancelled_exc_class():
            await self._list_rest(listing)
            raise
        self._listing_ended()

    async def _list_rest(self, listing: AsyncIterator[ObjectRef]) -> None:
        """After an interruption, keep listing briefly so unscanned files are named."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(_LISTING_GRACE):
            try:
                async for obj in listing:
                    self.unstarted[id(obj)] = obj
            except (FetchError, RuntimeError, StopAsyncIteration):
                return

    def _admit(self, obj: ObjectRef, tg: TaskGroup, target: str) -> bool:
        """A listed object with its slot: record what the listing could not hand over,
        reject it by size, answer it from the cache, or scan it (here, or through the
        engine's executor). True when the object will not be read (the caller releases
        what its reader holds)."""
        if obj.error is not None:
            self.report.target_errors.append({"target": obj.uri, "error": obj.error})
            self.engine.slots.release()
            return True
        fr = FileReport(obj.uri, size=obj.size, remote=obj.local_path is None)
        if obj.skipped is not None:
            fr.status = FileStatus.SKIPPED
            fr.status_reason = obj.skipped
            self._done(fr)
            return True
        limit = self.config.max_file_size
        if limit and obj.size is not None and obj.size > limit:
            self._too_large(fr, obj.size, limit)
            self._done(fr)
            return True
        if self.cache is not None:
            from .cache import Candidate, identify

            identity = identify(obj)
            found = self.cache.lookup(identity) if identity is not None else None
            if isinstance(found, dict):
                self.cache.replay(found, fr, self.config.hashes)
                self._done(fr)
                return True
            if identity is not None:
                self.identities[id(fr)] = identity
            if isinstance(found, Candidate):
                self.fetching[id(fr)] = fr
                self.confirming.append((found, obj, fr, target))
                if not self.confirmer_running:
                    self.confirmer_running = True
                    tg.start_soon(self._confirm)
                return False
        self._execute(obj, fr, target, tg)
        return False

    async def _confirm(self) -> None:
        """Hash local files against their entries, a batch per thread call."""
        assert self.cache is not None
        try:
            while self.confirming:
                batch = [
                    self.confirming.popleft()
                    for _ in range(min(_CONFIRM_BATCH, len(self.confirming)))
                ]
                same = await anyio.to_thread.run_sync(
                    self.cache.confirm, [c for c, *_ in batch], limiter=self.fetch
                )
                for (candidate, obj, fr, target), hit in zip(batch, same, strict=True):
                    if self.fetching.pop(id(fr), None) is None:
                        continue
                    if hit and self.cache is not None:
                        self.identities.pop(id(fr), None)
                        self.cache.replay(candidate.record, fr, self.config.hashes)
                        self._done(fr)
                    else:
                        assert self.tg is not None
                        self._execute(obj, fr, target, self.tg)
                self._check_drained()
        finally:
            self.confirmer_running = False

    def _execute(self, obj: ObjectRef, fr: FileReport, target: str, tg: TaskGroup) -> None:
        if self.offload is not None:
            self.offload.admit(target, obj, fr)
            return
        path = obj.local_path
        if path is None:
            self.fetching[id(fr)] = fr
            tg.start_soon(self._fetch_and_queue, obj, fr)
            return
        self._queue(self._job(obj, fr, path, obj.size or 0))

    def _job(self, obj: ObjectRef, fr: FileReport, path: str, size: int) -> _Job:
        job = _Job(
            next(_job_ids),
            path,
            obj.uri,
            obj.explicit,
            size,
            self.config.file_deadline(size),
            owner=self,
            hashed=obj.local_path is not None,
        )
        job.obj = obj
        job.report = fr
        job.finished = None
        job.settling = False
        return job

    async def _fetch_and_queue(self, obj: ObjectRef, fr: FileReport) -> None:
        from .acquire import SpoolFolders, acquire

        if self.folders is None:
            self.folders = SpoolFolders()
        started = time.monotonic()
        fetching = [True]

        def on_bytes(n: int) -> None:
            self._notify("fetch_progress", obj.uri, n, obj.size)

        def fetched() -> None:
            if fetching:
                fetching.clear()
                self._notify("fetch_done", obj.uri)

        try:
            async with acquire(obj, self.config, self.fetch, on_bytes, self.folders) as got:
                if not got.streaming:
                    fetched()
                job = self._job(obj, fr, got.path, obj.size or 0)
                job.finished = anyio.Event()
                job.settling = got.streaming
                del self.fetching[id(fr)]
                self._queue(job)
                await job.finished.wait()
                if job.settling:
                    await self._settle(job, got.settled, fetched)
        except FetchError as exc:
            self._fail(fr, f"Could not fetch file: {exc}", str(exc))
            fr.duration = time.monotonic() - started
            self._release_fetch(fr)
        except get_cancelled_exc_class():
            raise
        except Exception as exc:
            log.debug("fetching %s failed", obj.uri, exc_info=True)
            reason = f"{type(exc).__name__}: {exc}"
            self._fail(fr, f"Scan failed: {reason}", reason)
            self._release_fetch(fr)
        finally:
            fetched()
            if obj.reader is not None:
                with anyio.CancelScope(shield=True):
                    await obj.reader.aclose()

    async def _settle(
        self, job: _Job, settled: Callable[[], Awaitable[None]], fetched: Callable[[], None]
    ) -> None:
        """A file scanned while its stream is still being hashed (--hash-remote): its
        result is recorded once the hash is in. Until then it is in `settling` (it holds its
        slot; a run stopped meanwhile reports it inconclusive with its findings); a stream
        that fails keeps the findings and makes the file an error."""
        fr = job.report
        self._notify("scanned", job.obj.uri)
        try:
            await settled()
        except get_cancelled_exc_class():
            raise
        except Exception as exc:
            fetched()
            self.settling.pop(id(fr), None)
            apply_outcome(fr, job.obj, job.outcome, job.streamed, job.deadline, self.config)
            if not isinstance(exc, FetchError):
                log.debug("fetching %s failed", job.obj.uri, exc_info=True)
            reason = str(exc) if isinstance(exc, FetchError) else f"{type(exc).__name__}: {exc}"
            self._fail(fr, f"Could not fetch file: {reason}", reason)
            self._done(fr)
            return
        fetched()
        self.settling.pop(id(fr), None)
        self._record(job, job.outcome, job.ended)

    def _release_fetch(self, fr: FileReport) -> None:
        if self.fetching.pop(id(fr), None) is not None:
            self._done(fr)

    # -- dispatching -------------------------------------------------------------------

    def _queue(self, job: _Job) -> None:
        self.pending[job.id] = job
        if self.parent_only:
            assert self.tg is not None
            self.tg.start_soon(self._route_in_parent, job)
            return
        self.ready.append(job)
        if self.dispatchers < self.dispatcher_limit:
            self._more_dispatchers()

    def _more_dispatchers(self) -> None:
        """Enough dispatchers for the queued files: one per batch queued, besides those busy
        with a batch, and never more than two per worker; none while the files ride on
        another call's dispatcher (`Opening`)."""
        batch = max(1, self.config.batch_files)
        if not self.dispatchers and self._rides(batch):
            return
        wanted = math.ceil(len(self.ready) / batch)
        limit = self.dispatcher_limit
        while self.dispatchers - self.busy < wanted and self.dispatchers < limit:
            if self.tg is None:
                return
            if self.engine.opening is None and getattr(self.engine.pool, "batches", False):
                self.engine.opening = Opening(self, batch)
            self.dispatchers += 1
            self.tg.start_soon(self._dispatch)

    def _rides(self, limit_files: int) -> bool:
        """Whether this call's queued files will go in the batch of another call's
        dispatcher that has yet to take it (`Opening`): they fit in it by count and bytes
        and are all small. Counts them in."""
        opening = self.engine.opening
        if opening is None or opening.call is self or opening.call.profile is not self.profile:
            return False
        ready = self.ready
        files, size = opening.riders.get(self, (0, 0))
        more = len(ready) - files
        if opening.files + more > limit_files:
            return False
        total = 0
        for job in ready:
            if job.size >= _ALONE:
                return False
            total += job.size
        if opening.bytes + total - size > max(1, self.config.batch_bytes):
            return False
        opening.files += more
        opening.bytes += total - size
        opening.riders[self] = (len(ready), total)
        return True

    def _close_opening(self) -> None:
        """This call's dispatcher has taken its batch (or will not): riders whose files it
        did not take get dispatchers of their own."""
        opening = self.engine.opening
        if opening is None or opening.call is not self:
            return
        self.engine.opening = None
        calls = self.engine.calls
        for rider in opening.riders:
            if rider in calls and rider.ready:
                rider._more_dispatchers()

    async def _dispatch(self) -> None:
        try:
            while self.ready:
                async with self.engine.pool.lease(self) as worker:
                    batch: list[FileJob] = list(self._take_batch())
                    if not batch:
                        continue
                    batch += self._borrow(batch)
                    self._close_opening()
                    batch.sort(key=_kind)
                    borrowed = [j for j in batch if j.owner is not self]
                    self.busy += 1
                    try:
                        self._more_dispatchers()
                        more = self._queued_batches(worker, borrowed)
                        leftover = await worker.run_batch(batch, self.profile, more)
                    except BaseException:
                        # This call is cancelled: what it borrowed goes back to its owners.
                        for job in borrowed:
                            job.started = False
                        give_back(borrowed)
                        raise
                    finally:
                        self.busy -= 1
                    give_back(leftover)
        except (WorkerStartError, PoolClosed) as exc:
            for job in list(self.ready):
                self.finish(job, Outcome("error", reason=str(exc)))
            self.ready.clear()
        finally:
            self.dispatchers -= 1
            self._close_opening()

    def _queued_batches(self, worker: Any, borrowed: list[FileJob]) -> Callable[[], list[FileJob]]:
        """The next batch for a worker this call holds, queued there while it runs another
        (`Worker.run_batch`), for as long as the pool allows (`may_queue`: no other call
        waiting, no other worker free, no recycling due); empty once it does not."""

        def more() -> list[FileJob]:
            if not self.ready or not self.engine.pool.may_queue(worker, self):
                return []
            following: list[FileJob] = list(self._take_batch())
            if following:
                taken = self._borrow(following)
                borrowed.extend(taken)
                following += taken
                following.sort(key=_kind)
            return following

        return more

    def _borrow(self, batch: list[FileJob]) -> list[FileJob]:
        """Fill a batch of small files with those of other calls, when they share this
        call's profile (many concurrent one-file calls then cost a few worker round trips,
        not one each). Calls waiting for a worker come first, in their turn; then those
        whose files are queued but whose dispatcher has not asked for a worker yet (calls
        started together: the first to lease takes the others' files along). Their results
        still go to their own calls."""
        limit = max(1, self.config.batch_files) - len(batch)
        if limit <= 0 or batch[-1].size >= _ALONE:
            return []
        budget = max(1, self.config.batch_bytes) - sum(j.size for j in batch)
        borrowed: list[FileJob] = []
        waiting = self.engine.pool.waiting_lanes()
        for lane in itertools.chain(waiting, self.engine.calls):
            if not isinstance(lane, ScanCall) or lane is self or lane.profile is not self.profile:
                continue
            if not lane.ready:
                continue
            taken = lane._take_batch(limit - len(borrowed), budget, small_only=True)
            borrowed += taken
            budget -= sum(j.size for j in taken)
            if len(borrowed) >= limit or budget <= 0:
                break
        return borrowed

    def give_back(self, jobs: list[FileJob]) -> None:
        """Files a worker will not scan (it died, or one file ahead of them is slow)."""
        mine = [j for j in jobs if j.id in self.pending]
        if not mine:
            return
        self.ready.extendleft(reversed(mine))  # type: ignore[arg-type]
        self._more_dispatchers()

    def _take_batch(
        self, limit_files: int = 0, limit_bytes: int = 0, small_only: bool = False
    ) -> list[_Job]:
        limit_files = limit_files or max(1, self.config.batch_files)
        limit_bytes = limit_bytes or max(1, self.config.batch_bytes)
        # A file given back may have been finished by its first worker meanwhile.
        while self.ready and self.ready[0].id not in self.pending:
            self.ready.popleft()
        if not self.ready:
            return []
        if self.ready[0].size >= _ALONE:
            return [] if small_only else [self.ready.popleft()]
        batch: list[_Job] = []
        taken: set[int] = set()
        total = 0
        while self.ready and len(batch) < limit_files:
            following = self.ready[0]
            if following.id not in self.pending or following.id in taken:
                # (a file given back twice: for a slow file ahead, then by a cancelled
                # borrower; a worker sent one file twice in a batch would be killed for it)
                self.ready.popleft()
                continue
            taken.add(following.id)
            if following.size >= _ALONE or (batch and total + following.size > limit_bytes):
                break
            batch.append(self.ready.popleft())
            total += following.size
        return batch

    async def _route_in_parent(self, job: _Job) -> None:
        """A registered scanner that cannot be sent to a worker runs here, for its files."""
        from ..formats import Format, sniff_path
        from . import dispatch

        def owner() -> tuple[Format | None, type[BaseScanner] | None]:
            try:
                fmt = sniff_path(job.path, job.display)
            except OSError:
                return None, None
            dispatch.set_registry(None)
            return fmt, dispatch.select_scanner(job.path, fmt)

        fmt, cls = await anyio.to_thread.run_sync(owner)
        if cls is None or cls not in self.parent_only:
            self.ready.append(job)
            self._more_dispatchers()
            return

        def scan() -> ScanResult:
            from .worker import scan_file

            return scan_file(
                job.path,
                self.profile.config,
                job.display,
                job.explicit,
                stream=job.streamed.append,
                fmt=fmt,
                hash_file=job.hashed,
            )

        job.started, job.started_at = True, time.monotonic()
        result: ScanResult | None = None
        with anyio.move_on_after(job.deadline):
            result = await run_abandonable(scan, self.parent_cpu)
        self.finish(job, Outcome("timeout") if result is None else Outcome("done", result))

    # -- results -----------------------------------------------------------------------

    def finish(self, job: FileJob, outcome: Outcome) -> None:
        """How one of this call's files ended (called by whichever batch scanned it)."""
        assert isinstance(job, _Job)
        if self.pending.pop(job.id, None) is None:
            return
        if job.settling:
            # recorded by `_settle` once its stream's hash is in
            job.outcome, job.ended = outcome, time.monotonic()
            self.settling[id(job.report)] = job
            assert job.finished is not None
            job.finished.set()
            return
        if job.finished is not None:
            job.finished.set()
        self._record(job, outcome, time.monotonic())

    def _record(self, job: _Job, outcome: Outcome, ended: float) -> None:
        fr = job.report
        apply_outcome(fr, job.obj, outcome, job.streamed, job.deadline, self.config)
        if job.started_at:
            fr.duration = ended - job.started_at
        self._done(fr)

    def _done(self, fr: FileReport) -> None:
        """A file's report is final: release its slot, remember it, and hand it on."""
        identity = self.identities.pop(id(fr), None) if self.identities else None
        if identity is not None and self.cache is not None:
            self.cache.store(identity, fr)
            if self.cache.pending >= _CACHE_BATCH and not self.flushing and self.tg is not None:
                self.flushing = True
                self.tg.start_soon(self._flush_cache)
        self.engine.slots.release()
        self.emit(fr)
        self._check_drained()

    def finish_report(self, fr: FileReport) -> None:
        """An executor's result for a file it was given by `Offload.admit`."""
        self._done(fr)

    def note_interrupted(self) -> None:
        """An executor's part of the call stopped short (its nodes reached the deadline)."""
        if self.report.interrupted is None:
            self.report.interrupted = self.stop_reason or run_timeout_reason(self.config.timeout)

    def stopped_report(self, fr: FileReport) -> None:
        """An executor's file that the run's stop (deadline, signal) left unscanned where it
        was sent: inconclusive and not started, as a listed file is locally."""
        fr.format = fr.format or extension_format(fr.path)
        self._mark_stopped(fr, started=False)
        self._done(fr)

    def fail_report(self, fr: FileReport, reason: str) -> None:
        """An executor could not scan a file it was given: an error naming `reason`."""
        self._fail(fr, reason, reason)
        self._done(fr)

    def _too_large(self, fr: FileReport, size: int, limit: int) -> None:
        fr.format = extension_format(fr.path)
        fr.status = FileStatus.INCONCLUSIVE
        fr.status_reason = "File too large to scan"
        fr.issues.append(
            Issue(
                message=f"File too large to scan ({size} bytes, limit {limit} bytes)",
                severity=IssueSeverity.INFO,
                location=format_location(fr.path),
                details={"size": size, "max_file_size": limit},
                why="Files over --max-size are not read, so this one is unverified.",
                rule=rules.FILE_TOO_LARGE,
            )
        )

    def _fail(self, fr: FileReport, message: str, reason: str) -> None:
        fr.status = FileStatus.ERROR
        fr.status_reason = reason
        fr.issues.append(info(fr, message, rules.SCAN_ERROR))

    def _mark_stopped(self, fr: FileReport, started: bool) -> None:
        """The run ended (deadline or signal) before this file's scan finished."""
        mark_stopped(fr, started, self.stop_reason, self.config.timeout)

    def _record_unfinished(self) -> None:
        """Report every file the run did not finish: begun ones keep what their worker
        streamed; listed ones are marked not started."""
        for job in sorted(self.pending.values(), key=lambda j: j.id):
            fr = job.report
            fr.format = extension_format(job.obj.uri)
            fr.issues.extend(rescue(job.streamed, self.cap, fr.path))
            self._mark_stopped(fr, started=job.started)
            self.emit(fr)
        for fr in self.fetching.values():
            fr.format = extension_format(fr.path)
            self._mark_stopped(fr, started=True)
            self.emit(fr)
        for job in self.settling.values():
            # scanned, its hash unfinished: the findings stay, the file is not vouched for
            fr = job.report
            apply_outcome(fr, job.obj, job.outcome, job.streamed, job.deadline, self.config)
            self._mark_stopped(fr, started=True)
            self.emit(fr)
        if self.offload is not None:
            for fr, started in self.offload.unfinished():
                fr.format = fr.format or extension_format(fr.path)
                self._mark_stopped(fr, started=started)
                self.emit(fr)
        for obj in self.unstarted.values():
            fr = FileReport(path=obj.uri, size=obj.size, remote=obj.is_remote)
            fr.format = extension_format(obj.uri)
            self._mark_stopped(fr, started=False)
            self.emit(fr)
        self.unstarted.clear()
        self.ready.clear()


async def _discard(obj: ObjectRef) -> None:
    """An object that will not be read: release what its reader holds."""
    if obj.reader is not None:
        with anyio.CancelScope(shield=True):
            await obj.reader.aclose()
