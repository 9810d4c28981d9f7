"""torch.distributed.checkpoint shards (`__0_0.distcp`): one `torch.save` zip per item, end to end.

`FileSystemWriter` appends the `torch.save` of every tensor and of every other object of a
rank's state dict to its shard; the reader cuts each back out at the offset and length that
`.metadata` records and `torch.load`s it: tensors with `weights_only=True`, other objects
(BYTE_IO items) with `weights_only=False`, so any pickle in any item runs. A zip reader sees
only the last item (its end record is the file's). Each item is therefore scanned as the
PyTorch zip it is, found by walking the file from its start: an item ends at the first end
record whose central directory lies right before it (`zipdir.zip_end_from`).
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO, ClassVar

from ...budget import BudgetExceeded, WorkBudget, report_budget
from ...formats import Format
from ...formats.view import FileView
from ...formats.zipdir import zip_end_from
from ..base import BaseScanner, ScanResult
from .members import Limits, MemberSpool, depth_exceeded, scan_stream_member

_LOCAL_SIG = b"PK\x03\x04"
#: End-record signatures looked at per shard (a real item has one, its own).
_MAX_CANDIDATES = 1_000_000


class _Slice(io.RawIOBase):
    """`size` bytes of `f` from `start`, read as a stream."""

    def __init__(self, f: BinaryIO, start: int, size: int) -> None:
        self._f = f
        self._pos = start
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        self._f.seek(self._pos)
        data = self._f.read(min(len(view), self._left))
        view[: len(data)] = data
        self._pos += len(data)
        self._left -= len(data)
        return len(data)


class DcpShardScanner(BaseScanner):
    name: ClassVar[str] = "torch_dcp"
    description: ClassVar[str] = (
        "torch.distributed.checkpoint shards (.distcp): every torch.save item is scanned"
    )
    formats: ClassVar[tuple[str, ...]] = (Format.TORCH_DCP,)
    supported_extensions: ClassVar[list[str]] = [".distcp"]

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        limits = Limits.from_context(self.ctx)
        if depth_exceeded(result, limits, self.location(path)):
            result.finish()
            return result
        size = self.file_size(path)
        items = 0
        pos = 0
        candidates = WorkBudget("end-record candidates", _MAX_CANDIDATES)
        with open(path, "rb") as f, MemberSpool() as spool:
            view = FileView(f, size)
            while pos < size:
                if items >= limits.max_entries:
                    result.mark_inconclusive(f"more than {limits.max_entries} items")
                    break
                try:
                    starts = view.get(pos, pos + 4) == _LOCAL_SIG
                    end = zip_end_from(view, pos, candidates) if starts else None
                except BudgetExceeded as exc:
                    report_budget(result, self.location(path), exc)
                    break
                if end is None:
                    result.mark_inconclusive(
                        f"malformed: the bytes at offset {pos} are no torch.save zip"
                    )
                    break
                name = f"item{items}@{pos}.pt"
                shown = self.location(path, name)
                item = io.BufferedReader(_Slice(f, pos, end - pos), 1 << 20)
                if not scan_stream_member(
                    result, spool, item, name, shown, self.ctx, limits, stored_slice=True
                ):
                    break
                items += 1
                pos = end
        result.metadata["items"] = items
        result.bytes_scanned = pos
        result.finish()
        return result
