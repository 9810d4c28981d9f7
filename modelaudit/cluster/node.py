"""The node side: what a Dask worker process runs for a modelaudit sweep.

Each Dask worker process keeps one `Scanner` for its whole life, in a thread of its own with
its own event loop (Dask's event loop and task threads are Dask's): the first shard starts
it, later shards reuse its warm worker processes, and any number of Dask task threads feed it
at once. Its scan workers are this process's children and die with it (`PR_SET_PDEATHSIG`,
and the fork server's control socket closing).

A shard is scanned as one call on that Scanner, whose targets are `ShardSource`s: each
rebuilds its objects from the shard's entries with a reader of this node's own (the fetcher's
`reopen`, with the credentials of this node's environment), or lists the target again when
its fetcher cannot reopen one object (MLflow, DVC, a plain URL), or checks that a local path
is visible here. The report that comes back is the node's `FileReport`s as JSON.

Stopping: the client broadcasts `stop_run` (Ctrl-C, its deadline), which stops the run's calls
here as a signal would locally, so files in flight come back with the findings their workers
streamed. A shard also stops by itself at the deadline it carries, a little before the
client's, and when Dask tells this worker that its task was cancelled.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ..config import ScanConfig, default_jobs
from ..engine.cache import scanner_name
from ..engine.runner import ScanCall
from ..engine.scanner import Scanner
from ..fetchers import FailedReader, FetchError, ObjectRef, Source, TargetNotFound, resolve
from .payload import Group, ShardEntry, ShardTask, decode_shard, encode_results

log = logging.getLogger("modelaudit")

__all__ = ["ShardSource", "scan_shard", "stop_run"]

#: Worker processes of a node's Scanner; default: this machine's CPUs.
JOBS_VARIABLE = "MODELAUDIT_NODE_JOBS"
#: How long a run's stop order is remembered after its last shard.
_RUN_MEMORY = 3600.0
#: How often a running shard asks Dask whether its task is still wanted.
_POLL = 1.0
#: A source that reopens objects is kept this long after its last shard, so that the shards
#: of a sweep share one client (building an S3 client takes a few hundred milliseconds).
_SOURCE_IDLE = 120.0


def scan_shard(payload: bytes) -> bytes:
    """The cluster task: scan one shard on this worker's Scanner, return the JSON reports."""
    worker = _dask_worker()
    node = str(getattr(worker, "address", None) or os.uname().nodename)
    return _node_engine().scan(payload, node, worker)


def stop_run(run: str, reason: str) -> int:
    """Run by the client on every worker (`Client.run`): stop that run's shards here, as a
    signal stops a local scan. Returns how many calls were stopped."""
    engine = _ENGINE
    if engine is None:
        return 0
    return engine.stop(run, reason)


def _dask_worker() -> Any:
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


@dataclass
class _Kept:
    source: Source
    users: int = 0
    last: float = field(default_factory=time.monotonic)


class _Sources:
    """Sources kept open across shards, by target and settings (event-loop thread only)."""

    def __init__(self) -> None:
        self.kept: dict[bytes, _Kept] = {}

    @asynccontextmanager
    async def borrow(self, target: str, settings: dict[str, Any]) -> AsyncIterator[Source]:
        await self._evict()
        key = orjson.dumps([target, settings], option=orjson.OPT_SORT_KEYS, default=str)
        kept = self.kept.get(key)
        if kept is None:
            kept = self.kept[key] = _Kept(resolve(target, settings))
        kept.users += 1
        try:
            yield kept.source
        finally:
            kept.users -= 1
            kept.last = time.monotonic()

    async def _evict(self) -> None:
        now = time.monotonic()
        for key, kept in list(self.kept.items()):
            if not kept.users and now - kept.last > _SOURCE_IDLE:
                del self.kept[key]
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await kept.source.aclose()


@dataclass
class _Run:
    calls: set[ScanCall] = field(default_factory=set)
    stopped: str | None = None
    touched: float = field(default_factory=time.monotonic)


