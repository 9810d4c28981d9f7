"""Local files and directories."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import anyio.to_thread

from .base import ObjectRef, Source, TargetNotFound

_SKIP_DIRS = frozenset({".git", "__pycache__", ".hg", ".svn"})
_BATCH = 256


def _walk(root: str) -> Iterator[tuple[str, int]]:
    """Files under `root`, depth first in name order, without following directory links."""
    stack = [root]
    while stack:
        top = stack.pop()
        try:
            with os.scandir(top) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in _SKIP_DIRS:
                        subdirs.append(entry.path)
                elif entry.is_file(follow_symlinks=True):
                    yield entry.path, entry.stat(follow_symlinks=True).st_size
            except OSError:
                continue
        stack.extend(reversed(subdirs))


class LocalSource(Source):
    def __init__(self, target: str) -> None:
        self.target = target

    async def objects(self) -> AsyncIterator[ObjectRef]:
        path = self.target
        if not os.path.exists(path):
            raise TargetNotFound(f"{path}: no such file or directory")
        if not os.path.isdir(path):
            yield ObjectRef(uri=path, size=os.path.getsize(path), local_path=path, explicit=True)
            return
        walker = _walk(path)

        def next_batch() -> list[tuple[str, int]]:
            batch = []
            for item in walker:
                batch.append(item)
                if len(batch) >= _BATCH:
                    break
            return batch

        while batch := await anyio.to_thread.run_sync(next_batch):
            for file_path, size in batch:
                yield ObjectRef(uri=file_path, size=size, local_path=file_path)
