"""Get a local path for an object: the file itself, or a spool of a remote object.

A remote object is spooled under a private temporary folder, keeping its base name so that
name-based routing still works. Header-only formats get a sparse spool of the object's full
size holding only the ranges their planner read (engine/range_plan.py); everything else is
streamed whole, bounded by --max-size. Scanners stay path-based and never know the difference.

With `--hash-remote` and no published sha256 the object streams whole through the hasher
while the plan's reads are taken off that stream; the path is handed over as soon as the
plan is served, the stream goes on being hashed meanwhile, and `Fetched.settled` waits for
it (the report needs the hash, the scan does not).

A large object whose plan walks it record by record (an ONNX model, by its name) starts the
same way, as one whole-object stream the head is taken off: an endpoint slow to answer (moto
reads the whole object before answering any GetObject, ranged or not) has the walk and the
tail taken off that stream, the download and nothing read twice; one quick to answer has the
stream cut after its head and the walk read by ranges (`_ranges_cheap`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import anyio.to_thread

from ..config import ScanConfig
from ..fetchers.base import FetchError, ObjectReader, ObjectRef
from ..formats import HEAD_SIZE, Format, extension_format, has_model_extension, sniff_head
from ..formats.format import end_read, head_read
from .fill import BUFFER, BUFFERS, fill
from .link import MAX_BANDWIDTH, MIN_SAMPLE
from .range_plan import PLANS, plan, walk_parallel, walk_records, walk_seconds
from .spool import MAX_REQUEST, Spool
from .tap import Tap

log = logging.getLogger("modelaudit")

#: Objects up to this size hashed for --hash-remote are written whole (no plan to serve).
TAP_ABOVE = 8 << 20
#: A hash stream whose first buffer came within this many seconds has its tail read by range
#: beside it, so that the scan's own time (about 0.1-0.3 s) overlaps the stream: the read
#: runs alongside the stream, and a server this quick to answer serves it without slowing
#: the stream. One slower to answer takes the tail off the stream: moto reads the whole
#: object before answering any GetObject, ranged or not (about a second per GiB), so a read
#: beside the stream there costs a second download's work in the same server process.
BESIDE_WITHIN = 0.5
#: An object whose plan walks it (ONNX) takes its first read as a whole-object stream from
#: this size on: a stream cut after its head may have moved the fill's buffers (32 MiB),
#: worth risking only where that is a small share of the object.
STREAM_FIRST_FROM = 8 * BUFFERS * BUFFER
#: Rounds of requests a walk by ranges is counted as (the head and tail, two jumps to show
#: the stride, guesses read ahead in rounds four times as wide), each a round trip, when the
#: first bytes of a stream say whether to keep it or to read ranges.
WALK_ROUNDS = 12
#: Longest wait for the fill's read-ahead buffers to measure a stream's rate by.
MEASURE_WITHIN = 1.0
#: How much dearer than the rest of the stream, at its sampled rate, a walk by ranges may be
#: projected and still be taken. A walk that turns out dearer than projected switches to one
#: request for the rest after a round (range_plan), while a kept stream cannot be left; and
#: the stream's rate is sampled on its first buffers, which may come faster than the rest
#: (buffers refilled from the sockets' backlog while the planner held the stream came at
#: 1.8 GB/s on a link that then streamed the rest at 0.7 GB/s: kept, that scan took 1.7
#: times a download's time).
STREAM_DOUBT = 1.5

OnBytes = Callable[[int], None]


class Fetched:
    """What `acquire` hands over: a local path the scanner can read now, and `settled`, to
    await before the file's result is recorded: it ends when the object's digests and bytes
    moved are in its metadata (at once, unless a hash stream is still running)."""

    def __init__(self, path: str, rest: Callable[[], Awaitable[None]] | None = None) -> None:
        self.path = path
        self._rest = rest
        #: the stream still running when the path was handed over (it is being hashed)
        self.streaming = rest is not None
        self.done = rest is None

    async def settled(self) -> None:
        """Wait for the stream still being hashed; raises FetchError if it failed."""
        rest, self._rest = self._rest, None
        if rest is not None:
            await rest()
            self.done = True


class SpoolFolders:
    """Private folders for one call's spool files, each reused once its object is scanned.

    A spool keeps the object's base name (routing reads it), so each object needs a folder
    of its own; creating and removing one per object cost more than fetching a small object
    (`rmdir` takes milliseconds on an ext4 mounted with `discard`). A folder goes back to the
    free list only empty and only after its object ended normally; `close` removes them all.
    """

    def __init__(self) -> None:
        self.free: list[str] = []
        self.made: list[str] = []

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        folder = tempfile.mkdtemp(prefix="modelaudit-")
        self.made.append(folder)
        return folder

    def give(self, folder: str, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            if not os.listdir(folder):
                self.free.append(folder)

    def close(self) -> None:
        """Remove every folder (blocking: call it in a thread)."""
        made, self.made, self.free = self.made, [], []
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)


def _safe_basename(uri: str) -> str:
    name = uri.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return name.lstrip(".") or "object"


async def _stream_whole(
    obj: ObjectRef, path: str, limit: int, hashes: bool, on_bytes: OnBytes | None = None
) -> int:
    """An object of unknown size, in one fill (hashed in the same pass when asked)."""
    assert obj.reader is not None
    hasher = None
    if hashes:
        import hashlib

        hasher = hashlib.sha256()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        done = await fill(
            obj.reader, fd, 0, None, obj.uri, hasher=hasher, limit=limit, on_bytes=on_bytes
        )
    finally:
        os.close(fd)
    if obj.size is not None and done.landed != obj.size:
        raise FetchError(f"{obj.uri}: got {done.landed} bytes, the listing said {obj.size}")
    if hasher is not None and done.hashed == done.landed:
        obj.metadata["sha256_streamed"] = hasher.hexdigest()
    return done.landed


def _nobody_wants(obj: ObjectRef, path: str) -> bool:
    """An unrecognised file that no scanner claims by name: the worker will skip it after
    sniffing the same head, named or listed, so the rest of it is not worth downloading."""
    if has_model_extension(obj.name):
        return False
    from .dispatch import select_scanner

    return select_scanner(path, None) is None


async def _published(obj: ObjectRef) -> dict[str, str]:
    assert obj.reader is not None
    try:
        return await obj.reader.published_digests()
    except FetchError:
        log.debug("no published digest for %s", obj.uri, exc_info=True)
        return {}


async def _record_digests(obj: ObjectRef, path: str, complete: bool) -> None:
    """The object's digests for SARIF and the SBOM: what its provider publishes, and a
    sha256 of the bytes when they were all fetched anyway (never a download just to hash,
    unless --hash-remote asked for one)."""
    assert obj.reader is not None
    digests = await _published(obj)
    source = obj.reader.digest_source if digests else ""
    streamed = obj.metadata.pop("sha256_streamed", None)
    if "sha256" not in digests and (streamed or complete):
        digests["sha256"] = streamed or await anyio.to_thread.run_sync(_sha256, path)
        source = f"{source}; sha256 computed from the bytes read" if source else ""
    if digests:
        obj.metadata["digests"] = digests
    if source:
        obj.metadata["digest_source"] = source


def _sha256(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _refuses_ranges(reader: ObjectReader) -> bool:
    """Asked again after reads that may have taught the reader so (a first read answered
    whole); a check in place would be taken as settled by an earlier one."""
    return reader.supports_ranges is False


async def _plan_ranges(obj: ObjectRef, spool: Spool, cut: Callable[[], None] | None = None) -> bool:
    """Fetch what the object's scanner will read into `spool`; False: it needs the rest.
    `cut`: the tapped stream is the object's first read, to be cut when ranges are cheap."""
    assert obj.reader is not None
    size = spool.size
    tail = end_read(obj.name, size)
    head = head_read(obj.name, size)
    if size <= head + tail:
        await spool.fetch(0, size)
        return True
    if _refuses_ranges(obj.reader):
        # said before any read (Accept-Ranges: none, or a first read answered whole): the
        # download is the plan
        return False
    wanted = has_model_extension(obj.name) and obj.reader.supports_ranges is not False
    # ranges the plan's first round fetches beside what its parser asks for
    beside: list[tuple[int, int]] = []
    if spool.tap is not None:
        fmt, beside = await _head_off_stream(obj, spool, spool.tap, wanted, cut)
    else:
        # head and tail in one round: every planned format reads the end (the appended-zip
        # check, a zip's directory)
        ranges = [(0, head), (size - tail, size)] if wanted else [(0, head)]
        await spool.fetch_many(ranges)
        fmt = sniff_head(spool.get(0, HEAD_SIZE), obj.name, size)
    if obj.reader.supports_ranges is False:
        return False
    if (
        fmt is None
        and not wanted
        and await anyio.to_thread.run_sync(_nobody_wants, obj, spool.path)
    ):
        return True
    try:
        return await plan(spool, fmt, beside)
    except FetchError:
        raise
    except Exception:
        log.debug("range planner failed on %s; downloading it", obj.uri, exc_info=True)
        return False


