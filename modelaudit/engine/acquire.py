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
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread

from ..config import ScanConfig
from ..fetchers.base import FetchError, ObjectRef
from ..formats import HEAD_SIZE, has_model_extension, sniff_head
from .fill import fill
from .range_plan import plan
from .spool import Spool
from .tap import Tap

log = logging.getLogger("modelaudit")

#: First read of a remote object: enough to sniff, and usually a whole safetensors header.
FIRST_READ = 64 * 1024
#: First read of a large object's end (see `tail_size`).
TAIL_READ = 256 * 1024
#: Objects up to this size hashed for --hash-remote are written whole (no plan to serve).
TAP_ABOVE = 8 << 20

OnBytes = Callable[[int], None]


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


def tail_size(size: int) -> int:
    """The first read of an object's end: room for a zip's central directory (a PyTorch
    checkpoint of thousands of tensors) and the longest zip comment, in one request."""
    return TAIL_READ if size >= 256 * TAIL_READ else FIRST_READ + 22


async def _plan_ranges(obj: ObjectRef, spool: Spool) -> bool:
    """Fetch what the object's scanner will read into `spool`; False: it needs the rest."""
    assert obj.reader is not None
    size = spool.size
    tail = tail_size(size)
    if size <= FIRST_READ + tail:
        await spool.fetch(0, size)
        return True
    wanted = has_model_extension(obj.name) and obj.reader.supports_ranges is not False
    # head and tail in one round: every planned format reads the end (the appended-zip
    # check, a zip's directory); off a stream, the tail comes when the stream gets there
    if spool.tap is not None:
        spool.tap.ask([(size - tail, size)], hold=False)
        wanted = False
    await spool.fetch_many([(0, FIRST_READ), (size - tail, size)] if wanted else [(0, FIRST_READ)])
    if obj.reader.supports_ranges is False:
        return False
    head = spool.get(0, HEAD_SIZE)
    fmt = sniff_head(head, obj.name, size)
    if (
        fmt is None
        and not wanted
        and await anyio.to_thread.run_sync(_nobody_wants, obj, spool.path)
    ):
        return True
    try:
        return await plan(spool, fmt)
    except FetchError:
        raise
    except Exception:
        log.debug("range planner failed on %s; downloading it", obj.uri, exc_info=True)
        return False


async def _plan_from_stream(obj: ObjectRef, spool: Spool) -> None:
    """--hash-remote without a published sha256: every byte comes anyway, so the object
    streams once through the hasher from its first byte and the plan's reads are taken off
    that stream as it passes (engine/tap.py): no other request, and nothing written but
    what the scanner reads. A plan that declines takes the rest of the stream whole, and
    fetches by range the little it had passed."""
    tap = Tap(spool.fd)
    spool.tap = tap
    failures: list[Exception] = []

    async def stream(scope: anyio.CancelScope) -> None:
        try:
            await spool.stream_tapped(tap)
        except Exception as exc:
            failures.append(exc)
            scope.cancel()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(stream, tg.cancel_scope)
            try:
                if not await _plan_ranges(obj, spool):
                    await spool.fetch_many([(0, spool.size)])
            except Exception as exc:
                failures.append(exc)
                tg.cancel_scope.cancel()
            finally:
                tap.release()
    finally:
        spool.tap = None
    if failures:
        raise failures[0]


@asynccontextmanager
async def acquire(
    obj: ObjectRef,
    config: ScanConfig,
    limiter: anyio.CapacityLimiter | None = None,
    on_bytes: OnBytes | None = None,
    folders: SpoolFolders | None = None,
) -> AsyncIterator[str]:
    """Yield a local path holding what the scanner needs of `obj`.

    `limiter` (the engine's fetch limiter) is held only while bytes move, not while the
    caller scans the spool. Records the bytes moved in `obj.metadata["bytes_transferred"]`;
    `on_bytes` hears of each piece as it lands (download progress). With `folders` the spool
    lives in one of the call's reusable folders, else in a folder of its own.
    """
    if obj.local_path is not None:
        yield obj.local_path
        return
    assert obj.reader is not None
    folder = folders.take() if folders is not None else tempfile.mkdtemp(prefix="modelaudit-")
    path = os.path.join(folder, _safe_basename(obj.uri))
    ended = False
    try:
        async with limiter if limiter is not None else contextlib.nullcontext():
            if obj.size is None:
                moved = await _stream_whole(
                    obj, path, config.max_file_size or 0, config.hashes, on_bytes
                )
                complete = True
            else:
                spool = Spool(obj.reader, path, obj.size, obj.uri, on_bytes)
                try:
                    download = config.hashes and config.hash_remote
                    if download:
                        # asked to hash: only a digest the provider publishes saves a download
                        download = "sha256" not in await _published(obj)
                    if download or (config.hashes and "sha256" not in obj.reader.digests):
                        import hashlib

                        # hashed in the pass that fills it, should the object come whole
                        spool.hasher = hashlib.sha256()
                    if download and (
                        spool.size <= TAP_ABOVE or obj.reader.supports_ranges is False
                    ):
                        await spool.stream_rest(0)
                    elif download:
                        await _plan_from_stream(obj, spool)
                    elif not await _plan_ranges(obj, spool):
                        await spool.stream_rest(0)
                    moved = spool.transferred
                    complete = not spool.missing(0, spool.size)
                    if (digest := spool.digest()) is not None:
                        obj.metadata["sha256_streamed"] = digest
                finally:
                    spool.close()
            if config.hashes:
                await _record_digests(obj, path, complete)
        obj.metadata["bytes_transferred"] = moved
        yield path
        ended = True
    finally:
        if folders is None:
            shutil.rmtree(folder, ignore_errors=True)
        elif ended:
            folders.give(folder, path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
