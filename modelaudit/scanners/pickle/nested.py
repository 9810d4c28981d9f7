"""Pickles hidden inside constants: raw, base64, hex, zlib or gzip wrapped.

Two sources feed this module. Arguments of calls that load bytes (`torch.storage.
_load_from_bytes`, a nested `pickle.loads`) are what the loader itself will read, so they are
scanned in full and their status counts. Byte patterns found while the stream was read are only
candidates: a candidate that does not parse to the end contributes its CRITICAL findings (real
payloads are never random) and nothing else, so random tensor bytes cannot raise warnings.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Callable
from typing import Final, Protocol

from ...findings import IssueSeverity, ScanResult
from ...formats.pickle_start import reaches_import
from ...lazy_re import LazyPattern
from ...rules import pickle as R
from ..context import ScanContext
from .info import PickleStreamInfo
from .reader import CANDIDATE_RE


class PickleBytesScan(Protocol):
    """`stream.scan_pickle_bytes`, handed in by the stream scanner (which imports this module)."""

    def __call__(
        self,
        data: bytes,
        result: ScanResult,
        *,
        location: Callable[[int | None], str],
        ctx: ScanContext,
        depth: int,
        stacked: bool,
    ) -> PickleStreamInfo: ...


_MAX_DECODED: Final = 64 << 20
_MAX_WHOLE: Final = 256 << 10
_B64_RUN: Final = LazyPattern(rb"[A-Za-z0-9+/_-]+={0,2}")
_HEX_RUN: Final = LazyPattern(rb"[0-9a-fA-F]+")
_PICKLE_START: Final = LazyPattern(rb"\x80[\x01-\x05]|c[A-Za-z_][\w.]*\n[A-Za-z_][\w.]*\n|[(\]}]")


def _limit(ctx: ScanContext) -> int:
    return int(ctx.config.get("max_pickle_depth", min(int(ctx.config.get("max_depth", 5)), 3)))


def _looks_like_pickle(data: bytes) -> bool:
    """A pickle start at the first byte, or opcodes that reach an import however they
    start (`formats.pickle_start`: padding first, INST): what an unpickler reads of it."""
    return bool(_PICKLE_START.match(data[:256])) or reaches_import(data)


def _whole(data: bytes) -> bool:
    """Whether `data` starts one structurally whole pickle: opcodes, stack, marks and memo
    agree up to a STOP that leaves exactly one object (what `pickletools.dis` checks, without
    its formatting cost)."""
    import pickletools  # only a candidate with an EXT code gets here; costs milliseconds

    levels = [0]
    memo: set[object] = set()
    try:
        for op, arg, _pos in pickletools.genops(data[:_MAX_WHOLE]):
            before, after = op.stack_before, op.stack_after
            name = op.name
            if name == "POP" and levels[-1] == 0 and len(levels) > 1:
                levels.pop()  # POP of a MARK
                continue
            if pickletools.markobject in before:
                if len(levels) < 2:
                    return False
                levels.pop()
                need = before.index(pickletools.markobject)
            else:
                need = len(before)
            if levels[-1] < need:
                return False
            levels[-1] -= need
            if name == "STOP":
                return levels == [0]
            if name in ("GET", "BINGET", "LONG_BINGET") and arg not in memo:
                return False
            if name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo.add(arg)
            elif name == "MEMOIZE":
                memo.add(len(memo))
            if pickletools.markobject in after:
                levels.append(0)
            else:
                levels[-1] += len(after)
    except Exception:
        return False
    return False


def _decode(data: bytes) -> tuple[str, bytes] | None:
    """Undo one wrapping layer of a candidate, or None if it is not one we know."""
    try:
        if data.startswith((b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")):
            d = zlib.decompressobj()
            out = d.decompress(data, _MAX_DECODED)
            return ("zlib", out) if out else None
        if data.startswith(b"\x1f\x8b\x08"):
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = d.decompress(data, _MAX_DECODED)
            return ("gzip", out) if out else None
        if data[:2] in (b"gA", b"eJ", b"eN", b"eF", b"eA", b"H4") or data[:1] == b"Y":
            m = _B64_RUN.match(data)
            if not m:
                return None
            run = m.group(0)
            run = run.rstrip(b"=")
            run = run[: len(run) - len(run) % 4] if len(run) % 4 == 1 else run
            padded = run + b"=" * (-len(run) % 4)
            if b"-" in run or b"_" in run:
                return "base64", base64.urlsafe_b64decode(padded)
            return "base64", base64.b64decode(padded)
        if data[:2] in (b"80", b"78", b"1f", b"1F"):
            m = _HEX_RUN.match(data)
            if not m:
                return None
            run = m.group(0)
            return "hex", bytes.fromhex(run[: len(run) - len(run) % 2].decode("ascii"))
    except (zlib.error, binascii.Error, ValueError):
        return None
    return None


def _existing(result: ScanResult) -> set[str]:
    return {
        i.message.split(": ", 1)[-1] if i.message.startswith("Nested") else i.message
        for i in result.issues
    }


def scan_candidate(
    data: bytes,
    at: int,
    result: ScanResult,
    *,
    location: Callable[[int | None], str],
    ctx: ScanContext,
    depth: int,
    seen: set[str],
    scan: PickleBytesScan,
    encoding: str = "raw",
    reachable: Callable[[int], bool] | None = None,
) -> None:
    """A byte pattern that may start an embedded pickle at stream offset `at`.

    `reachable(at)` says whether the outer stream holds `at` inside a string or bytes
    argument (a value a loader can unpickle); it is asked only once the candidate has
    findings to add, since answering it walks the outer stream.
    """
    if depth > _limit(ctx) or not ctx.expansion.take_candidate():
        return
    if data[:1] in (b"\x80", b"c") and _looks_like_pickle(data):
        _parse_candidate(data, at, result, location, ctx, depth, seen, encoding, scan, reachable)
        return
    decoded = _decode(data)
    if decoded is None:
        if reaches_import(data):  # a code object's string holding a padded pickle
            _parse_candidate(
                data, at, result, location, ctx, depth, seen, encoding, scan, reachable
            )
        return
    how, payload = decoded
    how = how if encoding == "raw" else f"{encoding}+{how}"
    if _looks_like_pickle(payload):
        _parse_candidate(payload, at, result, location, ctx, depth, seen, how, scan, reachable)
        return
    for n, m in enumerate(CANDIDATE_RE.finditer(payload)):
        if n >= 16:
            break
        scan_candidate(
            payload[m.start() :],
            at,
            result,
            location=location,
            ctx=ctx,
            depth=depth + 1,
            seen=seen,
            scan=scan,
            encoding=how,
            reachable=reachable,
        )


def _parse_candidate(
    payload: bytes,
    at: int,
    result: ScanResult,
    location: Callable[[int | None], str],
    ctx: ScanContext,
    depth: int,
    seen: set[str],
    how: str,
    scan: PickleBytesScan,
    reachable: Callable[[int], bool] | None = None,
) -> None:
    sub = ScanResult(scanner_name=result.scanner_name)
    raw = how == "raw"

    def where(pos: int | None) -> str:
        return location(at + pos if raw and pos is not None else at)

    info = scan(payload, sub, location=where, ctx=ctx, depth=depth, stacked=False)
    complete = info.complete and info.pickles > 0
    existing = _existing(result)
    for issue in sub.issues:
        if issue.rule == R.MALFORMED_PICKLE or issue.severity is IssueSeverity.INFO:
            continue
        if not complete and issue.severity is not IssueSeverity.CRITICAL:
            continue
        if issue.rule == R.EXTENSION_CODE and not _whole(payload):
            # the emulation stops at any EXT (nothing is registered), so judge the shape:
            # an EXT among bytes that do not make one whole pickle is what one random
            # candidate in a hundred looks like
            continue
        full = f"{issue.details.get('module')}.{issue.details.get('name')}"
        if raw and full in seen:
            continue
        if issue.message in existing:
            continue
        if reachable is not None and not reachable(at):
            return
        reachable = None
        existing.add(issue.message)
        issue.message = f"Nested pickle ({how}) at pos {at}: {issue.message}"
        issue.details["nested_encoding"] = how
        issue.details["nested_offset"] = at
        if issue.severity is IssueSeverity.CRITICAL:
            issue.rule = R.NESTED_PICKLE
        result.issues.append(issue)


def scan_blob(
    data: bytes,
    result: ScanResult,
    *,
    location: Callable[[int | None], str],
    ctx: ScanContext,
    depth: int,
    stacked: bool,
    label: str,
    scan: PickleBytesScan,
) -> None:
    """Bytes the loader itself will unpickle (or load as a model): scanned in full."""
    if depth > _limit(ctx):
        result.mark_inconclusive(f"nested pickle deeper than the limit ({label})")
        return
    if data.startswith(b"PK\x03\x04"):
        _scan_archive(data, result, location, ctx, depth, label)
        return
    payload = data
    how = "raw"
    if not _looks_like_pickle(payload):
        decoded = _decode(payload)
        if decoded is None:
            return
        how, payload = decoded
    sub = ScanResult(scanner_name=result.scanner_name)
    scan(
        payload,
        sub,
        location=lambda _p: location(None),
        ctx=ctx,
        depth=depth,
        stacked=stacked,
    )
    existing = _existing(result)
    for issue in sub.issues:
        if issue.message in existing:
            continue
        issue.details["nested_in"] = label
        if how != "raw":
            issue.details["nested_encoding"] = how
        result.issues.append(issue)
    if not sub.success:
        result.mark_inconclusive(f"{sub.status_reason} (in {label})")


def _scan_archive(
    data: bytes,
    result: ScanResult,
    location: Callable[[int | None], str],
    ctx: ScanContext,
    depth: int,
    label: str,
) -> None:
    display = f"{location(None)}:<{label}>"
    result.merge(ctx.scan_member(data, display, depth=depth))