async def _head_off_stream(
    obj: ObjectRef, spool: Spool, tap: Tap, wanted: bool, cut: Callable[[], None] | None = None
) -> tuple[str | None, list[tuple[int, int]]]:
    """The head off a tapped stream, the object's format, and what the plan's first round
    is to fetch beside its own needs (the tail, once the stream is cut). A format the
    planner serves gets its tail by one ranged read beside the stream (every planned format reads the end:
    the appended-zip check, a zip's directory), since the stream brings it last and the
    scan would wait for all of it, when the stream's first buffer came quickly enough to
    say that a request costs little there (`BESIDE_WITHIN`); otherwise the tail is taken
    when the stream gets there. With `cut` (the stream is only the object's first read),
    ranged reads cheap next to the rest of the stream cut it, and the tail and the plan are
    read by ranges: the tail beside the plan's first round (a round trip of its own before
    the walk's first jump cost a twentieth of a 1 GiB model's scan at 50 ms)."""
    size = spool.size
    tail = (size - end_read(obj.name, size), size)
    began = time.monotonic()
    await spool.fetch_many([(0, head_read(obj.name, size))])
    quick = time.monotonic() - began < BESIDE_WITHIN
    fmt = sniff_head(spool.get(0, HEAD_SIZE), obj.name, size)
    assert obj.reader is not None
    planned = (fmt or "") in PLANS
    if cut is not None:
        if (
            planned
            and obj.reader.supports_ranges is not False
            and await _ranges_cheap(spool, tap, fmt)
        ):
            cut()
            return fmt, [tail]
        tap.ask([tail], hold=False)
        return fmt, []
    if quick and wanted and obj.reader.supports_ranges is not False and planned:
        await spool.fetch_many([tail], by_range=True)
    else:
        tap.ask([tail], hold=False)
    return fmt, []


