"""Which byte ranges of a remote object its scanner will read, found by running its parser.

Each planned format has one parser in `formats/`, shared with its scanner. The planner runs it
over the object's spool (`spool.Spool`, a `ByteView` of the ranges fetched so far); when the
parser asks for bytes that have not arrived (`NeedBytes`), the planner fetches them and runs it
again. When the parser is done, every byte the scanner will read is in the spool, because the
scanner reads the same bytes with the same code. A plan declines (the object is downloaded
whole) when the scanner would read more than a header: object arrays, zips other than PyTorch
checkpoints, and any file with a zip appended (whose scan reads every member).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable

import anyio.to_thread

from ..formats import Format, classify_zip
from ..formats.bounded_reader import Malformed
from ..formats.gguf import parse_header as parse_gguf
from ..formats.npy import NpyError
from ..formats.npy import parse_header as parse_npy
from ..formats.onnx import walk_model
from ..formats.protowire import Wire, WireError
from ..formats.safetensors import SafetensorsError, read_raw_header
from ..formats.sniff import appended_zip
from ..formats.view import ByteView, NeedBytes
from ..formats.zipdir import (
    MemberError,
    ZipFormatError,
    is_tensor_record,
    local_data_offset,
    parse_directory,
)
from .spool import Spool

log = logging.getLogger("modelaudit")

#: Needs are rounded up to this, to save round trips on small neighbouring reads.
BLOCK = 64 * 1024
#: A parser reading on from where the last fetch ended gets twice the last window, up to this.
MAX_WINDOW = 64 * 1024 * 1024
#: Parser runs per object before the plan is abandoned for a whole download.
MAX_ROUNDS = 10_000

#: A plan touches, through the view, every byte its scanner will read; False: it cannot be
#: planned (the scanner reads most of the object).
Plan = Callable[[ByteView], bool]


def plan_safetensors(view: ByteView) -> bool:
    with contextlib.suppress(SafetensorsError):
        raw = read_raw_header(view)
        end = _tensors_end(raw.raw)
        if end is not None and 8 + raw.length + end < view.size:
            # the scanner sniffs what follows the last tensor (scanners/trailing.py)
            start = 8 + raw.length + end
            view.get(start, min(view.size, start + 4096))
    return True


def _tensors_end(header: bytes | None) -> int | None:
    """Where the last tensor of a safetensors header ends, relative to the data."""
    if header is None:
        return None
    try:
        doc = json.loads(header)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    ends = [
        v["data_offsets"][1]
        for k, v in doc.items()
        if k != "__metadata__"
        and isinstance(v, dict)
        and isinstance(v.get("data_offsets"), list)
        and len(v["data_offsets"]) == 2
        and isinstance(v["data_offsets"][1], int)
    ]
    return max(ends, default=0)


def plan_numpy(view: ByteView) -> bool:
    try:
        header = parse_npy(view)
    except NpyError:
        return True
    return not header.has_object


def plan_gguf(view: ByteView) -> bool:
    with contextlib.suppress(Malformed):
        parse_gguf(view)
    return True


def plan_onnx(view: ByteView) -> bool:
    with contextlib.suppress(WireError):
        walk_model(Wire(view))  # type: ignore[arg-type]
    return True


def plan_zip(view: ByteView) -> bool:
    """PyTorch checkpoints: the directory, and every record the PyTorch zip scanner reads
    (all but tensor storages), with their local headers. Other zips are read whole."""
    try:
        directory = parse_directory(view)
    except ZipFormatError:
        return True
    if classify_zip(directory.names) != Format.PYTORCH_ZIP:
        return False
    needed: list[tuple[int, int]] = []
    for entry in directory.entries:
        # an "encrypted" record is read in the clear, as torch's miniz reads it
        if entry.is_dir or is_tensor_record(entry.name):
            continue
        try:
            start, _ = local_data_offset(view, entry)
            view.get(start, start + entry.compressed_size)
        except MemberError:
            continue
        except NeedBytes as need:
            # Every member's next need at once: one round of requests, not one per member.
            needed += need.ranges
    if needed:
        raise NeedBytes(needed)
    return True


def plan_prefixed_zip(view: ByteView) -> bool:
    """Unrecognised bytes before a zip (torch.save into an open file, a junk prefix): the
    file is routed, and read, by the zip behind them."""
    if appended_zip(view) != Format.PYTORCH_ZIP:
        return False
    return plan_zip(view)


#: By sniffed format; "" is a head no format claims.
PLANS: dict[str, Plan] = {
    "": plan_prefixed_zip,
    Format.SAFETENSORS: plan_safetensors,
    Format.NUMPY: plan_numpy,
    Format.GGUF: plan_gguf,
    Format.ZIP: plan_zip,
    Format.ONNX: plan_onnx,
}


def _run(plan: Plan, fmt: str, view: ByteView) -> bool:
    if not plan(view):
        return False
    # Every other file is also checked for an appended zip, whose members are all scanned.
    return fmt in ("", Format.ZIP) or appended_zip(view) is None


class _Windows:
    """Rounds needs up: to BLOCK, and doubling while a parser reads on sequentially."""

    def __init__(self) -> None:
        self.end = -1
        self.window = BLOCK

    def expand(self, start: int, end: int, spool: Spool) -> tuple[int, int]:
        if start == self.end:
            self.window = min(self.window * 2, MAX_WINDOW)
        else:
            self.window = BLOCK
        stop = min(max(end, start + self.window), spool.next_start(start))
        self.end = max(end, stop)
        return start, self.end


async def plan(spool: Spool, fmt: str | None) -> bool:
    """Fetch into `spool` what the scanner of `fmt` will read; False: download it whole."""
    fmt = fmt or ""
    chosen = PLANS.get(fmt)
    if chosen is None:
        return False
    windows = _Windows()
    for _ in range(MAX_ROUNDS):
        try:
            return await anyio.to_thread.run_sync(_run, chosen, fmt, spool)
        except NeedBytes as need:
            for start, end in sorted(need.ranges):
                await spool.fetch(*windows.expand(start, end, spool))
    log.debug("planning %s took too many rounds; downloading it", spool.uri)
    return False
