"""Reads and writes at an offset, without moving a shared descriptor's position.

The spool's writers and the journal's reader share descriptors across threads, which
`os.pwrite`/`os.pread` allow. Windows has neither: there a seek and a read or write stand in,
paired under one lock so that two threads' pairs do not interleave.
"""

from __future__ import annotations

import os
import threading

_SEEK: threading.Lock = threading.Lock()


def write_all_at(fd: int, data: bytes | bytearray | memoryview, at: int) -> None:
    """Write all of `data` at offset `at` (a positional write may write less than asked)."""
    view = memoryview(data)
    positional = getattr(os, "pwrite", None)
    while view:
        if positional is not None:
            n = positional(fd, view, at)
        else:
            with _SEEK:
                os.lseek(fd, at, os.SEEK_SET)
                n = os.write(fd, view)
        view, at = view[n:], at + n


def read_at(fd: int, size: int, offset: int = 0) -> bytes:
    """Up to `size` bytes from `offset`."""
    positional = getattr(os, "pread", None)
    if positional is not None:
        data: bytes = positional(fd, size, offset)
        return data
    with _SEEK:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, size)
