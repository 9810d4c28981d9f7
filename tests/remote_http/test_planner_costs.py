"""What remote scans cost in requests and bytes, counted by the servers and a real relay.

The relay (tests/remote_http/_relay.py) adds 50 ms each way, so every request costs a round
trip; the planner measures that and must not walk an ONNX model tensor by tensor. Nothing
here measures time: only requests and bytes seen on the server's side of a socket.
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import modelaudit
from modelaudit.findings import FileStatus
from tests.remote_http._relay import Relay
from tests.remote_http._remote_http_servers import (
    BIG_EVIL_PICKLE,
    Blob,
    Server,
    onnx_with_tensors,
    pin_link,
    pin_slow_link,
    same_findings_as_local,
)

Files = tuple[Server, dict[str, Blob], dict[str, Any]]
MIB = 1 << 20


@pytest.fixture
def relay(files_server: Files) -> Iterator[Relay]:
    server, _, _ = files_server
    front = Relay(server.server_address[1], latency=0.05)
    yield front
    front.stop()


def _gets(server: Server, name: str) -> list[str]:
    return [
        r.headers.get("range", "") for r in server.requests if r.method == "GET" and name in r.path
    ]


def _big_safetensors(size: int) -> bytes:
    header = {"w": {"dtype": "F32", "shape": [size // 4], "data_offsets": [0, size]}}
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    return struct.pack("<Q", len(blob)) + blob + bytes(size)


async def test_onnx_with_many_tensors_is_not_walked_request_by_request(
    files_server: Files, relay: Relay, tmp_path: Path
) -> None:
    """200 embedded tensors behind 50 ms of latency: a walk would take ~200 rounds; the
    planner projects that after a few and fetches the rest in one request."""
    server, blobs, _ = files_server
    data = onnx_with_tensors(200, 32768)
    blobs["many.onnx"] = Blob(data)
    report = await modelaudit.scan(f"{relay.url}/many.onnx")
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    gets = _gets(server, "many.onnx")
    assert len(gets) <= 10, gets
    local = tmp_path / "many.onnx"
    local.write_bytes(data)
    (whole,) = (await modelaudit.scan(str(local))).files
    assert [i.message for i in file.issues] == [i.message for i in whole.issues]


async def test_onnx_on_a_link_where_requests_are_cheap_is_planned(files_server: Files) -> None:
    """The same model where requests cost little next to bytes: ranged reads of a fraction
    of the bytes (the cost model decides, not the format), at most one per tensor, and sent
    in parallel: once two jumps show the stride, the next tensors' starts are read ahead
    together, twice as many each round the guesses hold."""
    server, blobs, opts = files_server
    data = onnx_with_tensors(200, 32768)
    blobs["many.onnx"] = Blob(data)
    pin_slow_link(server.url)
    opts["delay"] = 0.06
    report = await modelaudit.scan(f"{server.url}/many.onnx")
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    gets = _gets(server, "many.onnx")
    assert len(gets) <= 200 + 4, len(gets)
    assert opts["peak"] >= 8
    assert server.sent("many.onnx") < len(data) // 4


def _span(header: str) -> int:
    first, _, last = header.removeprefix("bytes=").partition("-")
    return int(last) + 1 - int(first) if last else 1 << 62


async def test_onnx_walk_reads_tensor_headers_many_at_once_when_a_download_costs_more(
    files_server: Files, tmp_path: Path
) -> None:
    """300 tensors of 64 KiB, 50 ms per request, a 5 MB/s link: downloading 19 MiB costs
    ~4 s, the walk ~10 waves of requests. The planner walks, with the tensors' headers read
    ahead many requests at a time (more than the 8 of other rounds), a few KiB each."""
    server, blobs, opts = files_server
    data = onnx_with_tensors(300, 16384)
    blobs["walk.onnx"] = Blob(data)
    pin_link(server.url, 0.05, 5e6)
    opts["delay"] = 0.05
    report = await modelaudit.scan(f"{server.url}/walk.onnx")
    await same_findings_as_local(report, data, tmp_path)
    gets = _gets(server, "walk.onnx")
    assert len(gets) <= 300 + 6, len(gets)
    assert opts["peak"] > 8, opts["peak"]
    # a header read is a few KiB, not a block per tensor
    assert server.sent("walk.onnx") < 300 * 8 * 1024 + 256 * 1024, server.sent("walk.onnx")


async def test_onnx_walk_turns_into_one_download_after_a_few_requests_when_cheaper(
    files_server: Files, tmp_path: Path
) -> None:
    """The same model on a fast link (50 ms, 2 GB/s): the download wins, and the planner
    takes it as soon as the walk shows itself, in one request, without fetching anything
    twice but the few KiB read before."""
    server, blobs, opts = files_server
    data = onnx_with_tensors(300, 16384)
    blobs["fast.onnx"] = Blob(data)
    pin_link(server.url, 0.05, 2e9)
    opts["delay"] = 0.05
    report = await modelaudit.scan(f"{server.url}/fast.onnx")
    await same_findings_as_local(report, data, tmp_path)
    gets = _gets(server, "fast.onnx")
    assert len(gets) <= 6, gets
    # (the round before it may read through the next few tensors: cheaper than requests)
    assert max(_span(g) for g in gets) >= len(data) * 0.75, gets
    assert server.sent("fast.onnx") <= len(data) + 256 * 1024, server.sent("fast.onnx")


async def test_onnx_walk_measures_an_unknown_link_with_one_long_read_first(
    files_server: Files, relay: Relay, tmp_path: Path
) -> None:
    """Nothing measured yet (short reads say little of bandwidth) and a walk whose cost
    against a download turns on it: one read of a few MiB from the walker's position (its
    bytes hold the next tensors) measures the link before the choice. Whichever way it
    goes, nothing but that read is spent on top of the plan or the download."""
    from modelaudit.engine import link
    from modelaudit.engine.range_plan import PROBE

    server, blobs, _ = files_server
    data = onnx_with_tensors(40, 262144)  # 40 tensors of 1 MiB
    blobs["probe.onnx"] = Blob(data)
    report = await modelaudit.scan(f"{relay.url}/probe.onnx")
    await same_findings_as_local(report, data, tmp_path)
    gets = _gets(server, "probe.onnx")
    assert any(PROBE <= _span(g) < 2 * PROBE for g in gets), gets
    assert len(gets) <= 40 + 6, gets
    assert server.sent("probe.onnx") <= len(data) + PROBE + 256 * 1024
    assert link.link_for(f"http://127.0.0.1:{relay.port}").bandwidth_known


def test_link_weighs_bandwidth_samples_by_size() -> None:
    """A read of a few hundred KiB that came in one piece says nothing; a long read
    outweighs short ones; only a long read makes the bandwidth known."""
    from modelaudit.engine.link import Link

    link = Link()
    link.observe(0.01, 512 * 1024, 0.0101, first_piece=512 * 1024)
    assert link.bandwidth_samples == 0
    link.observe(0.01, 300 * 1024, 0.0101)  # 3 GB/s: a burst from a buffer
    assert not link.bandwidth_known
    link.observe(0.01, 8 * MIB + 1024, 0.01 + 8 * MIB / 100e6, first_piece=1024)
    assert link.bandwidth_known
    assert 90e6 < link.bandwidth < 200e6, link.bandwidth


def test_a_round_served_at_once_measures_the_links_bandwidth_not_each_bodys() -> None:
    """32 bodies of 2 MiB sent together and served at once share a 100 MB/s link: each
    takes the whole round to arrive (3 MB/s apiece). The round's bandwidth is its bytes over
    its time less its round trip, not each body's (which priced a download 30 times dearer
    than it is, and walked an ONNX model where one download was cheaper)."""
    from modelaudit.engine.link import Link

    link = Link()
    wire = 32 * 2 * MIB / 100e6
    link.observe_round(32, 32, 0.05, 32 * 2 * MIB, 0.05 + wire, [(2 * MIB, 2 * MIB, wire)] * 32)
    assert 90e6 < link.bandwidth < 110e6, link.bandwidth
    assert link.bandwidth_known
    assert link.concurrency_samples == 0


def test_a_round_served_in_turns_measures_each_body() -> None:
    """Two 2 MiB bodies sent together, the second answered only after the first: each had
    the link to itself, so each is a sample (at 100 MB/s); a round mostly of waiting for
    answers says nothing of the bandwidth."""
    from modelaudit.engine.link import PRIOR_BANDWIDTH, Link

    link = Link()
    wire = 2 * MIB / 100e6
    link.observe_round(2, 8, 0.5, 4 * MIB, 1.0 + 2 * wire, [(2 * MIB, 2 * MIB, wire)] * 2)
    assert link.concurrency == pytest.approx(1.0, abs=0.05)
    assert 90e6 < link.bandwidth < 110e6, link.bandwidth
    idle = Link()
    idle.observe_round(32, 32, 0.05, 32 * 300 * 1024, 0.06, [(300 * 1024, 300 * 1024, 0.01)] * 32)
    assert idle.bandwidth == PRIOR_BANDWIDTH


def test_a_rounds_quickest_answer_does_not_make_a_parallel_endpoint_look_serial() -> None:
    """64 reads sent together on a link that answers in about 44 ms, one of them answered in
    2 ms (a fresh connection, a cached object) and the round over in 0.1 s: the endpoint
    served many at once. Weighed against that one quick answer alone, the round looked
    served one at a time, and the next round was priced at fifteen times what this one took
    (a walk at 0 ms was abandoned for the download). What `cost` predicts for the same round
    stays near what it took."""
    from modelaudit.engine.link import Link

    link = Link()
    for _ in range(3):
        link.observe(0.044, 4096, 0.045)
    link.observe_round(64, 64, 0.002, 64 * 4096, 0.1)
    assert link.concurrency > 8, link.concurrency
    assert link.cost(64, 64 * 4096, 64) < 0.2


def test_one_slow_answer_does_not_make_a_round_look_served_in_turns() -> None:
    """Four reads sent together: three answered after 3 ms, one after 41 ms (a delayed ACK).
    The round took 43 ms, but its median answer came at 3.3 ms: it was served at once, and
    the endpoint's concurrency stays unmeasured. Answers spread evenly over the round (a
    queue at the endpoint) still show one served at a time."""
    from modelaudit.engine.link import Link

    link = Link()
    link.observe(0.014, 4096, 0.0141)
    link.observe_round(4, 64, 0.003, 4 * 4096, 0.043, middle=0.0033)
    assert link.concurrency_samples == 0
    queued = Link()
    queued.observe(0.5, 4096, 0.5)
    queued.observe_round(4, 64, 0.5, 4 * 4096, 2.0, middle=1.5)
    assert queued.concurrency == pytest.approx(1.0, abs=0.05)


def test_link_learns_how_many_requests_an_endpoint_serves_at_once() -> None:
    """Two reads sent together, the second answered only after the first (0.5 s each):
    one at a time, so a batch costs a wave per request. A round served all at once says
    nothing of a limit, and a pinned link keeps what it was given."""
    from modelaudit.engine import link as links
    from modelaudit.engine.link import Link

    link = Link()
    link.observe_round(8, 32, 0.05, 64 * 1024, 0.06)  # eight at once: no limit seen
    assert link.concurrency_samples == 0
    assert link.cost(32, 0, 32) == pytest.approx(link.latency)
    link.observe(0.5, 64 * 1024, 0.5)
    link.observe_round(2, 8, 0.5, 320 * 1024, 1.0)
    assert link.concurrency == pytest.approx(1.0, abs=0.05)
    assert link.cost(32, 0, 32) == pytest.approx(32 * link.latency)
    pinned = links.pin("http://pinned.invalid:1", 0.05, 1e8)
    pinned.observe_round(2, 8, 0.5, 0, 1.0)
    assert pinned.cost(32, 0, 32) == pytest.approx(0.05)


def test_a_walks_guesses_are_not_merged_across_tensor_data_at_low_latency() -> None:
    """What a 0 ms walk of the 1 GiB benchmark model measured: 129 reads in 0.13 s, each
    answered in about 2 ms, after a 4 MiB read at 1.6 GB/s. A round bound by how fast the
    endpoint answers reads as about two requests served at once; one more request then
    costs half a round trip (~1 ms), and 2 MiB of tensor data between two guesses costs
    more than that, so the guesses stay separate requests. Counting 1.99 at once as 1
    merged them: the next round read 800 MB and the plan switched to the download."""
    from modelaudit.engine.link import Link
    from modelaudit.engine.range_plan import GUESS, coalesce, merge_gap

    link = Link()
    link.observe(0.002, 4 * MIB, 0.002 + 4 * MIB / 1.6e9, first_piece=64 * 1024)
    link.observe_round(129, 128, 0.002, 129 * GUESS, 0.13)
    assert 1.5 < link.concurrency < 2.5, link.concurrency
    stride = 2 * MIB + 4096
    guesses = [(k * stride, k * stride + GUESS) for k in range(1, 378)]
    assert merge_gap(link, 128) < stride - GUESS
    assert len(coalesce(guesses, merge_gap(link, 128))) == len(guesses)


async def test_pytorch_zip_takes_one_round_of_two_requests(
    files_server: Files, samples: dict[str, bytes]
) -> None:
    """Head and tail, sent together, hold the directory, data.pkl and the small records."""
    server, _, opts = files_server
    opts["delay"] = 0.2
    report = await modelaudit.scan(f"{server.url}/pytorch_model.bin")
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    gets = _gets(server, "pytorch_model.bin")
    assert len(gets) == 2, gets
    assert opts["peak"] == 2
    assert server.sent("pytorch_model.bin") < len(samples["torch_zip"]) // 4


async def test_large_safetensors_moves_under_one_percent(files_server: Files, relay: Relay) -> None:
    server, blobs, _ = files_server
    data = _big_safetensors(96 * MIB)
    blobs["big.safetensors"] = Blob(data)
    report = await modelaudit.scan(f"{relay.url}/big.safetensors")
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert len(_gets(server, "big.safetensors")) == 2
    assert relay.to_client < len(data) // 100


async def test_download_cut_again_and_again_resumes_while_it_progresses(
    files_server: Files, relay: Relay
) -> None:
    """Eight connections cut after 50 kB each, more cuts than retries: every reopening
    brought new bytes, so the pickle is read to its end."""
    _, blobs, _ = files_server
    relay.cuts.extend([50_000] * 8)
    report = await modelaudit.scan(f"{relay.url}/big_evil.pkl")
    (file,) = report.files
    assert file.status is FileStatus.COMPLETE, file.status_reason
    assert any(i.severity.value == "critical" for i in file.issues)
    assert not relay.cuts
    # every cut connection was used (a connection that ended its response is reused)
    assert relay.connections >= 8
    assert file.size == len(BIG_EVIL_PICKLE) == len(blobs["big_evil.pkl"].data)


async def test_download_cut_before_any_progress_gives_up(
    files_server: Files, relay: Relay, quick_retries: None
) -> None:
    from modelaudit.fetchers import TransientFetchError, resolve

    source = resolve(f"{relay.url}/big_evil.pkl")
    [obj] = [o async for o in source.objects()]
    await source.aclose()
    assert obj.reader is not None
    relay.cuts.extend([10] * 40)
    with pytest.raises(TransientFetchError):
        async for _ in obj.reader.stream():
            pass
    await obj.reader.aclose()
    assert relay.cuts, "attempts without progress are bounded"


async def test_onnx_walk_gives_up_early_where_each_request_reads_the_whole_object(
    files_server: Files, tmp_path: Path
) -> None:
    """An endpoint that reads the whole object for every GET, one GET at a time (as moto
    does): 0.1 s for any read of this 100 MiB model, however short, and parallel reads wait
    for each other. Nothing is pinned: the planner sees the head and tail, sent together,
    answered one after the other, so it counts the walk's ~200 header reads as ~200 such
    reads, not a few rounds of parallel ones, and downloads the rest after at most a few
    requests, without reading again what it has (old planner: 7, two of 8 MiB)."""
    server, blobs, opts = files_server
    data = onnx_with_tensors(200, 131072)
    blobs["whole.onnx"] = Blob(data)
    opts["whole_read"] = len(data) / 0.1
    report = await modelaudit.scan(f"{server.url}/whole.onnx")
    await same_findings_as_local(report, data, tmp_path)
    gets = _gets(server, "whole.onnx")
    # head and tail, then (usually at the first jump) the rest
    assert len(gets) <= 4, gets
    # one request for the rest; beside it, only reads of a header's size (no read-ahead)
    spans = sorted(_span(g) for g in gets)
    assert spans[-1] >= len(data) * 0.75, gets
    assert spans[-2] <= 256 * 1024, gets
    assert server.sent("whole.onnx") <= len(data) + 256 * 1024, server.sent("whole.onnx")


def _pb(num: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n >> 7 else 0))
            n >>= 7
            if not n:
                return bytes(out)

    return varint(num << 3 | 2) + varint(len(payload)) + payload


@functools.lru_cache(maxsize=1)
def _largeonnx_with_tensors(size: int, tensors: int) -> bytes:
    """A ModelProto of at least `size` bytes, written by hand (the onnx package would copy
    its tensors several times): `tensors` zero float initialisers, and after them a node of
    a custom domain (a finding only a walk to the end of the graph sees). Made once for the
    tests that serve the same 256 MiB model (about a second each)."""
    per = -(-size // tensors) // 4 * 4 + 4
    inits = b"".join(
        _pb(5, b"\x08" + bytes([1]) + b"\x10\x01" + _pb(8, f"w{i}".encode()) + _pb(9, bytes(per)))
        for i in range(tensors)
    )
    node = (
        _pb(1, b"x") + _pb(2, b"z") + _pb(3, b"py") + _pb(4, b"PyOp") + _pb(7, b"ai.onnx.contrib")
    )
    graph = _pb(2, b"g") + inits + _pb(1, node)
    return b"\x08\x08" + _pb(8, b"\x10\x11") + _pb(7, graph)


async def test_large_onnx_where_every_get_reads_the_whole_object_is_one_stream(
    files_server: Files, tmp_path: Path
) -> None:
    """An endpoint that reads the whole object before answering any GET (as moto does), 0.5 s
    for this model: the first read is a stream of the whole object, the head and every
    tensor's header are taken off it as it passes, and so is the tail. One request, the
    object's bytes once, hashed on the way; nothing pinned."""
    import hashlib

    from modelaudit.engine.acquire import STREAM_FIRST_FROM

    server, blobs, opts = files_server
    data = _largeonnx_with_tensors(STREAM_FIRST_FROM, 64)
    blobs["big.onnx"] = Blob(data)
    opts["whole_read"] = len(data) / 0.5
    report = await modelaudit.scan(f"{server.url}/big.onnx", hashes=True)
    await same_findings_as_local(report, data, tmp_path)
    (file,) = report.files
    assert file.issues
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    gets = _gets(server, "big.onnx")
    assert len(gets) == 1 and _span(gets[0]) == len(data), gets
    assert server.sent("big.onnx") == len(data)


