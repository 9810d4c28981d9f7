"""HDF5 global heap collections that libhdf5 would loop on forever.

libhdf5 decodes a global heap collection (where variable-length strings live, a Keras
`model_config` among them) object by object, moving on by each object's stored size. A
free-space object (index 0) of size 0 moves it nowhere: the library spins in native code,
holding the interpreter lock, until the file's deadline kills the worker (found by fuzzing
an 8 KB file: 15 s of CPU each, in a sweep of many). Such a collection is found here, by
its signature, before h5py opens the file: the file is then malformed at once.

The search reads the file in chunks through a view (never mapped: a worker's address
space is limited)
and stops after `SEARCH_LIMIT` bytes; past that the file's deadline still bounds the
library. Every signature's collection is walked (the one libhdf5 reads is not known
without parsing the whole file), within one budget linear in the bytes searched, that a
real file's collections never exhaust: decoys laid over each other to exhaust it make the
file malformed too.
"""

from __future__ import annotations

import struct

from .view import ByteView

__all__ = ["SEARCH_LIMIT", "looping_heap"]

#: Bytes searched for collections; a Keras H5 file keeps its attributes near its start.
SEARCH_LIMIT = 16 << 20
_CHUNK = 4 << 20
_WINDOW = 4 << 10
#: Collections of a real file do not overlap and hold objects of 24 bytes or more, so
#: walking them and reading them once fits in the budget; decoys laid over each other do not.
_OVERLAPPING = (
    "HDF5 global heap collections laid over each other, more than can be checked: libhdf5 "
    "could loop forever reading one"
)
_SIGNATURE = b"GCOL"
_SUPERBLOCK = b"\x89HDF\r\n\x1a\n"
_U16 = struct.Struct("<H")


def looping_heap(view: ByteView) -> str | None:
    """Why libhdf5 would never finish reading a collection of this file, or None."""
    lengths = _sizeof_lengths(view)
    end = min(view.size, SEARCH_LIMIT)
    steps = end // 12 + 4096
    offset = 0
    while offset < end:
        chunk = view.get(offset, min(offset + _CHUNK, end))
        if len(chunk) < len(_SIGNATURE):
            break
        at = chunk.find(_SIGNATURE)
        while at != -1:
            found = _walk(view, offset + at, lengths, steps)
            if isinstance(found, str):
                return found
            steps = found
            if steps <= 0:
                return _OVERLAPPING
            at = chunk.find(_SIGNATURE, at + 1)
        # (the next chunk starts where a signature cut by this one's end would)
        offset += len(chunk) - len(_SIGNATURE) + 1
    return None


def _walk(view: ByteView, start: int, lengths: int, steps: int) -> str | int:
    """The collection at `start`, decoded as libhdf5 does: the reason it would loop, or the
    steps left (one per object, one per 64 bytes read)."""
    header = 8 + lengths
    head = view.get(start, start + header)
    if len(head) < header or head[4] != 1:
        return steps
    total = int.from_bytes(head[8:header], "little")
    if total < header:
        return steps
    stop = min(total, view.size - start)
    objhdr = 8 + lengths
    window, base = b"", 0
    p = header
    while p + objhdr <= stop and steps > 0:
        steps -= 1
        if p + objhdr > base + len(window):
            window, base = view.get(start + p, start + min(p + _WINDOW, stop)), p
            steps -= len(window) // 64
            if len(window) < objhdr:
                break
        at = p - base
        (index,) = _U16.unpack_from(window, at)
        length = int.from_bytes(window[at + 8 : at + objhdr], "little")
        need = objhdr + ((length + 7) & ~7) if index else length
        if need == 0:
            return (
                f"HDF5 global heap collection at offset {start} holds a free-space object of "
                f"size 0 at offset {start + p}: libhdf5 would loop forever reading it"
            )
        if need > total - p:
            break
        p += need
    return steps


def _sizeof_lengths(view: ByteView) -> int:
    """The superblock's "size of lengths" (8 unless it says otherwise); the superblock is at
    0, 512, 1024, 2048... past any user block."""
    at = 0
    while at + 16 <= view.size:
        head = view.get(at, at + 16)
        if head.startswith(_SUPERBLOCK):
            value = head[14] if head[8] in (0, 1) else head[10]
            return value if value in (2, 4, 8) else 8
        at = 512 if at == 0 else at * 2
    return 8