def _streams_first(obj: ObjectRef, spool: Spool) -> bool:
    """Whether the object's first read is a whole-object stream (see the module's doc): a
    large one whose plan walks it, unless the link's figures are pinned and say ranges are
    cheap (what a test or a user who knows the link sets)."""
    assert obj.reader is not None
    if spool.size < STREAM_FIRST_FROM or obj.reader.supports_ranges is False:
        return False
    if extension_format(obj.name) != Format.ONNX:
        return False
    link = spool.link
    return not (link.pinned and WALK_ROUNDS * link.latency < spool.size / link.bandwidth)


async def _ranges_cheap(spool: Spool, tap: Tap, fmt: str | None) -> bool:
    """Whether a walk by ranged reads costs less than the rest of the stream, as the stream
    measured the link: the time to its response (a round trip, or an endpoint that reads the
    whole object before answering) and its rate over the buffers the fill reads ahead while
    the planner holds the stream (a first buffer alone comes slow from a connection just
    opened, or fast from the sockets' buffers). The walk is projected from the head (how
    many records, `range_plan.walk_records`, at those figures: `walk_seconds`). The link
    keeps the latency and, as a short sample, the rate, for the walk's ranged reads, whose
    own measured costs then decide whether it goes on (range_plan)."""
    link = spool.link
    records = await walk_records(spool, fmt)
    parallel = walk_parallel(spool)
    if link.pinned:
        latency, bandwidth = link.latency, link.bandwidth
        steady = bandwidth
    else:
        if tap.opened is None:
            return False
        latency = max(0.0, tap.opened - tap.began)
        waited = 0.0
        # (a walk cheaper than the rest of the stream even at the fastest rate needs no rate)
        fastest = (spool.size - tap.passed) / MAX_BANDWIDTH
        walk = walk_seconds(records, latency, MAX_BANDWIDTH, link.concurrency, parallel)
        while walk >= fastest and waited < MEASURE_WITHIN and not tap.ended:
            last = tap.last_arrival
            if last is not None and last[1] >= BUFFERS * BUFFER:
                break
            await anyio.sleep(0.01)
            waited += 0.01
        first, last = tap.first_arrival, tap.last_arrival
        if first is None or last is None:
            return False
        if last[1] > first[1] and last[0] > first[0]:
            bandwidth = steady = (last[1] - first[1]) / (last[0] - first[0])
            prev = tap.prev_arrival
            if prev is not None and prev != first and last[1] > prev[1] and last[0] > prev[0]:
                # the latest buffer's own rate, if higher: a connection just opened is still
                # widening its window (50 ms away, the first buffers come at half the rate)
                bandwidth = max(bandwidth, (last[1] - prev[1]) / (last[0] - prev[0]))
        else:
            bandwidth = steady = first[1] / max(first[0] - tap.opened, 1e-6)
        bandwidth = min(MAX_BANDWIDTH, bandwidth)
        # The stream is kept only if it wins at its rate across the buffers read ahead: the
        # latest buffer alone may have come out of the sockets' backlog (2.5 GB/s and more
        # on a link that streamed the rest at 1 GB/s), and a kept stream cannot be left.
        steady = min(MAX_BANDWIDTH, steady)
        # The stream's rate stands in for the prior, weighed as a short read: buffers the
        # fill read ahead came partly out of the sockets' buffers, faster than the link, so
        # a ranged read of its own (the walker's probe) outweighs it. Its time to answer is
        # not taken for a ranged read's: an endpoint may answer a whole-object GET at once
        # and read the whole object for every ranged one; the walk's first reads measure it.
        link.observe(0.0, MIN_SAMPLE, MIN_SAMPLE / bandwidth, alone=False)
    walk = walk_seconds(records, latency, steady, link.concurrency, parallel)
    cheap = walk < STREAM_DOUBT * (spool.size - tap.passed) / steady
    log.debug(
        "%s: stream answered in %.3fs at %.0f MB/s (%.0f at its peak); a walk of %d records "
        "%.3fs; %s",
        spool.uri,
        latency,
        steady / 1e6,
        bandwidth / 1e6,
        records,
        walk,
        "reading ranges instead" if cheap else "kept",
    )
    return cheap