async def test_large_onnx_where_requests_are_cheap_cuts_its_stream_and_walks(
    files_server: Files, tmp_path: Path
) -> None:
    """The same model on an endpoint that answers at once over a slow link (50 MB/s): the
    stream that was the first read is cut after its head and the tensors' headers are read
    by ranges. What the cut stream moved (the fill reads a few buffers ahead) and the walk
    stay a fraction of the object, and no hash is made of the stream's first bytes alone."""
    import hashlib

    from modelaudit.engine.acquire import STREAM_FIRST_FROM

    server, blobs, _ = files_server
    data = _largeonnx_with_tensors(STREAM_FIRST_FROM, 64)
    blobs["big.onnx"] = Blob(data)
    server.rate = 50e6
    report = await modelaudit.scan(f"{server.url}/big.onnx", hashes=True)
    await same_findings_as_local(report, data, tmp_path)
    (file,) = report.files
    assert file.issues
    assert file.sha256 in (None, hashlib.sha256(data).hexdigest())
    gets = _gets(server, "big.onnx")
    assert _span(gets[0]) == len(data), gets
    assert len(gets) > 2 and all(_span(g) < len(data) // 8 for g in gets[1:]), gets
    assert server.sent("big.onnx") < len(data) // 4, server.sent("big.onnx")


async def test_large_object_named_onnx_that_is_no_model_is_read_in_one_stream(
    files_server: Files,
) -> None:
    """A pickle named like a large ONNX model, where every GET reads the whole object: the
    first read's stream, whose head no planner serves, brings the rest too (the scanner
    reads it all), not a second download."""
    from modelaudit.engine.acquire import STREAM_FIRST_FROM

    server, blobs, opts = files_server
    data = BIG_EVIL_PICKLE + bytes(STREAM_FIRST_FROM)
    blobs["evil.onnx"] = Blob(data)
    opts["whole_read"] = len(data) / 0.5
    report = await modelaudit.scan(f"{server.url}/evil.onnx")
    (file,) = report.files
    assert any(i.severity.value == "critical" for i in file.issues), file.status_reason
    gets = _gets(server, "evil.onnx")
    assert len(gets) <= 2 and _span(gets[0]) == len(data), gets
    assert server.sent("evil.onnx") <= len(data) + 1024 * 1024, server.sent("evil.onnx")


async def test_large_onnx_whose_ranged_reads_each_read_the_whole_object_switches_early(
    files_server: Files, tmp_path: Path
) -> None:
    """The stream of the whole object answers at once, but every ranged GET reads the whole
    object first, one at a time (0.5 s each): the stream's quick answer says ranges are
    cheap, the ranged reads then say otherwise. The walk's cost is measured as it goes (the
    stream's time to answer is not taken for a ranged read's; a round that would lose to the
    download if served one at a time is tried on a few requests first), so the rest is
    downloaded after a few ranged reads, not one per tensor."""
    from modelaudit.engine.acquire import STREAM_FIRST_FROM

    server, blobs, opts = files_server
    data = _largeonnx_with_tensors(STREAM_FIRST_FROM, 64)
    blobs["big.onnx"] = Blob(data)
    opts["ranged_whole_read"] = len(data) / 0.5
    # (a link no faster than this: the stream's rate does not say a download wins outright,
    # so the walk's first rounds must)
    server.rate = 400e6
    report = await modelaudit.scan(f"{server.url}/big.onnx")
    await same_findings_as_local(report, data, tmp_path)
    gets = _gets(server, "big.onnx")
    # the stream (cut or kept); then at most the tail, one jump, a trial of a few reads that
    # shows they are served one at a time, and one request for the rest (old planner: 36,
    # a probe round of 32 whole-object reads)
    assert len(gets) <= 8, gets
    assert server.sent("big.onnx") <= 2 * len(data), server.sent("big.onnx")


def test_a_round_whose_guesses_reach_the_end_is_not_weighed_with_the_walk_again(
    tmp_path: Path,
) -> None:
    """A walker 300 records from the end whose round guesses 512 records ahead: that round
    reads every record left, so nothing of the walk is left after it. The walk past the
    round's guesses was projected from the walker's position, which priced the records the
    round reads twice (a last round of a walk at 50 ms lost to the download by that)."""
    from modelaudit.engine import link as links
    from modelaudit.engine.range_plan import _Walker
    from modelaudit.engine.spool import Spool
    from modelaudit.fetchers.base import FailedReader, FetchError

    stride = 65 * 1024
    spool = Spool(FailedReader(FetchError("none")), str(tmp_path / "spool"), 812 * stride, "x")
    try:
        links.pin(spool.reader.endpoint or "FailedReader", 0.05, 1e9)
        walker = _Walker(64)
        walker.jumps, walker.stride, walker.ahead = 3, stride, 512
        walker.frontier = 512 * stride
        assert walker.cost_left(spool, 3, 0.1) == 0.0
        walker.ahead = 128
        left = walker.cost_left(spool, 3, 0.1)
        # (172 records past the guesses: three waves of requests and the rounds)
        assert 0.1 < left < walker.projected(spool, 3, 0.1), left
    finally:
        spool.close()


async def test_a_walk_near_the_streams_cost_is_taken(tmp_path: Path) -> None:
    """A large ONNX model whose walk is projected a little dearer than the rest of its
    stream at the link's rate (under STREAM_DOUBT times): the walk is taken. Kept,
    a stream cannot be left when its rate turns out to have been its quickest part, while a
    walk dearer than projected switches to one request for the rest after a round."""
    from modelaudit.engine import link as links
    from modelaudit.engine.acquire import STREAM_DOUBT, STREAM_FIRST_FROM, _ranges_cheap
    from modelaudit.engine.range_plan import walk_parallel, walk_records, walk_seconds
    from modelaudit.engine.spool import Spool
    from modelaudit.engine.tap import Tap
    from modelaudit.fetchers.base import FailedReader, FetchError

    data = _largeonnx_with_tensors(STREAM_FIRST_FROM, 64)
    spool = Spool(FailedReader(FetchError("none")), str(tmp_path / "spool"), len(data), "x")
    endpoint = spool.reader.endpoint or "FailedReader"
    try:
        await spool._write(bytearray(data[: 8 * MIB]), 0)
        records = await walk_records(spool, "onnx")
        assert records >= 16, records
        latency, passed = 0.05, 8 * MIB
        link = links.pin(endpoint, latency, 1e9)
        tap = Tap(spool.fd)
        tap.passed = passed
        for ratio, walks in ((1.2, True), (STREAM_DOUBT + 0.1, False)):
            # the rate at which the walk costs `ratio` times the rest of the stream
            for _ in range(5):
                walk = walk_seconds(
                    records, latency, link.bandwidth, link.concurrency, walk_parallel(spool)
                )
                link.bandwidth = (len(data) - passed) * ratio / walk
            assert await _ranges_cheap(spool, tap, "onnx") is walks, ratio
    finally:
        links.forget(endpoint)
        spool.close()


async def test_a_cut_streams_tail_comes_with_the_walks_first_round(
    files_server: Files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large ONNX model whose stream is cut for a walk by ranges: its tail is read while
    the walk's first round is, not in a round trip of its own before it."""
    from modelaudit.engine.acquire import STREAM_FIRST_FROM
    from modelaudit.engine.spool import Spool
    from modelaudit.formats.format import end_read

    server, blobs, _ = files_server
    data = _largeonnx_with_tensors(STREAM_FIRST_FROM, 64)
    blobs["big.onnx"] = Blob(data)
    server.rate = 50e6
    tail = (len(data) - end_read("big.onnx", len(data)), len(data))
    # ranges fetched by range (the stream cut), and which fetches overlapped the tail's
    fetched: list[list[tuple[int, int]]] = []
    in_flight: list[list[tuple[int, int]]] = []
    beside_tail: list[list[tuple[int, int]]] = []
    fetch_many = Spool.fetch_many

    def holds_tail(ranges: list[tuple[int, int]]) -> bool:
        return any(a <= tail[0] and tail[1] <= b for a, b in ranges)

    async def recorded(self: Spool, ranges: list[tuple[int, int]], *args: Any, **kw: Any) -> None:
        if self.tap is not None:
            await fetch_many(self, ranges, *args, **kw)
            return
        fetched.append(sorted(ranges))
        if holds_tail(ranges):
            beside_tail.extend(in_flight)
        elif any(holds_tail(r) for r in in_flight):
            beside_tail.append(ranges)
        in_flight.append(ranges)
        try:
            await fetch_many(self, ranges, *args, **kw)
        finally:
            in_flight.remove(ranges)

    monkeypatch.setattr(Spool, "fetch_many", recorded)
    report = await modelaudit.scan(f"{server.url}/big.onnx")
    await same_findings_as_local(report, data, tmp_path)
    # in a request of its own: a round of the jump and the tail, two requests answered a
    # moment apart at 0 ms, taught the link that the endpoint serves one at a time
    assert [r for r in fetched if holds_tail(r)] == [[tail]], fetched
    # the walk's first jump was read while the tail was
    assert beside_tail and not any(holds_tail(r) for r in beside_tail), fetched


async def test_a_stream_is_kept_only_by_its_rate_across_the_buffers_read_ahead(
    tmp_path: Path,
) -> None:
    """The stream's rate is sampled on the buffers the fill reads ahead. The latest alone
    may come out of the sockets' backlog while the planner held the stream, far above the
    link's rate: at that rate the stream would win, at the rate across the buffers the walk
    does, and the walk is taken (kept, such a stream took 1.4-1.7 times a download's time)."""
    from modelaudit.engine import link as links
    from modelaudit.engine.acquire import STREAM_DOUBT, STREAM_FIRST_FROM, _ranges_cheap
    from modelaudit.engine.fill import BUFFER, BUFFERS
    from modelaudit.engine.link import MAX_BANDWIDTH
    from modelaudit.engine.range_plan import walk_parallel, walk_records, walk_seconds
    from modelaudit.engine.spool import Spool
    from modelaudit.engine.tap import Tap
    from modelaudit.fetchers.base import FailedReader, FetchError

    data = _largeonnx_with_tensors(STREAM_FIRST_FROM, 64)
    spool = Spool(FailedReader(FetchError("none")), str(tmp_path / "spool"), len(data), "x")
    endpoint = spool.reader.endpoint or "FailedReader"
    links.forget(endpoint)
    try:
        await spool._write(bytearray(data[: 8 * MIB]), 0)
        records = await walk_records(spool, "onnx")
        latency = 0.05
        concurrency = links.link_for(endpoint).concurrency
        walk = walk_seconds(records, latency, 1e9, concurrency, walk_parallel(spool))
        rest = len(data) - BUFFER
        steady = rest / (3 * walk)  # the rest takes three walks at this rate
        peak = 2 * rest / walk  # and half of one at this (capped at MAX_BANDWIDTH)
        # (at the peak, even the walk's benefit of the doubt keeps the stream)
        assert walk > STREAM_DOUBT * rest / min(peak, MAX_BANDWIDTH)
        tap = Tap(spool.fd)
        tap.began, tap.opened, tap.passed = 0.0, latency, BUFFER
        at = latency + BUFFER / steady
        tap.first_arrival = (at, BUFFER)
        at += (BUFFERS - 2) * BUFFER / steady
        tap.prev_arrival = (at, (BUFFERS - 1) * BUFFER)
        tap.last_arrival = (at + BUFFER / peak, BUFFERS * BUFFER)
        assert await _ranges_cheap(spool, tap, "onnx")
    finally:
        links.forget(endpoint)
        spool.close()
