"""Get a local path for an object: the file itself, or a spool of a remote object.

A remote object is spooled under a private temporary folder, keeping its base name so that
name-based routing still works. Header-only formats get a sparse spool of the object's full
size holding only the ranges their planner read (engine/range_plan.py); everything else is
streamed whole, bounded by --max-size. Scanners stay path-based and never know the difference.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager

import anyio
import anyio.to_thread

from ..config import ScanConfig
from ..fetchers.base import FetchError, ObjectReader, ObjectRef, ObjectTooLarge
from ..formats import HEAD_SIZE, has_model_extension, sniff_head
from .range_plan import PLANNERS

log = logging.getLogger("modelaudit")

#: First read of a remote object: enough to sniff, and usually a whole safetensors header.
FIRST_READ = 64 * 1024
#: Ranged reads are rounded up to this, to save round trips on small neighbouring reads.
BLOCK = 64 * 1024
#: Largest single ranged request, so a big member never sits in memory whole.
MAX_REQUEST = 8 * 1024 * 1024


def _safe_basename(uri: str) -> str:
    name = uri.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return name.lstrip(".") or "object"


class RangeView:
    """Ranged reads of one object that land in a sparse spool at their true offsets."""

    def __init__(self, reader: ObjectReader, fd: int, path: str, size: int, uri: str) -> None:
        self.reader = reader
        self.fd = fd
        self.path = path
        self.size = size
        self.uri = uri
        self.have: list[tuple[int, int]] = []
        self.transferred = 0

    def _missing(self, start: int, end: int) -> list[tuple[int, int]]:
        gaps = []
        pos = start
        for a, b in self.have:
            if b <= pos:
                continue
            if a >= end:
                break
            if a > pos:
                gaps.append((pos, a))
            pos = max(pos, b)
        if pos < end:
            gaps.append((pos, end))
        return gaps

    def covered(self, start: int, end: int) -> bool:
        start, end = max(0, start), min(end, self.size)
        return start >= end or not self._missing(start, end)

    def _next_start(self, pos: int) -> int:
        for a, _ in self.have:
            if a > pos:
                return a
        return self.size

    def _add(self, start: int, end: int) -> None:
        merged: list[tuple[int, int]] = []
        for a, b in sorted([*self.have, (start, end)]):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        self.have = merged

    async def fetch(self, start: int, end: int) -> None:
        """Land [start, end) in the spool, in requests of at most MAX_REQUEST bytes."""
        start, end = max(0, start), min(end, self.size)
        for a, b in self._missing(start, end):
            b = min(max(b, a + BLOCK), self._next_start(a))
            while a < b:
                stop = min(b, a + MAX_REQUEST)
                data = await self.reader.read_range(a, stop)
                if len(data) != stop - a:
                    raise FetchError(f"{self.uri}: short read at bytes {a}-{stop}")
                os.pwrite(self.fd, data, a)
                self.transferred += len(data)
                self._add(a, stop)
                a = stop

    async def read(self, start: int, end: int) -> bytes:
        """Bytes [start, end) (clipped to the object), fetched first where missing."""
        await self.fetch(start, end)
        start, end = max(0, start), min(end, self.size)
        out = bytearray()
        while len(out) < end - start:
            piece = os.pread(self.fd, end - start - len(out), start + len(out))
            if not piece:
                break
            out += piece
        return bytes(out)


async def _stream_whole(obj: ObjectRef, path: str, limit: int) -> int:
    assert obj.reader is not None
    written = 0
    async with await anyio.open_file(path, "wb") as out, aclosing(obj.reader.stream()) as chunks:
        async for chunk in chunks:
            written += len(chunk)
            if limit and written > limit:
                raise ObjectTooLarge(f"{obj.uri}: larger than --max-size while downloading")
            await out.write(chunk)
    if obj.size is not None and written != obj.size:
        raise FetchError(f"{obj.uri}: got {written} bytes, the listing said {obj.size}")
    return written


def _nobody_wants(obj: ObjectRef, path: str) -> bool:
    """An unrecognised file met in a listing that no scanner claims by name: the worker will
    skip it after sniffing the same head, so the rest of it is not worth downloading."""
    if obj.explicit or has_model_extension(obj.name):
        return False
    from .dispatch import select_scanner

    return select_scanner(path, None) is None


async def _spool_ranges(obj: ObjectRef, path: str) -> tuple[bool, int]:
    """Whether a planner covered the object (else it must be downloaded), and bytes moved."""
    assert obj.reader is not None and obj.size is not None
    size = obj.size
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, size)
        view = RangeView(obj.reader, fd, path, size, obj.uri)
        head = await view.read(0, min(FIRST_READ, size))
        if size <= FIRST_READ:
            return True, view.transferred
        if obj.reader.supports_ranges is False:
            return False, view.transferred
        fmt = sniff_head(head[:HEAD_SIZE], obj.name, size)
        if fmt is None and await anyio.to_thread.run_sync(_nobody_wants, obj, path):
            return True, view.transferred
        planner = PLANNERS.get(fmt or "")
        done = False
        if planner is not None:
            try:
                done = await planner(view)
            except FetchError:
                raise
            except Exception:
                log.debug("range planner failed on %s; downloading it", obj.uri, exc_info=True)
        return done, view.transferred
    finally:
        os.close(fd)


@asynccontextmanager
async def acquire(
    obj: ObjectRef, config: ScanConfig, limiter: anyio.CapacityLimiter | None = None
) -> AsyncIterator[str]:
    """Yield a local path holding what the scanner needs of `obj`.

    `limiter` (the engine's fetch limiter) is held only while bytes move, not while the
    caller scans the spool. Records the bytes moved in `obj.metadata["bytes_transferred"]`.
    """
    if obj.local_path is not None:
        yield obj.local_path
        return
    assert obj.reader is not None
    folder = tempfile.mkdtemp(prefix="modelaudit-")
    path = os.path.join(folder, _safe_basename(obj.uri))
    try:
        async with limiter if limiter is not None else contextlib.nullcontext():
            done, moved = False, 0
            if obj.size is not None and not config.hashes:
                done, moved = await _spool_ranges(obj, path)
            if not done:
                moved += await _stream_whole(obj, path, config.max_file_size or 0)
        obj.metadata["bytes_transferred"] = moved
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