class _NodeEngine:
    def __init__(self) -> None:
        self._stack = ExitStack()
        self._lock = threading.Lock()
        self.runs: dict[str, _Run] = {}
        self.sources = _Sources()
        try:
            self.portal: BlockingPortal = self._stack.enter_context(
                start_blocking_portal("asyncio", _backend_options())
            )
            jobs = int(os.environ.get(JOBS_VARIABLE) or 0) or default_jobs()
            scanner = Scanner(ScanConfig(jobs=jobs))
            self.scanner: Scanner = self._stack.enter_context(
                self.portal.wrap_async_context_manager(scanner)
            )
        except BaseException:
            self._stack.close()
            raise

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.close()

    def scan(self, payload: bytes, node: str, worker: Any) -> bytes:
        answer: bytes = self.portal.call(self._scan, payload, node, worker)
        return answer

    def stop(self, run: str, reason: str) -> int:
        with self._lock:
            state = self.runs.setdefault(run, _Run())
            state.stopped = state.stopped or reason
            calls = list(state.calls)
        for call in calls:
            self.portal.start_task_soon(_stop_call, call, reason)
        return len(calls)

    def _forget_old_runs(self) -> None:
        now = time.monotonic()
        with self._lock:
            for run, state in list(self.runs.items()):
                if not state.calls and now - state.touched > _RUN_MEMORY:
                    del self.runs[run]

    async def _scan(self, payload: bytes, node: str, worker: Any) -> bytes:
        task = decode_shard(payload)
        self._forget_old_runs()
        config = self.scanner.config.with_overrides(task.settings)
        _check_registry(task.registry)
        with self._lock:
            state = self.runs.setdefault(task.run, _Run())
            state.touched = time.monotonic()
        sources: list[str | Source] = [
            ShardSource(g, task.settings, node, self.sources) for g in task.groups
        ]
        holder: list[ScanCall] = []

        def started(call: ScanCall) -> None:
            holder.append(call)
            with self._lock:
                state.calls.add(call)
                stopped = state.stopped
            if stopped is not None:
                call.stop(stopped)

        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch, task, holder, worker)
            try:
                report = await self.scanner.run_call(sources, config, started=started)
            finally:
                with self._lock:
                    state.calls.difference_update(holder)
                    state.touched = time.monotonic()
                tg.cancel_scope.cancel()
        return encode_results(node, report.files, bool(report.interrupted))

    async def _watch(self, task: ShardTask, holder: list[ScanCall], worker: Any) -> None:
        """Stop the shard a little before the client's deadline, or once Dask has cancelled
        its task (the client went away without a word)."""
        stop_at = _local_deadline(task)
        while True:
            await anyio.sleep(min(_POLL, max(0.0, stop_at - time.time())))
            if not holder:
                continue
            if time.time() >= stop_at:
                holder[0].stop(
                    f"Scan timeout after {task.timeout:g} seconds (run deadline reached)"
                )
                return
            if _task_abandoned(worker, task.key):
                holder[0].stop("The cluster task was cancelled before the scan finished")
                return


def _stop_call(call: ScanCall, reason: str) -> None:
    call.stop(reason)


def _local_deadline(task: ShardTask) -> float:
    if task.deadline is None:
        return float("inf")
    margin = min(2.0, 0.05 * task.timeout) if task.timeout else 1.0
    return task.deadline - margin


def _task_abandoned(worker: Any, key: str) -> bool:
    """Dask's own view of the task on this worker: gone or cancelled."""
    if worker is None:
        return False
    try:
        ts = worker.state.tasks.get(key)
    except Exception:
        return False
    return ts is None or getattr(ts, "state", None) in ("cancelled", "released", "forgotten")


def _check_registry(names: list[str] | None) -> None:
    """The client's scanners must be this node's: a scan must not quietly differ by node."""
    if names is None:
        return
    registry = importlib.import_module("modelaudit.scanners.registry")
    here = [":".join(scanner_name(entry)) for entry in registry.routing_entries()]
    if here != names:
        missing = sorted(set(names) - set(here))
        raise RuntimeError(
            "this node's scanner registry differs from the client's"
            + (f" (missing {', '.join(missing)})" if missing else "")
            + ": register the same scanners on every node (a Dask preload or worker plugin "
            "that imports them)"
        )