async def _plan_from_stream(
    obj: ObjectRef, spool: Spool, tg: anyio.abc.TaskGroup, keep: bool = True
) -> Callable[[], Awaitable[None]] | None:
    """--hash-remote without a published sha256: every byte comes anyway, so the object
    streams once through the hasher from its first byte and the plan's reads are taken off
    that stream as it passes (engine/tap.py): nothing written but what the scanner reads
    (the tail, which a forward stream brings last, is one ranged read beside it). A plan
    that declines takes the rest of the stream whole.

    Not `keep` (`_streams_first`: the stream is the object's first read, nobody needs its
    hash): the stream is cut when ranged reads turn out cheap after its head, and once the
    plan is served; a plan that declines takes the rest off the stream while it is held near
    its start (a head no planner serves), else cuts it and streams the rest in one request.

    Returns once the plan is served: None if the stream is over too, else what waits for
    it (it goes on in `tg`, only hashing; the spool must stay open until it ends)."""
    tap = Tap(spool.fd)
    spool.tap = tap
    failures: list[Exception] = []
    over = anyio.Event()
    planning = anyio.CancelScope()
    streaming = anyio.CancelScope()

    async def stream() -> None:
        try:
            with streaming:
                await spool.stream_tapped(tap)
        except Exception as exc:
            if not streaming.cancel_called:
                failures.append(exc)
                planning.cancel()
        finally:
            over.set()

    def cut() -> None:
        tap.release(drop=True)
        spool.tap = None
        if not over.is_set():
            streaming.cancel()
            if spool.hasher is not None:
                import hashlib

                # the stream's hasher saw its first bytes; what follows hashes from the start
                spool.hasher = hashlib.new(spool.hasher.name)

    tg.start_soon(stream)
    served = False
    try:
        with planning:
            if await _plan_ranges(obj, spool, None if keep else cut):
                # the scanner has what it reads: the stream writes nothing more
                tap.release(drop=True)
                served = True
            elif keep:
                await spool.fetch_many([(0, spool.size)])
            elif spool.tap is tap and tap.passed <= MAX_REQUEST:
                # (a head no planner serves: the stream is held near its start) the rest
                # off the stream, what it passed in one ranged read
                await spool.fetch_many([(0, spool.size)])
                served = True
            else:
                # one request for the rest, not ranged reads of what the stream passed
                cut()
                await spool.stream_rest(0)
                served = True
    finally:
        tap.release()
        spool.tap = None
        if not keep and not over.is_set():
            arrived = tap.last_arrival
            if not served or arrived is None or arrived[1] < spool.size:
                # the scan has what it reads; nobody needs the rest of the stream (one
                # whose every byte arrived ends: its hash is worth the wait)
                streaming.cancel()
            with anyio.CancelScope(shield=True):
                await over.wait()
    if failures:
        raise failures[0]
    if planning.cancelled_caught:
        raise FetchError(f"{obj.uri}: the stream ended before the bytes the scan reads")

    async def rest() -> None:
        await over.wait()
        if failures:
            raise failures[0]

    if over.is_set():
        return None
    return rest


