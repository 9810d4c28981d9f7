"""Which byte ranges of a remote object its scanner will read, found by running its parser.

Each planned format has one parser in `formats/`, shared with its scanner. The planner runs it
over the object's spool (`spool.Spool`, a `ByteView` of the ranges fetched so far); when the
parser asks for bytes that have not arrived (`NeedBytes`), the planner fetches them and runs it
again. When the parser is done, every byte the scanner will read is in the spool, because the
scanner reads the same bytes with the same code. A plan declines (the object is downloaded
whole) when the scanner would read more than a header: object arrays, zips other than PyTorch
checkpoints, and any file with a zip appended (whose scan reads every member).

Requests cost time (engine/link.py measures latency and bandwidth per endpoint). Each round's
needs are rounded up, merged when closer than a round trip's worth of bytes, split into
pieces and fetched in parallel; a round that would cost more than fetching the rest of the
object in one streamed request switches to that one request.

A walker that jumps from record to record (an ONNX model with hundreds of embedded tensors:
each tensor's header says where the next one starts, past its raw data) is decided early. The
second jump shows the stride; the next records' headers are guessed at it and read ahead, many
at once and more each round the guesses hold. In that same round, unless the link's bandwidth
was measured on a long read, one read of `PROBE` bytes from the walker's position measures it
(its bytes hold the next records, so nothing is wasted), unless the walk loses to a download
even on a link `UNSURE` times slower than the short reads showed (an endpoint that serves
requests one at a time, each as slow as a long transfer: moto). From the second jump on (the
round after the probe, if one is read; from the first on an endpoint seen serving requests one
at a time, the first jump's length standing for the stride), the walk left is projected (rounds
at the wall time rounds took so far, plus one small request per record, as many at a time as
the endpoint was seen to serve at once) against one request for the rest, and the cheaper one
is taken, so a download, when it wins, starts after a handful of round trips and streams the
rest in one request, from the first byte not yet read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
import zlib
from collections.abc import Callable

import anyio.to_thread

from ..formats import ZIP_FORMATS, Format, classify_zip, sniff_head
from ..formats.arrow_schema import ArrowSchemaError, read_schemas
from ..formats.bounded_reader import Malformed
from ..formats.gguf import parse_header as parse_gguf
from ..formats.gguf import tensors_end
from ..formats.json_values import MAX_JSON_VALUES, values_bound
from ..formats.npy import NpyError
from ..formats.npy import parse_header as parse_npy
from ..formats.onnx import walk_model
from ..formats.parquet_footer import ParquetError
from ..formats.protowire import Wire, WireError
from ..formats.safetensors import SafetensorsError, read_raw_header
from ..formats.sniff import appended_zip
from ..formats.torch_refs import storage_keys
from ..formats.view import ByteView, NeedBytes
from ..formats.zipdir import (
    MemberError,
    ZipDirectory,
    ZipEntry,
    ZipFormatError,
    is_tensor_record,
    local_data_offset,
    parse_directory,
)
from .link import MAX_BANDWIDTH, Link
from .spool import PARALLEL, Spool

log = logging.getLogger("modelaudit")

#: Needs are rounded up to this, to save round trips on small neighbouring reads.
BLOCK = 16 * 1024
#: Most bytes merged across a gap between two needs (the gap costs bandwidth, not a request).
MAX_GAP = 4 * 1024 * 1024
#: What the scanners sniff at the start of a record or of trailing data (trailing.py).
SNIFF = 4096
#: Rounds in a row that each jump to one new place past everything read before (a walker
#: skipping record data) before the planner projects how many more it would take.
JUMPS_TO_PROJECT = 2
#: Most record starts guessed ahead in one round.
MAX_AHEAD = 1024
#: Requests of one object in flight while a walker's guesses are read (each is small).
WALK_PARALLEL = 32
#: The same for a reader whose reads go from threads (engine/rounds.py): a read in flight
#: there costs a thread blocked on its socket, not the event loop's time, and a walk's
#: requests cost round trips in waves of this many.
WALK_PARALLEL_BLOCKING = 128


def walk_parallel(spool: Spool) -> int:
    """Requests in flight while the object's walker reads its guesses."""
    return WALK_PARALLEL_BLOCKING if spool.reader.blocking_fills() else WALK_PARALLEL


