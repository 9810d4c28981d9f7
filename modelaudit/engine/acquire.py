"""Get a local path for an object: the file itself, or a bounded spool of a remote object."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from ..config import ScanConfig
from ..fetchers.base import FetchError, ObjectRef


class SpoolTooLarge(FetchError):
    """A remote object grew past --max-size while being streamed."""


def _safe_basename(uri: str) -> str:
    name = uri.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return name.lstrip(".") or "object"


@asynccontextmanager
async def acquire(obj: ObjectRef, config: ScanConfig) -> AsyncIterator[str]:
    """Yield a local path holding what the scanner needs of `obj`.

    Remote objects are spooled under a private temporary folder, keeping their base name so
    that name-based routing (`can_handle`) still works, and removed afterwards.
    """
    if obj.local_path is not None:
        yield obj.local_path
        return
    assert obj.reader is not None
    folder = tempfile.mkdtemp(prefix="modelaudit-")
    path = os.path.join(folder, _safe_basename(obj.uri))
    try:
        limit = config.max_file_size or 0
        written = 0
        async with await anyio.open_file(path, "wb") as out:
            async for chunk in obj.reader.stream():
                written += len(chunk)
                if limit and written > limit:
                    raise SpoolTooLarge(f"{obj.uri}: larger than --max-size while downloading")
                await out.write(chunk)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