async def _conclude(obj: ObjectRef, spool: Spool, config: ScanConfig) -> None:
    """Everything fetched: the digests and the bytes moved go into the object's metadata."""
    complete = not spool.missing(0, spool.size)
    if (digest := spool.digest()) is not None:
        obj.metadata["sha256_streamed"] = digest
    spool.close()
    if config.hashes:
        await _record_digests(obj, spool.path, complete)
    obj.metadata["bytes_transferred"] = spool.transferred


@asynccontextmanager
async def acquire(
    obj: ObjectRef,
    config: ScanConfig,
    limiter: anyio.CapacityLimiter | None = None,
    on_bytes: OnBytes | None = None,
    folders: SpoolFolders | None = None,
) -> AsyncIterator[Fetched]:
    """Yield a local path holding what the scanner needs of `obj` (`Fetched.path`); await
    `Fetched.settled()` before recording the file's result.

    `limiter` (the engine's fetch limiter) is held only while bytes move, not while the
    caller scans the spool (a hash stream still running holds it until it ends). Records
    the bytes moved in `obj.metadata["bytes_transferred"]`; `on_bytes` hears of each piece
    as it lands (download progress). With `folders` the spool lives in one of the call's
    reusable folders, else in a folder of its own. Leaving without `settled` stops a stream
    still running (nobody needs its hash).
    """
    if obj.local_path is not None:
        yield Fetched(obj.local_path)
        return
    assert obj.reader is not None
    folder = folders.take() if folders is not None else tempfile.mkdtemp(prefix="modelaudit-")
    path = os.path.join(folder, _safe_basename(obj.uri))
    ended = False
    spool: Spool | None = None
    token = object()
    held = [False]

    def let_go() -> None:
        if held[0] and limiter is not None:
            held[0] = False
            limiter.release_on_behalf_of(token)

    # raised after the task group, not wrapped in an exception group
    failure: Exception | None = None
    try:
        async with anyio.create_task_group() as tg:
            fetched: Fetched | None = None
            try:
                if limiter is not None:
                    await limiter.acquire_on_behalf_of(token)
                    held[0] = True
                if obj.size is None:
                    moved = await _stream_whole(
                        obj, path, config.max_file_size or 0, config.hashes, on_bytes
                    )
                    if config.hashes:
                        await _record_digests(obj, path, True)
                    obj.metadata["bytes_transferred"] = moved
                    fetched = Fetched(path)
                else:
                    spool = Spool(obj.reader, path, obj.size, obj.uri, on_bytes)
                    rest = await _fill_spool(obj, spool, config, tg)
                    # what the listing's first reads brought and nobody took
                    obj.reader.drop_held()
                    if rest is None:
                        await _conclude(obj, spool, config)
                        fetched = Fetched(path)
                    else:
                        streaming = spool

                        async def finish() -> None:
                            try:
                                await rest()
                            finally:
                                let_go()
                            await _conclude(obj, streaming, config)

                        fetched = Fetched(path, finish)
                if not fetched.streaming:
                    let_go()
            except Exception as exc:
                failure = exc
                tg.cancel_scope.cancel()
            if fetched is not None and failure is None:
                try:
                    yield fetched
                except Exception as exc:
                    failure = exc
                if not fetched.done:
                    tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        ended = True
    finally:
        let_go()
        obj.reader.drop_held()
        if spool is not None:
            spool.close()
        if folders is None:
            shutil.rmtree(folder, ignore_errors=True)
        elif ended:
            folders.give(folder, path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


async def _fill_spool(
    obj: ObjectRef, spool: Spool, config: ScanConfig, tg: anyio.abc.TaskGroup
) -> Callable[[], Awaitable[None]] | None:
    """Land in `spool` what the scanner reads (and hash it all when asked); returns what
    waits for a hash stream still running, if any (`_plan_from_stream`)."""
    assert obj.reader is not None
    download = config.hashes and config.hash_remote
    if download:
        # asked to hash: only a digest the provider publishes saves a download
        download = "sha256" not in await _published(obj)
    if download or (config.hashes and "sha256" not in obj.reader.digests):
        import hashlib

        # hashed in the pass that fills it, should the object come whole
        spool.hasher = hashlib.sha256()
    if download and (spool.size <= TAP_ABOVE or obj.reader.supports_ranges is False):
        await spool.stream_rest(0)
    elif download:
        return await _plan_from_stream(obj, spool, tg)
    elif _streams_first(obj, spool):
        if spool.hasher is not None and "sha256" in await _published(obj):
            # the stream may bring every byte, but the provider's sha256 is the report's:
            # hashing a GiB would only compete with the stream for the CPU
            spool.hasher = None
        await _plan_from_stream(obj, spool, tg, keep=False)
    elif not await _plan_ranges(obj, spool):
        await spool.stream_rest(0)
    return None
