"""What the engine needs from a source of model files, local or remote.

A `Source` turns one target (a path, a bucket prefix, a repo) into `ObjectRef`s, lazily, so a
sweep of a million objects starts scanning at once. A remote object carries an `ObjectReader`
that can fetch byte ranges or stream the whole object; the engine decides which to use.

Each reader supplies one ranged request (`open`) and says which failures are worth another
try (`is_transient`); ranged reads, whole-object streams, resuming a cut body at the last byte
received, skipping what a server that ignores Range sends first, and the retry budget are
written once, here.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from . import backoff
from .errors import (
    AuthenticationError,
    ChecksumMismatch,
    FetchError,
    ObjectChanged,
    ObjectTooLarge,
    TargetNotFound,
    TransientFetchError,
    UnsupportedTarget,
)

__all__ = [
    "AuthenticationError",
    "BlockingBody",
    "Body",
    "BufferSink",
    "ChecksumMismatch",
    "FailedReader",
    "FetchError",
    "Held",
    "Hold",
    "ObjectChanged",
    "ObjectReader",
    "ObjectRef",
    "ObjectTooLarge",
    "RetryStatus",
    "ShownFailure",
    "Source",
    "TargetNotFound",
    "TransientFetchError",
    "UnsupportedTarget",
]

#: Reopenings of one read that each made progress; a server cutting every few bytes ends here.
MAX_RESUMES = 1000
#: What readers ask their client library for at a time.
READ_SIZE = 1 << 20


class Body(NamedTuple):
    """An open response: `offset` is where its first byte sits in the object (the requested
    start, or 0 when the server ignored Range and sent everything)."""

    offset: int
    chunks: AsyncIterator[bytes]


class _Cut(Exception):
    """A body ended before the bytes asked for: resume from where it stopped."""


class ShownFailure(OSError):
    """A raw failure worth another try whose message is safe to show as it is when the
    retries run out; a library's failures are shown by their type alone."""

    #: tries after which a read gives up when it fails this way (None: `backoff.ATTEMPTS`)
    attempts: int | None = None


