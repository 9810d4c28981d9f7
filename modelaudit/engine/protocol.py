"""Messages between the parent and its worker processes.

A frame is a 4-byte little-endian length followed by a pickle. The parent reads worker frames
with an unpickler that refuses every global, so a worker subverted by a hostile file can send
data but never code: results and issues travel as plain tuples, and whatever a scanner put in
`details` or `metadata` is reduced to plain data (dicts, lists, strings, numbers) first.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import struct
from collections.abc import Iterator
from typing import Any, Final

from ..findings import FileStatus, Issue, IssueSeverity, ScanResult
from .positional import read_at

_HEADER = struct.Struct("<I")
#: Largest frame either side accepts; a longer one means a broken or subverted peer.
MAX_FRAME = 256 * 1024 * 1024
#: Call profiles (settings and registry) a worker keeps; the parent mirrors the eviction.
PROFILES_KEPT = 32
#: Plain-data nodes kept from one `details`/`metadata` value; the rest becomes a marker.
PLAIN_BUDGET = 20_000


#: A worker's progress record: the id of the job it started last and when (`time.monotonic`,
#: one clock for every process of the machine).
PROGRESS = struct.Struct("<qd")


class ProtocolError(Exception):
    """A peer sent something that is not a well-formed message."""


def frame(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) > MAX_FRAME:
        raise ProtocolError(f"message of {len(data)} bytes exceeds the frame limit")
    return _HEADER.pack(len(data)) + data


class _RecordWriter:
    """Pickles result records without a memo (`Pickler.fast`): a record then never refers
    back into itself, so the parent reads a message's records with one unpickler
    (`result_frames`). Results are trees of plain values (`plain`), never cyclic."""

    __slots__ = ("buffer", "pickler")

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.pickler = pickle.Pickler(self.buffer, pickle.HIGHEST_PROTOCOL)
        self.pickler.fast = True

    def __call__(self, message: object) -> bytes:
        buffer = self.buffer
        buffer.seek(0)
        buffer.truncate()
        self.pickler.dump(message)
        data = buffer.getvalue()
        if len(data) > MAX_FRAME:
            raise ProtocolError(f"message of {len(data)} bytes exceeds the frame limit")
        return _HEADER.pack(len(data)) + data


#: A finished file's record, `(job id, encode_result(...))`, framed as `frame` frames it.
result_record = _RecordWriter()


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise ProtocolError(f"worker message names a global ({module}.{name})")


def loads_untrusted(data: bytes) -> Any:
    """Unpickle a worker's message; any global (class, function) in it is refused."""
    try:
        return _NoGlobals(io.BytesIO(data)).load()
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"malformed worker message: {type(exc).__name__}") from None


