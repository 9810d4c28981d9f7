"""Open a file for reading only if it is a regular file, without ever blocking.

The listing hands on regular files only, but a name can be replaced between the listing and
the scan (a FIFO, a device, a socket swapped in). `open()` on a FIFO with no writer blocks
forever and a device may never end, so the first open of a file the engine was given uses
O_NONBLOCK and checks what it opened with fstat before any byte is read.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

#: Windows has no O_NONBLOCK (nor FIFOs that block an open), and its `os.set_blocking`
#: refuses anything but a pipe: the flag is set, and later cleared, only where it exists.
_NONBLOCK: int = getattr(os, "O_NONBLOCK", 0)
_FLAGS = (
    os.O_RDONLY
    | _NONBLOCK
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


class NotRegularFile(OSError):
    """The name no longer leads to a regular file; `kind` says what it is."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(f"not a regular file ({kind})")
        self.path = path
        self.kind = kind


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def open_regular(path: str) -> BinaryIO:
    """`open(path, "rb")` for a regular file; `NotRegularFile` for anything else, raised
    before reading and without blocking (a FIFO without a writer opens at once here)."""
    fd = os.open(path, _FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, kind_of(mode))
        if _NONBLOCK:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_head(path: str, limit: int) -> tuple[bytes, int]:
    """The first `limit` bytes of a regular file and its size, in four system calls (no
    file object; O_NONBLOCK changes nothing for a regular file; no read to find the end of
    a file read whole); `NotRegularFile` for anything else, checked before reading."""
    fd = os.open(path, _FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path, kind_of(st.st_mode))
        head = os.read(fd, limit)
        want = min(limit, st.st_size) if st.st_size else limit
        while len(head) < want and (more := os.read(fd, limit - len(head))):
            head += more
        return head, st.st_size
    finally:
        os.close(fd)