class RetryStatus(ShownFailure):
    """A status worth another try (429, 5xx) met by a blocking request: shown as it is
    ("HTTP 503") when the retries run out."""

    def __init__(self, message: str, retry_after: str | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BlockingBody(NamedTuple):
    """An open response read from a thread: `readinto` fills a buffer and returns how many
    bytes it put there (0 at the end); `abort`, from another thread, unblocks it."""

    offset: int
    readinto: Callable[[memoryview], int]
    abort: Callable[[], None]
    #: seconds the response took to open before this read took it (one opened ahead, by
    #: the listing: what its round trip cost, for the endpoint's measured latency)
    waited: float = 0.0


class Held(NamedTuple):
    """Bytes a reader already has from a response its listing got (`ObjectReader.held`),
    with what that response cost: `first` seconds to its first byte, `seconds` in all."""

    data: bytes
    first: float
    seconds: float


class Piece(NamedTuple):
    """The body of one read a listing sent (in place of a HEAD), kept for `held`: where it
    starts in the object, its bytes, and what it cost (`Held.first`, `Held.seconds`)."""

    start: int
    data: bytes
    first: float
    seconds: float


def held_from(pieces: list[Piece], start: int, end: int) -> Held | None:
    """Bytes [start, end) out of `pieces`, or None unless they hold every one of them."""
    out = bytearray()
    first = seconds = 0.0
    pos = start
    for piece in sorted(pieces, key=lambda p: p.start):
        at, data = piece.start, piece.data
        if at <= pos < at + len(data):
            part = data[pos - at : min(end, at + len(data)) - at]
            out += part
            pos += len(part)
            first, seconds = max(first, piece.first), max(seconds, piece.seconds)
        if pos >= end:
            return Held(bytes(out), first, seconds)
    return None


class Opened(Protocol):
    """A response a listing opened ahead: `waited`, the seconds it took to open."""

    @property
    def waited(self) -> float: ...


Ahead = TypeVar("Ahead", bound=Opened)


class FirstReads(ABC, Generic[Ahead]):
    """What a reader keeps of its listing's first reads (sent in place of a HEAD): the
    bodies of ranged reads (`Piece`s) and a whole-object response from byte 0 whose body is
    not read yet (`Ahead`: the fetcher's own), served by `held` without a request. Mixed
    into an `ObjectReader` before it."""

    _held: list[Piece]
    _ahead: Ahead | None

    def _init_first_reads(self) -> None:
        self._held = []
        self._ahead = None
        # (an HTTP fill takes the response opened ahead from a thread of its own)
        self._ahead_lock = threading.Lock()

    def _take_ahead(self) -> Ahead | None:
        with self._ahead_lock:
            ahead, self._ahead = self._ahead, None
        return ahead

    @abstractmethod
    async def _head_off(self, ahead: Ahead, end: int) -> Held | None:
        """Bytes [0, end) read off the response opened ahead, which is closed after."""

    @abstractmethod
    def _close_ahead(self, ahead: Ahead) -> None:
        """Close the response opened ahead, its body unread."""

    def holding(self) -> bool:
        return bool(self._held) or self._ahead is not None

    def held_span(self, start: int, end: int) -> tuple[int, int]:
        pos = stop = -1
        for piece in sorted(self._held, key=lambda p: p.start):
            if piece.start > stop:
                if pos <= start and end <= stop:
                    break
                pos = piece.start
            stop = max(stop, piece.start + len(piece.data))
        if pos <= start and end <= stop:
            return pos, stop
        return start, end

    def ahead_waited(self, start: int) -> float:
        ahead = self._ahead
        return ahead.waited if start == 0 and ahead is not None else 0.0

    async def held(self, start: int, end: int) -> Held | None:
        if self._held and (got := held_from(self._held, start, end)) is not None:
            return got
        if start == 0 and self._ahead is not None:
            ahead = self._take_ahead()
            if ahead is not None:
                # the head off the response opened ahead; the rest goes by ranges
                return await self._head_off(ahead, end)
        return None

    def drop_held(self) -> None:
        self._held = []
        ahead = self._take_ahead()
        if ahead is not None:
            self._close_ahead(ahead)


class Hold(Protocol):
    """Work whose blocking requests a stop from another thread ends (a round of reads,
    engine/rounds.py; a fill, engine/fill.py; a listing's first reads): each request's
    connection is held here from before it connects until released, so the stop aborts it
    wherever it blocks, connecting, sending or reading."""

    #: the connections are kept alive from one request to the next (a round's reads, many
    #: small ones), taken from and given back to the reader's; else closed after one response
    keep_alive: bool

    def hold(self, conn: object, abort: Callable[[], None]) -> None:
        """`conn` is in use until `drop`; `abort` unblocks it from another thread. Raises
        `FetchError` once stopped."""

    def drop(self, conn: object) -> None:
        """`conn` is no longer in use."""

    def stopped(self) -> bool:
        """Whether the work was called off."""


class BufferSink(Hold, Protocol):
    """Where `ObjectReader.pump` puts what it reads (engine/fill.py): buffers to read into,
    handed back full, in order; it holds the connections the reads use (`Hold`)."""

    def take(self) -> memoryview:
        """An empty buffer (waits for one while all are being written)."""

    def put(self, buf: memoryview, start: int, stop: int, at: int) -> None:
        """`buf[start:stop]` (a buffer from `take`, handed back) holds the object's bytes
        from `at` on (nothing when start == stop)."""

    def opened(self, body: BlockingBody | None) -> None:
        """The body now being read (None: none), so that a stop can abort it."""

    def wait(self, seconds: float) -> bool:
        """Pause before another try; True when the fill was called off meanwhile."""


class Resumes:
    """The retry budget of one read: a reopening after progress is free (up to
    `MAX_RESUMES`); `backoff.ATTEMPTS` failures in a row that bring nothing end the read."""

    def __init__(self, reader: ObjectReader) -> None:
        self.reader = reader
        self.failures = 0
        self.resumes = 0

    def check_goal(self, pos: int, end: int | None) -> None:
        goal = end if end is not None else self.reader.size
        if goal is not None and pos < goal:
            raise _Cut(f"body ended at byte {pos} of {goal}")

    def failed(self, exc: Exception, progressed: bool) -> float:
        """Seconds to wait before reopening; raises the read's final error."""
        if not isinstance(exc, _Cut) and not self.reader.is_transient(exc):
            raise self.reader.fetch_error(exc) from None
        last = str(exc) if isinstance(exc, _Cut | ShownFailure) else type(exc).__name__
        if progressed and self.resumes < MAX_RESUMES:
            self.resumes += 1
            self.failures = 0
            return 0.0
        self.failures += 1
        attempts = getattr(exc, "attempts", None) or backoff.ATTEMPTS
        if self.failures >= attempts:
            raise TransientFetchError(
                f"{self.reader.shown}: {last} after {self.failures} attempts"
            ) from None
        return backoff.delay(self.failures - 1, getattr(exc, "retry_after", None))


def _pump_body(
    reader: ObjectReader, body: BlockingBody, at: list[int], end: int | None, sink: BufferSink
) -> None:
    """Read one open body into the sink's buffers from `at[0]`, which follows what landed
    (also when the body breaks off)."""
    pos = at[0]
    if body.offset > pos:
        raise FetchError(f"{reader.shown}: the server sent a wrong range")
    skip = pos - body.offset
    if skip:
        reader.supports_ranges = False
    while end is None or pos < end:
        buf = sink.take()
        want = len(buf) if end is None else min(len(buf), end - pos + skip)
        filled = 0
        try:
            while filled < want:
                n = body.readinto(buf[filled:want])
                if not n:
                    break
                filled += n
        finally:
            first = min(skip, filled)
            skip -= first
            sink.put(buf, first, filled, pos)
            pos += filled - first
            at[0] = pos
        if filled < want:
            break


class ObjectReader(ABC):
    """Byte access to one remote object.

    `supports_ranges` is False once the server is known to ignore ranges; the engine then
    downloads the object once instead of planning ranged reads. `size`, when known (from the
    listing or the first response), bounds every read.
    """

    supports_ranges: bool | None = None
    size: int | None = None
    #: how messages name the object (never a signed or redirected URL)
    shown: str = "object"
    #: where its requests go (a host, a storage service): the engine measures what requests
    #: to one endpoint cost and plans reads accordingly
    endpoint: str = ""

    @abstractmethod
    def open(self, start: int, end: int | None) -> AbstractAsyncContextManager[Body]:
        """One request for bytes [start, end) (to the end of the object when `end` is None).

        Failures the client already retried, and every final one, are raised as `FetchError`;
        anything else raised while opening or reading the body is judged by `is_transient`.
        """

    def is_transient(self, exc: BaseException) -> bool:
        """Whether a raw failure (reset, timeout, 5xx, cut body) deserves another request."""
        return isinstance(exc, OSError | TimeoutError)

    def fetch_error(self, exc: BaseException) -> FetchError:
        """A raw failure as a message safe to show."""
        if isinstance(exc, FetchError):
            return exc
        return FetchError(f"{self.shown}: {type(exc).__name__}")

    async def _chunks(self, start: int, end: int | None) -> AsyncGenerator[bytes, None]:
        """Bytes [start, end) as they arrive; a cut body resumes at the last byte received
        (`Resumes` keeps the count)."""
        pos = start
        tries = Resumes(self)
        while True:
            before = pos
            try:
                async with self.open(pos, end) as body:
                    if body.offset > pos:
                        raise FetchError(f"{self.shown}: the server sent a wrong range")
                    skip = pos - body.offset
                    if skip:
                        self.supports_ranges = False
                    async for chunk in body.chunks:
                        if skip:
                            if len(chunk) <= skip:
                                skip -= len(chunk)
                                continue
                            chunk, skip = chunk[skip:], 0
                        if end is not None and pos + len(chunk) >= end:
                            exact = pos + len(chunk) == end
                            chunk = chunk[: end - pos]
                            pos += len(chunk)
                            if chunk:
                                yield chunk
                            if exact:
                                # read on to the body's end (at once, for a server that sent
                                # just the range), so its connection is reused, not closed
                                async for _extra in body.chunks:
                                    break
                            return
                        pos += len(chunk)
                        yield chunk
                tries.check_goal(pos, end)
                return
            except FetchError:
                raise
            except Exception as exc:
                pause = tries.failed(exc, pos > before)
            if pause:
                import anyio

                await anyio.sleep(pause)

    def pump(self, start: int, end: int | None, sink: BufferSink) -> int:
        """Blocking: bytes [start, end) (to the end when None) read straight into the sink's
        buffers through `open_blocking`, a cut body resumed like `chunks` does; returns
        where it stopped. For a thread of its own: a whole-object fill, or one read of a
        round (its connection kept alive for the next read: `Hold.keep_alive`)."""
        if self.size is not None and end is not None:
            end = min(end, self.size)
        at = [start]
        tries = Resumes(self)
        while True:
            before = at[0]
            try:
                with self.open_blocking(at[0], end, sink) as body:
                    sink.opened(body)
                    _pump_body(self, body, at, end, sink)
                    tries.check_goal(at[0], end)
                    return at[0]
            except FetchError:
                raise
            except Exception as exc:
                if sink.stopped():
                    raise
                pause = tries.failed(exc, at[0] > before)
            finally:
                sink.opened(None)
            if pause and sink.wait(pause):
                raise FetchError(f"{self.shown}: stopped")

    def blocking_fills(self) -> bool:
        """Whether `open_blocking` serves this object (then whole-object fills and rounds of
        ranged reads use `pump`)."""
        return False

    def open_blocking(
        self, start: int, end: int | None, hold: Hold | None = None
    ) -> AbstractContextManager[BlockingBody]:
        """Like `open`, blocking, for a thread: readers whose client reads faster outside
        the event loop (into the caller's buffers, no copy) supply it and `blocking_fills`.
        The connection is held in `hold` from before it connects until released; with
        `hold.keep_alive` it is taken from and, once its body was read to the end, given
        back to the reader's kept-alive connections."""
        raise NotImplementedError

    def holding(self) -> bool:
        """Whether `held` may have bytes (a listing that took its size from a first read)."""
        return False

    def held_span(self, start: int, end: int) -> tuple[int, int]:
        """The widest range around [start, end) that `held` serves whole (what a first
        read brought beyond it is as free as the rest), else [start, end)."""
        return start, end

    def ahead_waited(self, start: int) -> float:
        """Seconds the response a read from `start` will be served by took to open, when
        the listing opened it ahead (its round trip, not the moment the read takes it: what
        a stream's time to answer is measured by); else 0."""
        return 0.0

    async def held(self, start: int, end: int) -> Held | None:
        """Bytes [start, end) this reader already holds from a response its listing got
        (the size and validators taken from the object's first read, not from a HEAD before
        it), served without a request; None when it does not hold them all."""
        return None

    def drop_held(self) -> None:  # noqa: B027 - optional hook
        """Let go of what `held` would serve (and any response opened ahead)."""

    def chunks(self, start: int, end: int | None) -> AsyncGenerator[bytes, None]:
        """Bytes [start, end) (to the end when None) as they arrive off the network, resuming
        a cut body where it stopped; for callers that land them somewhere themselves."""
        if self.size is not None and end is not None:
            end = min(end, self.size)
        return self._chunks(start, end)

    async def published_digests(self) -> dict[str, str]:
        """Digests of the whole object that its provider publishes, by algorithm (`sha256`,
        `md5`, `sha1`, `crc32c`; lowercase hex).
        Empty when the provider publishes none. May ask the provider (one small request);
        `digest_source` then says where they come from."""
        return dict(self.digests)

    #: what the listing already said about the object's content (see `published_digests`);
    #: readers that know some set their own dict
    digests: dict[str, str] = {}
    #: where `digests` come from, naming the algorithms (e.g. "Hugging Face LFS sha256")
    digest_source: str = ""

    async def read_range(self, start: int, end: int) -> bytes:
        """Bytes [start, end) of the object, clipped to its size."""
        if self.size is not None:
            end = min(end, self.size)
        if end <= start:
            return b""
        out = bytearray()
        async for chunk in self._chunks(start, end):
            out += chunk
        if len(out) != end - start:
            raise TransientFetchError(
                f"{self.shown}: short read ({len(out)} of {end - start} bytes at {start})"
            )
        return bytes(out)

    async def stream(self, chunk_size: int = 1 << 20) -> AsyncGenerator[bytes, None]:
        """The whole object, in pieces as they arrive off the network, none over `chunk_size`."""
        async for chunk in self._chunks(0, None):
            for i in range(0, len(chunk), chunk_size):
                yield chunk[i : i + chunk_size]

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections held for this object."""


class FailedReader(ObjectReader):
    """An object that cannot be had: the error surfaces as that file's error, the sweep
    goes on."""

    def __init__(self, error: FetchError) -> None:
        self.error = error

    @asynccontextmanager
    async def open(self, start: int, end: int | None) -> AsyncIterator[Body]:
        raise self.error
        yield  # pragma: no cover - makes this a generator


@dataclass
class ObjectRef:
    """One file to scan.

    `uri` is how findings name the file (the path as the user gave it, or the remote URI).
    Exactly one of `local_path` and `reader` is set. A listing also names what it will not
    hand over, so nothing it meets vanishes from the report: `skipped` (why this entry is not
    scanned: excluded, not a regular file) or `error` (this part of the listing failed, e.g.
    a folder that cannot be read). `etag` is what pins the content the reader reads (an
    ETag, a generation, a commit), when the fetcher has one. `locator` is plain data from
    which the source's `reopen` rebuilds the object on another machine (a cluster node)
    without listing again: a key, a path, a commit, never a credential or a signed URL.
    """

    uri: str
    size: int | None = None
    etag: str | None = None
    local_path: str | None = None
    reader: ObjectReader | None = None
    explicit: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    error: str | None = None
    locator: dict[str, Any] | None = None
    #: A local file's status as the listing saw it (what `--cache` identifies it by, so the
    #: run does not stat it again on its event loop).
    stat: os.stat_result | None = None

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]

    @property
    def is_remote(self) -> bool:
        return self.local_path is None


class Source(ABC):
    """A target resolved to something that can list its objects."""

    target: str

    @abstractmethod
    def objects(self) -> AsyncIterator[ObjectRef]:
        """Every object under the target, lazily; raises `FetchError` for the whole target."""

    async def reopen(self, obj: ObjectRef) -> ObjectRef | None:
        """`obj`, listed by this target's source elsewhere (with its `locator`), with a
        reader of this process's own, using this process's credentials. None: this source
        cannot, and the target must be listed again to find the object."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients and sessions."""


def content_range(value: str) -> tuple[int, int] | None:
    """(first byte, object size) of a Content-Range `bytes FIRST-LAST/SIZE` (S3, GCS)."""
    try:
        _unit, _, rest = value.partition(" ")
        span, _, total = rest.partition("/")
        return int(span.partition("-")[0]), int(total)
    except ValueError:
        return None


def b64_to_hex(value: str | None) -> str | None:
    """A base64 digest (S3 ChecksumSHA256, GCS md5Hash/crc32c) as lowercase hex."""
    if not value:
        return None
    import base64
    import binascii

    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


Pinned = TypeVar("Pinned", str, int)


def pinned(current: Pinned | None, seen: Pinned | None, what: str, uri: str) -> Pinned | None:
    """What identifies the object (`what`: its ETag, generation or size) once an answer said
    `seen`: the first answer pins it; a later one that says otherwise is a change."""
    if current is None:
        return seen
    if seen is not None and seen != current:
        raise ObjectChanged(f"{uri}: the object changed while being read ({what})")
    return current


class StoreFirstReads(Protocol):
    """What `send_first_reads` asks of an object store's reader (S3, GCS)."""

    async def read_ahead(self, start: int, length: int) -> None: ...

    async def published_digests(self) -> Any: ...

    async def aclose(self) -> None: ...


async def send_first_reads(
    reader: StoreFirstReads,
    key: str,
    digests: bool,
    whole: Callable[[], Awaitable[None]] | None = None,
) -> tuple[list[Exception], list[Exception]]:
    """A listing's first reads of its only key (S3, GCS), for `decide_first_reads`: the
    head and the end in parallel, as much of each as the key's name may want at any size, with the metadata request beside them when
    the report wants published `digests` (it decides nothing: asked again then), or the
    whole object's read instead (`whole`, S3's `open_ahead`). Returns the head's (or whole read's) failures and the
    end's. Cancelled meanwhile, the reader is closed (its hold on the store's client would
    otherwise keep that client open for good)."""
    import anyio

    from ..formats.format import head_read, unsized_end_read

    tail = unsized_end_read(key)
    failures: list[Exception] = []
    aside: list[Exception] = []
    ignored: list[Exception] = []

    async def read(into: list[Exception], call: Callable[..., Any], *args: int) -> None:
        try:
            await call(*args)
        except Exception as exc:
            into.append(exc)

    try:
        if whole is not None:
            await read(failures, whole)
        else:
            async with anyio.create_task_group() as tg:
                tg.start_soon(read, failures, reader.read_ahead, 0, head_read(key))
                tg.start_soon(read, aside, reader.read_ahead, -tail, tail)
                if digests:
                    tg.start_soon(read, ignored, reader.published_digests)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await reader.aclose()
        raise
    return failures, aside


async def decide_first_reads(
    reader: ObjectReader,
    failures: list[Exception],
    aside: list[Exception],
    *,
    shown: str,
    missing: Callable[[Exception], bool],
    refusal: Callable[[Exception], FetchError],
    pinned: Callable[[], bool],
    single: Callable[[], ObjectRef],
) -> tuple[bool, ObjectRef | None]:
    """What a listing's first reads of its only key decided (S3, GCS): the head read's
    failures are in `failures`, the end read's in `aside`.

    (True, the object: `single()`); (True, None): no such key (`missing`), the listing looks
    for a prefix; (False, None): the store's metadata request decides (a failure its retries
    may get past). A refusal (`refusal` gives an `AuthenticationError`) is raised as that
    request would raise it. An `ObjectChanged` means the first answer pinned the object
    (`pinned`): the reads that follow report the change. The reader is closed unless the
    object is handed over."""
    decided: tuple[bool, ObjectRef | None] | None = None
    for failure in failures + aside:
        if missing(failure):
            decided = (True, None)
            break
        error = refusal(failure)
        if isinstance(error, AuthenticationError):
            await reader.aclose()
            raise error from None
    if decided is None and any(isinstance(exc, ObjectChanged) for exc in failures + aside):
        reader.drop_held()
        if pinned():
            decided = (True, single())
    if decided is None and not failures and reader.size is not None:
        # (an end read that failed alone: acquisition reads the end itself)
        decided = (True, single())
    if decided is None or decided[1] is None:
        await reader.aclose()
    if decided is None:
        import logging

        logging.getLogger("modelaudit").debug("first reads of %s failed: %r", shown, failures)
        return False, None
    return decided