class FrameReader:
    """Splits a byte stream into frames; `feed` returns the payloads completed so far."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._buf += data
        buf = self._buf
        pos = 0
        while len(buf) - pos >= 4:
            (size,) = _HEADER.unpack_from(buf, pos)
            if size > MAX_FRAME:
                raise ProtocolError(f"frame of {size} bytes exceeds the limit")
            end = pos + 4 + size
            if end > len(buf):
                break
            yield bytes(buf[pos + 4 : end])
            pos = end
        if pos:
            del buf[:pos]

    @property
    def pending(self) -> int:
        return len(self._buf)


def result_frames(blob: Any) -> Iterator[tuple[int, Any]]:
    """(job id, encoded result) pairs of a worker's "done" message, in the order it
    finished them; anything else in it is a protocol error. The frames are read in place,
    each to exactly the end its length says, by one unpickler as long as no frame has used
    its memo (`result_record` writes none): an unpickler per frame was a fifth of the
    parent's cost per file in a sweep of small files. A frame that did use the memo gets the
    next frame a fresh unpickler, so a frame never reads another's memo entries. A trailing
    frame cut short (a journal whose worker died mid-write) is left out."""
    if not isinstance(blob, bytes):
        raise ProtocolError("malformed results")
    source = io.BytesIO(blob)
    reader: _NoGlobals | None = None
    pos, total = 0, len(blob)
    while total - pos >= 4:
        (size,) = _HEADER.unpack_from(blob, pos)
        if size > MAX_FRAME:
            raise ProtocolError(f"frame of {size} bytes exceeds the limit")
        end = pos + 4 + size
        if end > total:
            return
        if reader is None:
            reader = _NoGlobals(source)
        source.seek(pos + 4)
        try:
            item = reader.load()
        except ProtocolError:
            raise
        except Exception as exc:
            raise ProtocolError(f"malformed worker message: {type(exc).__name__}") from None
        if source.tell() != end:
            raise ProtocolError("a result frame does not end where its length says")
        if reader.memo.copy():
            reader = None
        if not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[0], int):
            raise ProtocolError("malformed result")
        yield item[0], item[1]
        pos = end


class ProgressFile:
    """The parent's end of a worker's progress record.

    A worker sends the results of a batch of small files together rather than one message
    each (a message per file costs both processes a wake-up). Before each file it writes the
    file's job id and start time into this shared file (a store into a mapping, no system
    call), which the parent reads only when it must know where the worker is: a file that
    looks slow, a deadline, a death. Blame for a timeout or crash stays exact.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        self.fd = os.open(path, flags, 0o600)
        os.write(self.fd, bytes(PROGRESS.size))

    def read(self) -> tuple[int, float] | None:
        """The record as last written (read until two reads agree: it is not atomic)."""
        last = None
        for _ in range(4):
            try:
                data = read_at(self.fd, PROGRESS.size)
            except OSError:
                return None
            if len(data) != PROGRESS.size:
                return None
            if data == last:
                job_id, started = PROGRESS.unpack(data)
                return (job_id, started) if job_id > 0 else None
            last = data
        return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class JournalFile:
    """The parent's end of a worker's journal: every result of the current batch, in the
    frames it sends them in. A result waiting to be sent is not lost when the worker is
    killed, dies or the run stops while a later file runs."""

    def __init__(self, path: str) -> None:
        self.path = path
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        self.fd = os.open(path, flags, 0o600)

    def read(self, limit: int = MAX_FRAME) -> bytes:
        chunks: list[bytes] = []
        got = 0
        while got < limit:
            try:
                data = read_at(self.fd, min(1 << 20, limit - got), got)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
            got += len(data)
        return b"".join(chunks)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def plain(value: Any, budget: int = PLAIN_BUDGET) -> Any:
    """`value` reduced to plain data, visiting at most `budget` nodes (shared graphs are copied
    per reference but the budget bounds the work); anything else becomes its type's name."""
    if budget >= _SMALL_NODES:
        try:
            return _small(value, [_SMALL_NODES])
        except _NotSmall:
            pass
    remaining = [budget]

    def conv(v: Any, depth: int) -> Any:
        if type(v) in _SCALARS:
            return v
        if type(v) is dict and remaining[0] > 0 and depth <= 64:
            # what the general case below makes, with plain keys and values kept as they are
            remaining[0] -= 1
            return {
                (k if type(k) in _SCALARS else _plain_key(k)): (
                    x if type(x) in _SCALARS else conv(x, depth + 1)
                )
                for k, x in v.items()
            }
        if (type(v) is list or type(v) is tuple) and remaining[0] > 0 and depth <= 64:
            remaining[0] -= 1
            return [x if type(x) in _SCALARS else conv(x, depth + 1) for x in v]
        if v is None or isinstance(v, (bool, int, float, str)):
            return _plain_key(v)
        remaining[0] -= 1
        if remaining[0] < 0 or depth > 64:
            return "<truncated>"
        if isinstance(v, (bytes, bytearray, memoryview)):
            return bytes(v[:4096])
        if isinstance(v, dict):
            return {_plain_key(k): conv(x, depth + 1) for k, x in v.items()}
        if isinstance(v, (list, tuple, set, frozenset)):
            return [conv(x, depth + 1) for x in v]
        return f"<{type(v).__name__}>"

    return conv(value, 0)


#: Exact types `plain` keeps as they are: most of what scanners report.
_SCALARS: Final = frozenset({type(None), bool, int, float, str})
#: Containers a value may hold for `_small` to take it. Below `plain`'s budget and its depth
#: bound, so the general walk would make the same of it.
_SMALL_NODES: Final = 64