class ShardSource(Source):
    """One target's objects of a shard, opened with this node's own readers."""

    def __init__(
        self, group: Group, settings: dict[str, Any], node: str, sources: _Sources
    ) -> None:
        self.target = group.target
        self.entries = group.entries
        self.settings = settings
        self.node = node
        self.sources = sources
        self.inner: Source | None = None

    async def objects(self) -> AsyncIterator[ObjectRef]:
        remote: list[ShardEntry] = []
        for entry in self.entries:
            if entry.local_path is None:
                remote.append(entry)
            else:
                yield self._local(entry)
        if not remote:
            return
        relist: list[ShardEntry] = []
        handled = 0
        try:
            async with self.sources.borrow(self.target, self.settings) as source:
                for entry in remote:
                    handled += 1
                    ref: ObjectRef | None = None
                    if entry.locator is not None:
                        try:
                            ref = await source.reopen(entry.ref())
                        except Exception as exc:
                            yield _failed(entry, _fetch_error(exc, entry.uri, self.node))
                            continue
                    if ref is None:
                        relist.append(entry)
                    else:
                        yield ref
        except Exception as exc:
            # Resolving the target failed: no object of it can be had on this node.
            error = _fetch_error(exc, self.target, self.node)
            for entry in remote[max(0, handled - 1) :]:
                yield _failed(entry, error)
            return
        if not relist:
            return
        try:
            self.inner = resolve(self.target, self.settings)
        except Exception as exc:
            error = _fetch_error(exc, self.target, self.node)
            for entry in relist:
                yield _failed(entry, error)
            return
        async for ref in self._relist(relist):
            yield ref

    def _local(self, entry: ShardEntry) -> ObjectRef:
        path = entry.local_path
        assert path is not None
        if not os.path.isfile(path):
            error = TargetNotFound(
                f"{entry.uri}: not found on Dask worker {self.node} ({path}); cluster nodes "
                "must see local paths at the same place (a shared file system)"
            )
            return _failed(entry, error)
        ref = entry.ref()
        ref.local_path = path
        return ref

    async def _relist(self, entries: list[ShardEntry]) -> AsyncIterator[ObjectRef]:
        """This fetcher cannot open one object by itself: list the target, keep the shard's."""
        assert self.inner is not None
        wanted: dict[str, list[ShardEntry]] = {}
        for entry in entries:
            wanted.setdefault(entry.uri, []).append(entry)
        try:
            async for obj in self.inner.objects():
                owners = wanted.get(obj.uri)
                if not owners:
                    if obj.reader is not None:
                        await obj.reader.aclose()
                    continue
                entry = owners.pop()
                if not owners:
                    del wanted[obj.uri]
                obj.explicit = entry.explicit
                yield obj
        except Exception as exc:
            error = _fetch_error(exc, self.target, self.node)
            for owners in wanted.values():
                for entry in owners:
                    yield _failed(entry, error)
            return
        for owners in wanted.values():
            for entry in owners:
                yield _failed(
                    entry,
                    TargetNotFound(f"{entry.uri}: no longer listed under {self.target}"),
                )

    async def aclose(self) -> None:
        if self.inner is not None:
            await self.inner.aclose()


def _failed(entry: ShardEntry, error: FetchError) -> ObjectRef:
    ref = entry.ref()
    ref.reader = FailedReader(error)
    return ref


def _fetch_error(exc: BaseException, shown: str, node: str) -> FetchError:
    if isinstance(exc, FetchError):
        return exc
    return FetchError(f"{shown}: cannot open on Dask worker {node} ({type(exc).__name__}: {exc})")


def _backend_options() -> dict[str, Any]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}


_ENGINE: _NodeEngine | None = None
_ENGINE_LOCK = threading.Lock()


def _node_engine() -> _NodeEngine:
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = _NodeEngine()
            atexit.register(_ENGINE.close)
        return _ENGINE
