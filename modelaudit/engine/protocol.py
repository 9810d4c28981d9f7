"""Messages between the parent and its worker processes.

A frame is a 4-byte little-endian length followed by a pickle. The parent reads worker frames
with an unpickler that refuses every global, so a worker subverted by a hostile file can send
data but never code: results and issues travel as plain tuples, and whatever a scanner put in
`details` or `metadata` is reduced to plain data (dicts, lists, strings, numbers) first.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections.abc import Iterator
from typing import Any

from ..findings import FileStatus, Issue, IssueSeverity, ScanResult

_HEADER = struct.Struct("<I")
#: Largest frame either side accepts; a longer one means a broken or subverted peer.
MAX_FRAME = 256 * 1024 * 1024
#: Call profiles (settings and registry) a worker keeps; the parent mirrors the eviction.
PROFILES_KEPT = 32
#: Plain-data nodes kept from one `details`/`metadata` value; the rest becomes a marker.
PLAIN_BUDGET = 20_000


class ProtocolError(Exception):
    """A peer sent something that is not a well-formed message."""


def frame(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) > MAX_FRAME:
        raise ProtocolError(f"message of {len(data)} bytes exceeds the frame limit")
    return _HEADER.pack(len(data)) + data


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


def plain(value: Any, budget: int = PLAIN_BUDGET) -> Any:
    """`value` reduced to plain data, visiting at most `budget` nodes (shared graphs are copied
    per reference but the budget bounds the work); anything else becomes its type's name."""
    remaining = [budget]

    def conv(v: Any, depth: int) -> Any:
        if v is None or isinstance(v, (bool, int, float)):
            return v
        if isinstance(v, str):
            return str(v)
        remaining[0] -= 1
        if remaining[0] < 0 or depth > 64:
            return "<truncated>"
        if isinstance(v, (bytes, bytearray, memoryview)):
            return bytes(v[:4096])
        if isinstance(v, dict):
            return {
                (
                    k
                    if isinstance(k, (str, int, float, bool)) or k is None
                    else str(type(k).__name__)
                ): conv(x, depth + 1)
                for k, x in v.items()
            }
        if isinstance(v, (list, tuple, set, frozenset)):
            return [conv(x, depth + 1) for x in v]
        return f"<{type(v).__name__}>"

    return conv(value, 0)


def _plain_text(value: Any) -> str | None:
    return None if value is None else str(value)


def encode_issue(issue: Issue) -> tuple[Any, ...]:
    return (
        _plain_text(issue.message) or "",
        str(issue.severity.value if isinstance(issue.severity, IssueSeverity) else issue.severity),
        _plain_text(issue.location),
        plain(issue.details),
        _plain_text(issue.why),
        _plain_text(issue.rule),
        float(issue.timestamp),
    )


def decode_issue(data: Any) -> Issue:
    try:
        message, severity, location, details, why, rule, timestamp = data
        return Issue(
            message=str(message),
            severity=IssueSeverity(severity),
            location=None if location is None else str(location),
            details=dict(details) if isinstance(details, dict) else {},
            why=None if why is None else str(why),
            rule=None if rule is None else str(rule),
            timestamp=float(timestamp),
        )
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed issue from worker: {exc}") from None


def encode_result(result: ScanResult) -> tuple[Any, ...]:
    return (
        str(result.scanner_name),
        [encode_issue(i) for i in result.issues],
        int(result.bytes_scanned),
        str(result.status.value),
        _plain_text(result.status_reason),
        plain(result.metadata),
        float(result.start_time),
        None if result.end_time is None else float(result.end_time),
    )


def decode_result(data: Any) -> ScanResult:
    try:
        name, issues, scanned, status, reason, metadata, start, end = data
        return ScanResult(
            scanner_name=str(name),
            issues=[decode_issue(i) for i in issues],
            bytes_scanned=int(scanned),
            status=FileStatus(status),
            status_reason=None if reason is None else str(reason),
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
            start_time=float(start),
            end_time=None if end is None else float(end),
        )
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed result from worker: {exc}") from None
