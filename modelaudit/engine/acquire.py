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
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager

import anyio
import anyio.to_thread

from ..config import ScanConfig
from ..fetchers.base import FetchError, ObjectRef, ObjectTooLarge
from ..formats import HEAD_SIZE, has_model_extension, sniff_head
from .range_plan import plan
from .spool import Spool

log = logging.getLogger("modelaudit")

#: First read of a remote object: enough to sniff, and usually a whole safetensors header.
FIRST_READ = 64 * 1024

OnBytes = Callable[[int], None]


def _safe_basename(uri: str) -> str:
    name = uri.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return name.lstrip(".") or "object"


async def _stream_whole(
    obj: ObjectRef, path: str, limit: int, on_bytes: OnBytes | None = None
) -> int:
    assert obj.reader is not None
    written = 0
    async with await anyio.open_file(path, "wb") as out, aclosing(obj.reader.stream()) as chunks:
        async for chunk in chunks:
            written += len(chunk)
            if limit and written > limit:
                raise ObjectTooLarge(f"{obj.uri}: larger than --max-size while downloading")
            await out.write(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    if obj.size is not None and written != obj.size:
        raise FetchError(f"{obj.uri}: got {written} bytes, the listing said {obj.size}")
    return written


def _nobody_wants(obj: ObjectRef, path: str) -> bool:
    """An unrecognised file that no scanner claims by name: the worker will skip it after
    sniffing the same head, named or listed, so the rest of it is not worth downloading."""
    if has_model_extension(obj.name):
        return False
    from .dispatch import select_scanner

    return select_scanner(path, None) is None


async def _spool_ranges(
    obj: ObjectRef, path: str, on_bytes: OnBytes | None = None
) -> tuple[bool, int]:
    """Whether the planner covered the object (else it must be downloaded), and bytes moved."""
    assert obj.reader is not None and obj.size is not None
    spool = Spool(obj.reader, path, obj.size, obj.uri, on_bytes)
    try:
        head = await spool.read(0, min(FIRST_READ, spool.size))
        if spool.size <= FIRST_READ:
            return True, spool.transferred
        if obj.reader.supports_ranges is False:
            return False, spool.transferred
        fmt = sniff_head(head[:HEAD_SIZE], obj.name, spool.size)
        if fmt is None and await anyio.to_thread.run_sync(_nobody_wants, obj, path):
            return True, spool.transferred
        done = False
        try:
            done = await plan(spool, fmt)
        except FetchError:
            raise
        except Exception:
            log.debug("range planner failed on %s; downloading it", obj.uri, exc_info=True)
        return done, spool.transferred
    finally:
        spool.close()


@asynccontextmanager
async def acquire(
    obj: ObjectRef,
    config: ScanConfig,
    limiter: anyio.CapacityLimiter | None = None,
    on_bytes: OnBytes | None = None,
) -> AsyncIterator[str]:
    """Yield a local path holding what the scanner needs of `obj`.

    `limiter` (the engine's fetch limiter) is held only while bytes move, not while the
    caller scans the spool. Records the bytes moved in `obj.metadata["bytes_transferred"]`;
    `on_bytes` hears of each piece as it lands (download progress).
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
                done, moved = await _spool_ranges(obj, path, on_bytes)
            if not done:
                moved += await _stream_whole(obj, path, config.max_file_size or 0, on_bytes)
        obj.metadata["bytes_transferred"] = moved
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