#: Bytes read at each guessed record start (a tensor header is a few dozen bytes; a longer
#: one is read on in windows).
GUESS = 4 * 1024
#: One read this long measures the bandwidth before a walk is weighed against a download.
PROBE = 4 * 1024 * 1024
#: Requests of a round sent first, alone, when the endpoint's concurrency decides whether the
#: round beats a download (what the rest of the round costs is weighed after them).
TRIAL = 4
#: How much slower than measured on short reads a link may turn out on a long one.
UNSURE = 4
_SLACK = 256
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
        if end is not None:
            plan_trailing(view, 8 + raw.length + end)
    return True


def plan_trailing(view: ByteView, start: int) -> None:
    """What scanners/trailing.py reads of the bytes after a format's end: their head, and
    all of them when the head sniffs as something (a pickle is read to its end, anything
    else is copied out and scanned)."""
    if start >= view.size:
        return
    head = view.get(start, min(view.size, start + SNIFF))
    fmt = sniff_head(head, "", view.size - start)
    if fmt is None or fmt in (Format.TEXT, Format.EMPTY) or fmt in ZIP_FORMATS:
        return
    view.get(start, view.size)


def _tensors_end(header: bytes | None) -> int | None:
    """Where the last tensor of a safetensors header ends, relative to the data."""
    if header is None or values_bound(header) > MAX_JSON_VALUES:
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
        header = parse_gguf(view)
        if header.error is None and header.data_start:
            end = tensors_end(header)
            if end is not None:
                # the scanner sniffs what follows the tensor data (MA2015)
                plan_trailing(view, end)
    return True


def plan_onnx(view: ByteView) -> bool:
    with contextlib.suppress(WireError):
        walk_model(Wire(view))  # type: ignore[arg-type]
    return True


def plan_arrow(view: ByteView) -> bool:
    """A Parquet footer or an IPC file's first message and footer (a stream's first message)."""
    with contextlib.suppress(ArrowSchemaError, ParquetError):
        read_schemas(view)
    return True


def plan_zip(view: ByteView) -> bool:
    """PyTorch checkpoints: the directory, and every record the PyTorch zip scanner reads
    (all but tensor storages), with their local headers; the heads of storage records no
    pickle names (sniffed by the scanner, MA2013), all of those that sniff as something, and
    what follows the zip. Other zips are read whole."""
    try:
        directory = parse_directory(view)
    except ZipFormatError:
        return True
    if classify_zip(directory.names) != Format.PYTORCH_ZIP:
        return False
    needed: list[tuple[int, int]] = []
    records: dict[str, bytes] = {}
    for entry in directory.entries:
        # an "encrypted" record is read in the clear, as torch's miniz reads it
        if entry.is_dir or is_tensor_record(entry.name):
            continue
        data = _member(view, entry, entry.compressed_size, needed)
        if data is not None and entry.name.replace("\\", "/").rsplit("/", 1)[-1] in _INDEX:
            records[entry.name] = data
    if needed:
        raise NeedBytes(needed)
    referenced = _referenced(directory, records)
    heads: list[tuple[ZipEntry, bytes]] = []
    for entry in directory.entries:
        if not is_tensor_record(entry.name) or entry.name in referenced:
            continue
        head = _member(view, entry, min(entry.compressed_size, _head_bytes(entry)), needed)
        if head is not None:
            heads.append((entry, head))
    if needed:
        raise NeedBytes(needed)
    for entry, head in heads:
        if _sniff_record(entry, head):
            _member(view, entry, entry.compressed_size, needed)
    if needed:
        raise NeedBytes(needed)
    plan_trailing(view, directory.end_offset)
    return True


#: The pickle whose persistent ids name a folder's storage records.
_INDEX = {"data.pkl": "data", "constants.pkl": "constants"}


def _member(
    view: ByteView, entry: ZipEntry, length: int, needed: list[tuple[int, int]]
) -> bytes | None:
    """The first `length` stored bytes of a member, or None with its needs added to
    `needed` (the local header and, guessed from the central entry, the data too: one round
    for both)."""
    try:
        start, _ = local_data_offset(view, entry)
        return view.get(start, start + length)
    except MemberError:
        return None
    except NeedBytes as need:
        needed += need.ranges
        guess = entry.local_offset + 30 + len(entry.raw_name)
        needed.append((guess, guess + length + 256))
        return None


def _referenced(directory: ZipDirectory, records: dict[str, bytes]) -> set[str]:
    """Storage records a data.pkl / constants.pkl names (stored or deflated records)."""
    by_name = {e.name: e for e in directory.entries}
    out: set[str] = set()
    for name, raw in records.items():
        entry = by_name[name]
        data = raw
        if entry.method == 8:
            try:
                data = zlib.decompressobj(-15).decompress(raw, 256 * 1024 * 1024)
            except zlib.error:
                continue
        elif entry.method != 0:
            continue
        folder, _, base = name.replace("\\", "/").rpartition("/")
        prefix = f"{folder}/{_INDEX[base]}/" if folder else f"{_INDEX[base]}/"
        out.update(prefix + key for key in storage_keys(data))
    return out


