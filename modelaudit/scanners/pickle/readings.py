"""The other ways a loader reads a pickle whose opcodes run past the end of a FRAME.

The C unpickler drops what is left of a frame it read with `read(n)` when an opcode's
argument runs past it; `pickle.loads(bytes)` reads straight on, and `open()`'s buffer decides
frame by frame which of the two happens. The engine's own reading is the file-without-`peek`
one (torch's zip loader, `io.BytesIO`); when it saw a straddle, these readings are made too
and compared by what they import and call.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import Any, Final

#: `open()` buffers: st_blksize on most Linux filesystems and io.DEFAULT_BUFFER_SIZE.
_BUFFER_SIZES: Final = (4096, 8192)


class MemoryFile:
    """Every byte in the unpickler's buffer from the first call on: `pickle.loads`."""

    def __init__(self, data: bytes) -> None:
        self._bytes = data
        self._data = memoryview(data)
        self.pos = 0

    def peek(self, n: int = 1) -> memoryview:
        return self._data[self.pos :]

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n is None or n < 0 else min(len(self._data), self.pos + n)
        out = bytes(self._data[self.pos : end])
        self.pos = end
        return out

    def readinto(self, b: bytearray | memoryview) -> int:
        view = memoryview(b).cast("B")
        out = self._data[self.pos : self.pos + len(view)]
        view[: len(out)] = out
        self.pos += len(out)
        return len(out)

    def readline(self) -> bytes:
        end = self._bytes.find(b"\n", self.pos)
        stop = len(self._bytes) if end < 0 else end + 1
        out = self._bytes[self.pos : stop]
        self.pos = stop
        return out


def _buffered(data: bytes, *, size: int) -> io.BufferedReader:
    """What `open(path, "rb")` hands the unpickler, over the same bytes."""
    return io.BufferedReader(io.BytesIO(data), size)


def readings(*, no_peek: bool = False) -> list[tuple[str, Callable[[bytes], Any]]]:
    """(name, make the file object) for each other way of reading the same bytes; `no_peek`
    adds the engine's own reading (for a pickle it first read with the Python unpickler)."""
    out: list[tuple[str, Callable[[bytes], Any]]] = [("pickle.loads(bytes)", MemoryFile)]
    if no_peek:
        out.append(("file object without peek (torch.load, io.BytesIO)", io.BytesIO))
    for size in _BUFFER_SIZES:
        out.append(
            (
                f"pickle.load(open(path)) with a {size // 1024} KiB buffer",
                functools.partial(_buffered, size=size),
            )
        )
    return out


__all__ = ["MemoryFile", "readings"]
