"""The client side of a cluster sweep: the Scanner's executor when `cluster=` is set.

The call lists its targets here, as it does locally (lazily, each object taking a slot), and
applies `--shard`, `--max-size` and `--cache` itself. Every other object is buffered into a
shard (up to `shard_files` objects or `shard_bytes` listed bytes, or whatever a 50 ms pause
in the listing leaves) and submitted as one Dask task, with at most `shards_per_thread` shards
per Dask worker thread in flight (so per-task overhead stays small and the cluster stays
busy). Each shard's reports come back as its task ends and go straight to the collector.

Failures are the cluster's to retry, and ours to report:
- a Dask worker that dies: the scheduler runs its tasks elsewhere, until the same task has
  seen `distributed.scheduler.allowed-failures` (default 3) workers die; then each file of
  the shard is reported `error`, naming the lost workers;
- an exception in a task (a node that cannot start its engine) is retried once, then
  reported the same way;
- no worker at all for `cluster_idle_timeout` seconds: the files still owed are `error`;
- Ctrl-C or the run deadline: the nodes are told to stop the run (`Client.run`), which they
  do as a local scan would, and the shards in flight have a few seconds to bring back what
  their files found; the rest are cancelled and listed as unfinished, and the report is
  written.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
import uuid
from collections import deque
from typing import Any

import anyio
from anyio import CapacityLimiter, get_cancelled_exc_class
from anyio.abc import TaskGroup

from ..config import ScanConfig
from ..engine.cache import scanner_name
from ..engine.runner import ScanCall
from ..fetchers import ObjectRef
from ..redact import carries_credentials, secret_values
from ..report import FileReport
from .errors import MISSING_EXTRA, ClusterError
from .node import scan_shard, stop_run
from .payload import (
    Group,
    ShardEntry,
    ShardTask,
    decode_results,
    encode_shard,
    find_secret,
    node_settings,
)

log = logging.getLogger("modelaudit")

__all__ = ["ClusterCall", "DaskExecutor"]

#: After a stop, how long shards in flight have to bring back what their files found.
STOP_GRACE = 5.0
#: A pause in the listing this long sends a partly filled shard.
LINGER = 0.05
#: How often the client asks the scheduler how many worker threads there are.
_POLL = 1.0

Entry = tuple[str, ObjectRef, FileReport]


class DaskExecutor:
    """A Dask client for the Scanner's lifetime; each scan call gets a `ClusterCall`."""

    def __init__(self, config: ScanConfig, slots: anyio.Semaphore, tg: TaskGroup) -> None:
        assert config.cluster
        self.address = config.cluster
        self.config = config
        self.slots = slots
        self.granted = config.in_flight
        self.fixed_slots = config.max_in_flight is not None
        self.window = CapacityLimiter(1)
        self.threads = 0
        self.idle_since: float | None = None
        self.tg = tg
        #: A `distributed.Client` (Dask's API is untyped).
        self.client: Any = None

    async def start(self) -> None:
        try:
            import dask.config
            import dask.utils
            import distributed
        except ImportError:
            raise ClusterError(MISSING_EXTRA) from None
        client_class: Any = distributed.Client
        # Dask's own setting (DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT), 30 s by default.
        timeout = dask.utils.parse_timedelta(
            dask.config.get("distributed.comm.timeouts.connect", "30s"), default="seconds"
        )
        try:
            with anyio.fail_after(timeout + 5):
                self.client = await client_class(
                    self.address,
                    asynchronous=True,
                    timeout=timeout,
                    set_as_default=False,
                    name="modelaudit",
                )
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {self.address}: {exc}".rstrip()
            ) from None
        await self._refresh()
        self.tg.start_soon(self._watch)

    async def aclose(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await client.close()

    def begin(self, call: ScanCall) -> ClusterCall:
        if call.parent_only:
            names = ", ".join(sorted(c.__qualname__ for c in call.parent_only))
            raise ClusterError(
                f"scanner {names} cannot be imported by name, so cluster nodes cannot run it: "
                "define it in a module installed on every node"
            )
        return ClusterCall(self, call)

    def idle_for(self) -> float:
        """Seconds the cluster has had no worker (0 while it has some)."""
        return 0.0 if self.idle_since is None else time.monotonic() - self.idle_since

    async def _watch(self) -> None:
        while self.client is not None:
            await anyio.sleep(_POLL)
            await self._refresh()

    async def _refresh(self) -> None:
        """Size the shard window and the slots to the worker threads the cluster has now."""
        try:
            assert self.client is not None
            with anyio.fail_after(10):
                threads = sum((await self.client.nthreads()).values())
        except Exception:
            threads = 0
        self.threads = threads
        if threads:
            self.idle_since = None
        elif self.idle_since is None:
            self.idle_since = time.monotonic()
        window = max(1, self.config.shards_per_thread * threads)
        if window > self.window.total_tokens:
            self.window.total_tokens = window
        wanted = (window + 1) * max(1, self.config.shard_files)
        if not self.fixed_slots and wanted > self.granted:
            for _ in range(wanted - self.granted):
                self.slots.release()
            self.granted = wanted


class ClusterCall:
    """One scan call's shards: buffered, submitted, collected (the call's `Offload`)."""

    def __init__(self, executor: DaskExecutor, call: ScanCall) -> None:
        self.executor = executor
        self.call = call
        self.config = call.config
        self.run = uuid.uuid4().hex
        self.settings = node_settings(call.profile.config)
        registry = call.profile.registry
        self.registry = None if registry is None else [":".join(scanner_name(e)) for e in registry]
        self.secrets = secret_values()
        timeout = self.config.timeout
        self.deadline = time.time() + timeout if timeout and timeout > 0 else None
        self.buffer: list[Entry] = []
        self.buffer_bytes = 0
        self.waiting: dict[int, list[Entry]] = {}
        self.inflight: dict[int, list[Entry]] = {}
        self.numbers = itertools.count(1)
        self.lingering = False
        self.stop_sent: anyio.Event | None = None

    # -- the Offload protocol --------------------------------------------------------

    def admit(self, target: str, obj: ObjectRef, fr: FileReport) -> None:
        tg = self.call.tg
        assert tg is not None
        if carries_credentials(target):
            tg.start_soon(
                self._reject,
                obj,
                fr,
                "this target carries a credential in its URL, and cluster tasks never carry "
                "credentials: each node reads its own environment; scan it without --cluster",
            )
            return
        self.buffer.append((target, obj, fr))
        self.buffer_bytes += obj.size or 0
        if (
            len(self.buffer) >= max(1, self.config.shard_files)
            or self.buffer_bytes >= self.config.shard_bytes
        ):
            self._flush()
        elif not self.lingering:
            self.lingering = True
            tg.start_soon(self._linger)

    def unfinished(self) -> list[tuple[FileReport, bool]]:
        owed = [(fr, False) for _, _, fr in self.buffer]
        for entries in self.waiting.values():
            owed.extend((fr, False) for _, _, fr in entries)
        for entries in self.inflight.values():
            owed.extend((fr, True) for _, _, fr in entries)
        return owed

    # -- shards ----------------------------------------------------------------------

    async def _reject(self, obj: ObjectRef, fr: FileReport, reason: str) -> None:
        await _discard(obj)
        self.call.fail_report(fr, reason)

    async def _linger(self) -> None:
        try:
            await anyio.sleep(LINGER)
            self._flush()
        finally:
            self.lingering = False

    def _flush(self) -> None:
        if not self.buffer:
            return
        entries, self.buffer, self.buffer_bytes = self.buffer, [], 0
        number = next(self.numbers)
        self.waiting[number] = entries
        assert self.call.tg is not None
        self.call.tg.start_soon(self._shard, number, entries)

    async def _shard(self, number: int, entries: list[Entry]) -> None:
        for _, obj, _ in entries:
            await _discard(obj)
        async with self.executor.window:
            self.waiting.pop(number, None)
            self.inflight[number] = entries
            payload = encode_shard(self._task(number, entries))
            if find_secret(payload, self.secrets):
                self._fail(
                    number,
                    "refused to send this file's cluster task: it would carry a credential "
                    "from this machine's environment (each node must read its own)",
                )
                return
            client = self.executor.client
            if client is None:
                self._fail(number, "the Dask client is closed")
                return
            try:
                future = client.submit(
                    scan_shard, payload, key=self._key(number), pure=False, retries=1
                )
            except Exception as exc:
                self._fail(number, f"cannot submit to the Dask cluster: {_describe(exc)}")
                return
            try:
                outcome = await self._wait(future)
            except get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    late = await self._after_stop(future)
                    if late is not None:
                        self._deliver(number, late)
                    else:
                        await _cancel(client, future)
                raise
            finally:
                future.release()
            self._deliver(number, outcome)

    def _key(self, number: int) -> str:
        return f"modelaudit-shard-{self.run}-{number}"

    def _task(self, number: int, entries: list[Entry]) -> ShardTask:
        groups: dict[str, Group] = {}
        for target, obj, _ in entries:
            group = groups.setdefault(target, Group(target, []))
            local = None if obj.local_path is None else os.path.abspath(obj.local_path)
            group.entries.append(ShardEntry.of(obj, local))
        return ShardTask(
            run=self.run,
            key=self._key(number),
            deadline=self.deadline,
            timeout=float(self.config.timeout or 0),
            settings=self.settings,
            registry=self.registry,
            groups=list(groups.values()),
        )

    async def _wait(self, future: Any) -> dict[str, Any]:
        """The task's answer ({"result": bytes} or {"error": reason}); never hangs on a
        cluster that has lost every worker."""
        box: dict[str, Any] = {}
        done = anyio.Event()

        async def wait() -> None:
            try:
                box.update(await _outcome(future))
            finally:
                done.set()

        limit = self.config.cluster_idle_timeout
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            while not done.is_set():
                with anyio.move_on_after(_POLL):
                    await done.wait()
                if not done.is_set() and self.executor.idle_for() > limit:
                    box["error"] = (
                        f"the Dask cluster at {self.executor.address} has had no worker for "
                        f"{limit:g} seconds"
                    )
                    tg.cancel_scope.cancel()
        return box

    async def _after_stop(self, future: Any) -> dict[str, Any] | None:
        """Tell the nodes to stop this run, then give the shard a moment to come back."""
        await self._stop_nodes()
        with anyio.move_on_after(STOP_GRACE):
            outcome = await _outcome(future)
            return outcome if "result" in outcome else None
        return None

    async def _stop_nodes(self) -> None:
        if self.stop_sent is not None:
            await self.stop_sent.wait()
            return
        self.stop_sent = anyio.Event()
        reason = self.call.stop_reason or (
            f"Scan timeout after {self.config.timeout:g} seconds (run deadline reached)"
        )
        try:
            client = self.executor.client
            if client is not None:
                with anyio.move_on_after(STOP_GRACE):
                    await client.run(stop_run, self.run, reason)
        except Exception:
            log.debug("could not tell the cluster to stop", exc_info=True)
        finally:
            self.stop_sent.set()

    # -- results ---------------------------------------------------------------------

    def _deliver(self, number: int, outcome: dict[str, Any]) -> None:
        if "result" not in outcome:
            self._fail(number, outcome.get("error") or "the cluster task failed")
            return
        try:
            results = decode_results(outcome["result"])
        except ValueError as exc:
            self._fail(number, str(exc))
            return
        if results.interrupted:
            self.call.note_interrupted()
        entries = self.inflight.pop(number, [])
        owners: dict[str, deque[FileReport]] = {}
        for _, _, fr in entries:
            owners.setdefault(fr.path, deque()).append(fr)
        for node_report in results.files:
            queue = owners.get(node_report.path)
            if not queue:
                log.debug("a node reported a file it was not given: %s", node_report.path)
                continue
            fr = queue.popleft()
            _merge(fr, node_report)
            self.call.finish_report(fr)
        for queue in owners.values():
            for fr in queue:
                if results.interrupted:
                    # The node stopped the shard (the run's stop or deadline) before this
                    # file was even listed there.
                    self.call.stopped_report(fr)
                else:
                    self.call.fail_report(fr, f"Dask worker {results.node} returned no result")

    def _fail(self, number: int, reason: str) -> None:
        for _, _, fr in self.inflight.pop(number, []):
            self.call.fail_report(fr, reason)


async def _outcome(future: Any) -> dict[str, Any]:
    """A finished future as {"result": ...} or {"error": reason} (never raises for the
    task's own failure)."""
    from distributed.client import FutureCancelledError

    try:
        return {"result": await future}
    except FutureCancelledError as exc:
        return {"error": f"the Dask cluster cancelled the task ({exc.reason})"}
    except get_cancelled_exc_class():
        raise
    except Exception as exc:
        return {"error": _describe(exc)}


def _describe(exc: BaseException) -> str:
    """A task failure in the user's words."""
    if type(exc).__name__ == "KilledWorker":
        tries = getattr(exc, "allowed_failures", None)
        last = getattr(getattr(exc, "last_worker", None), "address", None)
        tried = f"{tries + 1} Dask workers" if isinstance(tries, int) else "Dask workers"
        return (
            f"Dask worker lost: {tried} died while scanning this file's shard"
            + (f" (the last was {last})" if last else "")
            + "; the file was not scanned"
        )
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"the cluster task failed: {type(exc).__name__}" + (f": {text}" if text else "")


async def _cancel(client: Any, future: Any) -> None:
    with anyio.move_on_after(STOP_GRACE):
        try:
            await client.cancel([future], reason="modelaudit stopped the run")
        except TypeError:
            await client.cancel([future])
        except Exception:
            log.debug("cancelling a cluster task failed", exc_info=True)


async def _discard(obj: ObjectRef) -> None:
    """The client never reads an object it sends to the cluster."""
    if obj.reader is not None:
        with anyio.CancelScope(shield=True):
            await obj.reader.aclose()
        obj.reader = None


def _merge(fr: FileReport, node_report: FileReport) -> None:
    """The node's verdict into the report the call listed (which knows where it came from)."""
    for name in (
        "status",
        "status_reason",
        "format",
        "scanner",
        "bytes_scanned",
        "duration",
        "sha256",
        "issues",
        "metadata",
    ):
        setattr(fr, name, getattr(node_report, name))
    if fr.size is None:
        fr.size = node_report.size