def _head_bytes(entry: ZipEntry) -> int:
    """Stored bytes the scanner's 4 KiB peek takes: all of a stored head, more of a
    compressed one (its decompressor reads ahead)."""
    return SNIFF if entry.method == 0 else 64 * 1024


def _sniff_record(entry: ZipEntry, head: bytes) -> bool:
    if entry.method == 8:
        try:
            head = zlib.decompressobj(-15).decompress(head, SNIFF)
        except zlib.error:
            return False
    elif entry.method != 0:
        return True  # another codec: take the record whole, the scanner decides
    fmt = sniff_head(head[:SNIFF], entry.name, entry.size)
    return fmt is not None


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
    Format.PARQUET: plan_arrow,
    Format.ARROW_IPC: plan_arrow,
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
        elif start and spool.covered(start - 1, start):
            # reading on past what arrived (a header longer than the head): as much again
            self.window = max(BLOCK, min(MAX_WINDOW, start - spool.run_start(start - 1)))
        else:
            self.window = BLOCK
        if start == self.end or (start and spool.covered(start - 1, start)):
            # reading on: at least what one round trip costs in bytes (slow requests, as on
            # a server that reads the whole object for each range, take bigger windows)
            self.window = max(self.window, min(MAX_GAP, spool.link.gap))
        stop = min(max(end, start + self.window), spool.next_start(start))
        self.end = max(end, stop)
        return start, self.end


def merge_gap(link: Link, parallel: int) -> int:
    """Bytes between two needs worth reading rather than sending one more request: the
    share of a round trip one more request costs among those the endpoint serves at once
    (as `Link.cost` counts them, a fraction included: a measured 1.99 at once taken as 1
    doubled the gap, and a 0 ms walk's guesses, 2 MiB apart, were read with the tensor
    data between them, 800 MB in one round, which then lost to the download)."""
    at_once = max(1.0, min(float(parallel), link.concurrency))
    return min(MAX_GAP, max(BLOCK, int(link.gap / at_once)))