class _NotSmall(Exception):
    """The value holds more than `_SMALL_NODES` containers, or something other than plain
    containers, scalars and enum members: `plain` takes its general walk."""


def _small(value: Any, left: list[int]) -> Any:
    """What `plain` makes of a few dicts, lists and tuples of scalars and enum members (the
    metadata and details of most small files, nested or not), without the general walk's
    closure and bookkeeping."""
    t = type(value)
    if t is dict:
        left[0] -= 1
        if left[0] < 0:
            raise _NotSmall
        out = {}
        for k, x in value.items():
            if type(k) not in _SCALARS:
                k = _plain_key(k)
            out[k] = x if type(x) in _SCALARS else _small(x, left)
        return out
    if t in _SCALARS:
        return value
    if t is list or t is tuple:
        left[0] -= 1
        if left[0] < 0:
            raise _NotSmall
        return [x if type(x) in _SCALARS else _small(x, left) for x in value] if value else []
    if isinstance(value, (bool, int, float, str)):
        return _plain_key(value)
    raise _NotSmall


def _plain_key(key: Any) -> Any:
    """Subclasses (IntEnum, StrEnum) become their base type: pickled, they would name a global
    the parent refuses to load."""
    if key is None:
        return None
    if isinstance(key, bool):
        return bool(key)
    if isinstance(key, int):
        return int(key)
    if isinstance(key, float):
        return float(key)
    if isinstance(key, str):
        return str.__str__(key)
    return str(type(key).__name__)


def _plain_text(value: Any) -> str | None:
    return None if value is None else str(value)


def encode_issue(issue: Issue) -> tuple[Any, ...]:
    return (
        _plain_text(issue.message) or "",
        str(
            issue.severity._value_ if isinstance(issue.severity, IssueSeverity) else issue.severity
        ),
        _plain_text(issue.location),
        plain(issue.details),
        _plain_text(issue.why),
        _plain_text(issue.rule),
        float(issue.timestamp),
    )


#: Enum members by value (a lookup costs a tenth of calling the enum).
_SEVERITIES: dict[Any, IssueSeverity] = {s.value: s for s in IssueSeverity}
_STATUSES: dict[Any, FileStatus] = {s.value: s for s in FileStatus}


def decode_issue(data: Any) -> Issue:
    try:
        message, severity, location, details, why, rule, timestamp = data
        return Issue(
            message=str(message),
            severity=_SEVERITIES[severity],
            location=None if location is None else str(location),
            details=dict(details) if isinstance(details, dict) else {},
            why=None if why is None else str(why),
            rule=None if rule is None else str(rule),
            timestamp=float(timestamp),
        )
    except (TypeError, ValueError, KeyError) as exc:
        raise ProtocolError(f"malformed issue from worker: {exc!r}") from None


def encode_result(result: ScanResult) -> tuple[Any, ...]:
    # Runs once per file of a sweep: plain strings pass as they are, and the status goes by
    # `_value_` (on Python 3.11 `.value` is a property call behind the enum metaclass).
    name, status, reason, end = (
        result.scanner_name,
        result.status,
        result.status_reason,
        result.end_time,
    )
    return (
        name if type(name) is str else str(name),
        [encode_issue(i) for i in result.issues] if result.issues else [],
        int(result.bytes_scanned),
        status._value_ if type(status) is FileStatus else str(status),
        reason if reason is None or type(reason) is str else str(reason),
        plain(result.metadata) if result.metadata else {},
        float(result.start_time),
        None if end is None else float(end),
    )


def decode_result(data: Any) -> ScanResult:
    try:
        name, issues, scanned, status, reason, metadata, start, end = data
        return ScanResult(
            scanner_name=str(name),
            issues=[decode_issue(i) for i in issues],
            bytes_scanned=int(scanned),
            status=_STATUSES[status],
            status_reason=None if reason is None else str(reason),
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
            start_time=float(start),
            end_time=None if end is None else float(end),
        )
    except (TypeError, ValueError, KeyError) as exc:
        raise ProtocolError(f"malformed result from worker: {exc!r}") from None
