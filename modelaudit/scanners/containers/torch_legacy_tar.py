"""The `storages` and `tensors` records of PyTorch's legacy tar checkpoints.

torch.load still opens these tars: `pickle` and `sys_info` are plain pickles (scanned like any
member), but `storages` and `tensors` interleave pickles with raw records, and every one of
those pickles is unpickled. We follow torch's own layout: a pickled count, then per record a
pickled argument tuple followed by raw bytes whose length the tuple and a size field give. The
small pickles' values are read by `formats.pickle_names` (a parser; nothing is executed).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import BinaryIO, Final

from ...findings import ScanResult
from ...formats.pickle_names import pickle_names
from ..context import ScanContext
from ..pickle import scan_pickle_stream

LEGACY_MEMBERS: Final = frozenset({"storages", "tensors", "pickle", "sys_info"})
_ELEMENT_SIZE: Final[dict[str, int]] = {
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "LongStorage": 8,
    "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
    "BoolStorage": 1, "BFloat16Storage": 2, "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8, "QInt8Storage": 1, "QUInt8Storage": 1, "QInt32Storage": 4,
}  # fmt: skip
_MAX_RECORDS: Final = 1_000_000


class LayoutError(Exception):
    """The record does not follow torch's legacy layout."""


def walk_records(
    f: BinaryIO,
    size: int,
    kind: str,
    result: ScanResult,
    location: Callable[[int | None], str],
    ctx: ScanContext,
    depth: int,
) -> None:
    """Scan every pickle of a `storages` or `tensors` record; inconclusive if off-layout."""

    def one_pickle() -> bytes:
        start = f.tell()

        def loc(pos: int | None) -> str:
            return location(None if pos is None else start + pos)

        info = scan_pickle_stream(f, result, location=loc, ctx=ctx, stacked=False, depth=depth)
        if not info.complete or info.pickles < 1:
            raise LayoutError("a pickle in the record is broken")
        f.seek(start)
        data = f.read(info.end)
        f.seek(start + info.end)
        return data

    def raw(n: int) -> bytes:
        if n < 0 or f.tell() + n > size:
            raise LayoutError("raw data runs past the end of the record")
        return f.read(n)

    try:
        consts = pickle_names(one_pickle()).values
        count = consts[0] if consts and isinstance(consts[0], int) else -1
        if not 0 <= count <= _MAX_RECORDS:
            raise LayoutError("record count is not a plausible integer")
        for _ in range(count):
            names = pickle_names(one_pickle()).names
            if kind == "storages":
                storage = names[-1].rsplit(".", 1)[-1] if names else ""
                if storage not in _ELEMENT_SIZE:
                    raise LayoutError(f"unknown storage type {storage!r}")
                (numel,) = struct.unpack("<q", raw(8))
                end = f.tell() + numel * _ELEMENT_SIZE[storage]
                if numel < 0 or end > size:
                    raise LayoutError("storage data runs past the end of the record")
                f.seek(end)
            else:
                (ndim,) = struct.unpack("<i", raw(4))
                raw(4)
                if not 0 <= ndim <= 64:
                    raise LayoutError("implausible tensor rank")
                raw(16 * ndim + 8)
        if kind == "storages" and f.tell() < size:
            one_pickle()
    except (LayoutError, ValueError, struct.error) as exc:
        result.mark_inconclusive(f"malformed: legacy torch {kind} record: {exc}")