def coalesce(ranges: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Sorted ranges, those less than `gap` bytes apart merged into one."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start - out[-1][1] <= gap:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


class _Walker:
    """Notices a parser that jumps from record to record (one need per round, each past all
    that was read before, with unread bytes between), guesses where the next records start
    (the same stride again: layers of one shape), and projects how many rounds remain."""

    def __init__(self, parallel: int = WALK_PARALLEL) -> None:
        self.parallel = parallel
        self.frontier = 0
        self.jumps = 0
        self.stride = 0
        self.ahead = parallel
        #: the last jump landed where the stride said (the guesses are worth holding for)
        self.steady = False

    def observe(self, ranges: list[tuple[int, int]], spool: Spool) -> bool:
        """Whether this round's need is a jump."""
        if len(ranges) != 1:
            self.jumps = 0
            return False
        start = ranges[0][0]
        if start <= self.frontier or start == 0 or spool.covered(start - 1, start):
            self.jumps = 0
            self.frontier = max(self.frontier, start)
            return False
        gap = start - self.frontier
        records = round(gap / self.stride) if self.stride else 0
        # (records may grow a little as they go: a name gaining a digit)
        self.steady = bool(
            self.jumps and records >= 1 and abs(gap - records * self.stride) <= _SLACK + 4 * records
        )
        if self.steady:
            if records > 1:
                # the guesses held up to here: guess four times as far
                self.ahead = min(self.ahead * 4, MAX_AHEAD)
        else:
            # (the first jump starts from the top of the file, which says nothing of records)
            self.stride = gap if self.jumps else 0
            self.ahead = self.parallel
        self.frontier = start
        self.jumps += 1
        return True

    def guesses(self, spool: Spool) -> list[tuple[int, int]]:
        """Where the next records would start if they are as long as the last."""
        if self.stride <= 0:
            return []
        starts = (self.frontier + k * self.stride for k in range(1, self.ahead + 1))
        # a little before each guess too: names grow a digit (w9, w10) and shift the rest
        return [(p - _SLACK, min(spool.size, p + GUESS)) for p in starts if p < spool.size]

    def probe(self, spool: Spool, rounds: int, per_round: float) -> list[tuple[int, int]]:
        """One long read from the walker's position when the link's bandwidth is unknown
        and whether the walk or one download is cheaper turns on it."""
        link = spool.link
        if self.jumps < 2 or link.bandwidth_known:
            return []
        rest = spool.missing_bytes(self.frontier)
        if rest < 8 * PROBE:
            return []  # little left: what it costs either way is small
        if self.stride > 0:
            walk = self.projected(spool, rounds, per_round)
            if walk <= link.latency + rest / MAX_BANDWIDTH:
                return []  # the walk wins however fast the link
            if walk > link.latency + rest * UNSURE / link.bandwidth:
                # the download wins unless the link is far slower than it looked (requests
                # the endpoint serves one at a time, each as slow as a long transfer)
                return []
        return [(self.frontier, min(spool.size, self.frontier + PROBE))]

    def cost_left(self, spool: Spool, rounds: int, per_round: float) -> float:
        """Seconds the rest of the walk would take after this round, projected from what it
        did so far: the records past this round's guesses."""
        if self.jumps < JUMPS_TO_PROJECT and not (self.jumps and spool.link.concurrency < 2):
            # (an endpoint seen serving one request at a time is weighed from the first jump:
            # each request there costs what a long transfer does)
            return 0.0
        return self.projected(spool, rounds, per_round, beyond=True)

    def rounds_left(self, spool: Spool, rounds: int, per_round: float) -> float:
        """Seconds the rest of the walk takes at least, whatever the bandwidth and however
        many requests the endpoint serves at once: its rounds, at the wall time rounds
        took so far (what a round that probes the bandwidth is weighed with)."""
        if self.stride <= 0:
            return 0.0
        return self._rounds((spool.size - self.frontier) / self.stride, per_round)

    def _rounds(self, records: float, per_round: float) -> float:
        return (math.log(records / self.ahead + 1, 4) + 1) * per_round

    def projected(self, spool: Spool, rounds: int, per_round: float, beyond: bool = False) -> float:
        """Seconds the rest of the walk would take: its rounds at the wall time rounds took
        so far, and its requests (`beyond`: only those past the records this round's guesses
        read, which the round's own cost counts)."""
        link = spool.link
        # (before the stride shows, the first jump's length stands for it)
        stride = self.stride or (self.frontier if self.jumps == 1 else 0)
        if stride > 0:
            # guessing holds: one request per record left, in rounds four times as wide each
            records = (spool.size - self.frontier) / stride
            if beyond and self.stride > 0:
                records -= self.ahead
                if records < 1:
                    return 0.0
            guessed = link.cost(int(records), int(records) * (GUESS + _SLACK), self.parallel)
            return self._rounds(records, per_round) + guessed
        left = rounds * (spool.size - self.frontier) / self.frontier
        return left * max(per_round, link.latency)


def walk_seconds(
    records: int,
    latency: float,
    bandwidth: float,
    concurrency: float,
    parallel: int = WALK_PARALLEL,
) -> float:
    """Seconds a walk by ranged reads of `records` records would take on a link of these
    measured figures: a request per record (and the tail's), `parallel` in flight, in
    waves of what the endpoint serves at once, and no fewer round trips than the walker's
    rounds (the head's, the stride's, then guesses four times as many each round)."""
    requests = records + 1
    waves = math.ceil(requests / max(1.0, min(float(parallel), concurrency)))
    rounds = math.log(records / parallel + 1, 4) + 2
    return max(waves, rounds) * latency + requests * (GUESS + _SLACK) / bandwidth


async def walk_records(spool: Spool, fmt: str | None) -> int:
    """How many records a walk of the object would read, projected from what arrived (the
    head): the parser's first jump lands one record in, and every record is taken to be as
    long. 0: what arrived asks for nothing past itself."""
    chosen = PLANS.get(fmt or "")
    if chosen is None:
        return 0

    def first_need() -> int:
        try:
            chosen(spool)
        except NeedBytes as need:
            return min(a for a, _ in need.ranges)
        except Exception:
            log.debug("%s: no walk seen in the head", spool.uri, exc_info=True)
        return 0

    start = await anyio.to_thread.run_sync(first_need)
    if start <= 0:
        return 0
    return max(1, math.ceil(spool.size / start))


async def _off_stream(
    spool: Spool, walker: _Walker, needs: list[tuple[int, int]], wanted: list[tuple[int, int]]
) -> None:
    """A round taken off the whole-object stream (engine/tap.py): no request to weigh or
    save, but the stream waits at the end of what is asked while the parser runs again.
    A walk that keeps its stride has its guesses waited for too (one run of the parser then
    covers many records); other guesses are taken only if the stream passes them anyway, so
    a guess that misses never leaves the next record behind the stream."""
    assert spool.tap is not None
    if walker.observe(needs, spool):
        guesses = walker.guesses(spool)
        if walker.steady:
            wanted = wanted + guesses
        else:
            spool.tap.ask([g for a, b in guesses for g in spool.missing(a, b)], hold=False)
    await spool.fetch_many(wanted)


async def _fetch_beside(
    spool: Spool,
    merged: list[tuple[int, int]],
    parallel: int,
    beside: list[tuple[int, int]],
    split: bool = True,
) -> None:
    """A round's reads and, at the same time but as requests of their own, `beside`: the
    link learns how many requests the endpoint serves at once from the round alone (a
    first round of one jump and the tail, two requests answered a millisecond apart at
    0 ms, made it one at a time, and the walk then read the tensor data between its
    guesses: a quarter of the object)."""
    if not beside:
        await spool.fetch_many(merged, split=split, parallel=parallel)
        return
    failures: list[Exception] = []

    async def one(ranges: list[tuple[int, int]], at_once: int, scope: anyio.CancelScope) -> None:
        try:
            await spool.fetch_many(ranges, split=split, parallel=at_once)
        except Exception as exc:
            failures.append(exc)
            scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, beside, PARALLEL, tg.cancel_scope)
        tg.start_soon(one, merged, parallel, tg.cancel_scope)
    if failures:
        raise failures[0]


async def plan(spool: Spool, fmt: str | None, beside: list[tuple[int, int]] | None = None) -> bool:
    """Fetch into `spool` what the scanner of `fmt` will read; False: it reads (nearly) all
    of it, so the caller fetches the rest. `beside`: ranges the first round fetches beside
    what the parser asks for: ranges at the object's end (the tail, which every planned
    format reads last), which a switch to one request for the rest brings anyway."""
    fmt = fmt or ""
    chosen = PLANS.get(fmt)
    if chosen is None:
        return False
    windows = _Windows()
    walker = _Walker(walk_parallel(spool))
    link = spool.link
    began = time.monotonic()
    # a round of several requests was sent: how many the endpoint serves at once is known
    tried = False
    for rounds in range(1, MAX_ROUNDS + 1):
        try:
            return await anyio.to_thread.run_sync(_run, chosen, fmt, spool)
        except NeedBytes as need:
            wanted = [windows.expand(a, b, spool) for a, b in sorted(need.ranges)]
            extra = [r for r in beside or () if not spool.covered(*r)]
            beside = None
            if spool.tap is not None:
                await _off_stream(spool, walker, need.ranges, wanted + extra)
                continue
            later = 0.0
            parallel = PARALLEL
            if walker.observe(need.ranges, spool):
                parallel = walker.parallel
                per_round = (time.monotonic() - began) / rounds
                probe = walker.probe(spool, rounds, per_round)
                wanted += walker.guesses(spool) + probe
                if probe:
                    # (a round that measures the bandwidth decides after it, unless the
                    # walk's rounds alone, at what rounds took so far, already lose)
                    later = walker.rounds_left(spool, rounds, per_round)
                else:
                    later = walker.cost_left(spool, rounds, per_round)
            merged = coalesce(wanted, merge_gap(link, parallel))
            requests = spool.requests_for(merged)
            first = min((a for a, _ in requests), default=0)
            rest = link.cost(1, spool.missing_bytes(first))
            this_round = link.cost(len(requests), sum(b - a for a, b in requests), parallel)
            switch = bool(requests) and this_round + later > rest
            log.debug(
                "planning %s: round %d, %d requests (%.3fs; then %.3fs; the rest %.3fs; "
                "latency %.3fs, %.0f MB/s, %.1f at once)%s",
                spool.uri,
                rounds,
                len(requests),
                this_round,
                later,
                rest,
                link.latency,
                link.bandwidth / 1e6,
                link.concurrency,
                ": costs more than the rest, fetching it" if switch else "",
            )
            if switch:
                await spool.stream_rest(first)
                continue
            if (
                not tried
                and len(requests) > TRIAL
                and link.cost(len(requests), sum(b - a for a, b in requests)) + later > rest
            ):
                # served one at a time, this round would lose to the download: how many the
                # endpoint serves at once is measured on a few of them first (Link.observe_
                # round), and the next round is weighed with it
                tried = True
                await _fetch_beside(spool, requests[:TRIAL], parallel, extra, split=False)
                continue
            tried = tried or len(requests) > TRIAL
            await _fetch_beside(spool, merged, parallel, extra)
    log.debug("planning %s took too many rounds; downloading it", spool.uri)
    return False
