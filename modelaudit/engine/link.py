"""What a request to one endpoint costs, measured from the responses seen so far.

The range planner weighs each round of ranged requests (waves of parallel requests times the
latency, plus bytes over the bandwidth) against fetching the rest of the object in one
streamed request, and switches to that whenever it is cheaper. Latency is the time to a
response's first byte; bandwidth is measured on bodies long enough to show it, each counted by
its size (a read of a few hundred KiB arrives in one or two pieces and says little; a read of
megabytes outweighs it), and what came with the first piece is not counted, since its time is
the latency's. Both start from priors and are kept per endpoint for the life of the process, so
the first objects of a sweep teach the planner about the later ones. `bandwidth_known` says
whether a read long enough to trust was seen; until then a planner about to choose between
many requests and one download makes one such read first (range_plan's probe).

Requests sent together are not always served together: moto, for one, reads the whole
object in one Python process for every ranged GetObject, so parallel reads queue and each
costs a whole object read. Each round of parallel requests tells how many the endpoint
served at once (`concurrency`): the requests times the time the first of them took to
answer, over the round's wall time (its bytes' share of it taken out), and only that first answer
times the latency (the others' waits include the queue). The cost of a batch counts waves of
that many, not of as many as were sent.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Final

#: Before anything is measured: a cloud store reached over the internet.
PRIOR_LATENCY: Final = 0.03
PRIOR_BANDWIDTH: Final = 100e6
#: Bodies shorter than this say little about bandwidth.
MIN_SAMPLE: Final = 256 * 1024
#: A body this long (after its first piece) measures bandwidth well enough to plan by.
TRUSTED_SAMPLE: Final = 2 * 1024 * 1024
_MIN_BANDWIDTH: Final = 1e6
#: No link is assumed faster than this (what a walk is weighed against before a probe).
MAX_BANDWIDTH: Final = 4e9
_WEIGHT: Final = 0.3
#: Bytes of past samples the bandwidth estimate weighs a new sample against (older ones fade).
_MEMORY: Final = 64 * 1024 * 1024
#: Assumed until a round of several requests shows otherwise.
_MAX_CONCURRENCY: Final = 64
#: A round served at least this share of its requests at once shows no limit.
_ALL_SERVED: Final = 0.75
#: A round spent at least this share of its time moving bytes (not waiting for answers)
#: measures the bandwidth.
_WIRE_SHARE: Final = 0.25


class Link:
    """Latency (seconds) and bandwidth (bytes per second) of one endpoint."""

    def __init__(self) -> None:
        self.latency = PRIOR_LATENCY
        self.bandwidth = PRIOR_BANDWIDTH
        self.latency_samples = 0
        self.bandwidth_samples = 0
        #: body bytes and seconds behind the bandwidth estimate (older ones fade past
        #: `_MEMORY` bytes)
        self.sampled = 0.0
        self.sampled_time = 0.0
        #: longest body measured so far
        self.longest = 0
        #: requests the endpoint serves at once, as measured on rounds of several
        self.concurrency = float(_MAX_CONCURRENCY)
        self.concurrency_samples = 0
        #: set by `pin`: the figures are given, not measured
        self.pinned = False

    def observe(
        self,
        first_byte: float,
        size: int,
        elapsed: float,
        first_piece: int = 0,
        alone: bool = True,
    ) -> None:
        """One response: `first_byte` seconds to its first byte, `size` body bytes in
        `elapsed` seconds in all, `first_piece` of them in the piece that came first.
        Not `alone` (sent with others): its wait for the first byte may include theirs, so
        only `observe_round` takes the latency from the quickest of them."""
        if self.pinned:
            return
        first_byte = max(0.0, first_byte)
        if alone:
            self._latency(first_byte)
        body = elapsed - first_byte
        timed = size - min(size, max(0, first_piece))
        if size >= MIN_SAMPLE:
            self._rate(timed, body)

    def _rate(self, timed: int, seconds: float) -> None:
        """`timed` body bytes that took `seconds` on the wire, weighed with the samples
        before them: bytes over time across the samples, so one long read outweighs many
        short ones."""
        if timed <= 0 or seconds <= 0:
            return
        self.sampled += timed
        self.sampled_time += seconds
        if self.sampled > _MEMORY:
            fade = _MEMORY / self.sampled
            self.sampled, self.sampled_time = _MEMORY, self.sampled_time * fade
        rate = self.sampled / self.sampled_time
        self.bandwidth = min(MAX_BANDWIDTH, max(_MIN_BANDWIDTH, rate))
        self.longest = max(self.longest, timed)
        self.bandwidth_samples += 1

    def _latency(self, first_byte: float) -> None:
        if self.latency_samples == 0:
            self.latency = first_byte
        else:
            self.latency += _WEIGHT * (first_byte - self.latency)
        self.latency_samples += 1

    def observe_round(
        self,
        requests: int,
        parallel: int,
        first: float,
        size: int,
        elapsed: float,
        bodies: Sequence[tuple[int, int, float]] = (),
        middle: float | None = None,
    ) -> None:
        """`requests`, `parallel` at a time, moved `size` bytes in `elapsed` seconds; the
        quickest to answer did so after `first` seconds (it waited for no other: the
        latency). `bodies`: each response's size, its bytes after its first piece and the
        seconds those took. Bodies served at once share the link, each at a fraction of its rate:
        the round's bandwidth is their bytes over the round's time less its waves' round
        trips. Bodies served in turns (a queue at the endpoint), or one long body among short
        ones, each had the link to itself: each is a sample of its own. `middle`, when known:
        when the median answer came, in seconds from the round's start; answers served in
        turns are spread over the round, so twice that is its time without the wait for one
        slow answer (a delayed ACK, a retransmission), which would make a round served at
        once look served in turns."""
        if self.pinned:
            return
        self._latency(max(0.0, first))
        sent = min(requests, parallel)
        shared = False
        if sent >= 2 and first > 0 and elapsed > 0:
            # (how many requests of the latency `cost` counts fit in the round's time: the
            # quickest answer of one round may be far quicker than the link's usual, and
            # weighed against it alone the round would look served one at a time)
            latency = max(first, self.latency)
            span = elapsed - size / self.bandwidth
            if middle is not None:
                span = min(span, 2 * middle)
            waiting = max(latency, span)
            served = min(float(sent), max(1.0, requests * latency / waiting))
            # all served at once: the endpoint's limit is not in sight
            shared = served >= _ALL_SERVED * sent
            if not shared:
                if self.concurrency_samples == 0:
                    self.concurrency = served
                else:
                    self.concurrency += _WEIGHT * (served - self.concurrency)
                self.concurrency_samples += 1
        long = [(t, seconds) for size_one, t, seconds in bodies if size_one >= MIN_SAMPLE]
        if not shared or len(long) < 2:
            # each long body had the link to itself (or to itself but for short ones)
            for timed_one, seconds in long:
                self._rate(timed_one, seconds)
            return
        timed = sum(t for _, t, _ in bodies)
        on_wire = elapsed - math.ceil(requests / sent) * first
        # (a round of round trips more than of bytes says little about the bandwidth)
        if timed >= MIN_SAMPLE and on_wire >= _WIRE_SHARE * elapsed:
            self._rate(timed, on_wire)

    @property
    def bandwidth_known(self) -> bool:
        """Whether the bandwidth was pinned or measured on a body long enough to trust."""
        return self.pinned or self.longest >= TRUSTED_SAMPLE

    def cost(self, requests: int, size: int, parallel: int = 1) -> float:
        """Seconds for `requests` requests moving `size` bytes, `parallel` sent at a time
        (and as many served at once as the endpoint does)."""
        at_once = max(1.0, min(float(parallel), self.concurrency))
        waves = math.ceil(requests / at_once) if requests else 0
        return waves * self.latency + size / self.bandwidth

    @property
    def gap(self) -> int:
        """Bytes that cost about one round trip: ranges closer than this are merged."""
        return int(self.latency * self.bandwidth)


_links: dict[str, Link] = {}
_lock = threading.Lock()


def link_for(endpoint: str) -> Link:
    """The process's measurements of `endpoint` (a host, a bucket service)."""
    with _lock:
        link = _links.get(endpoint)
        if link is None:
            link = _links[endpoint] = Link()
        return link


def pin(endpoint: str, latency: float, bandwidth: float) -> Link:
    """Fix the figures of `endpoint` (what a test or a user who knows the link sets)."""
    link = link_for(endpoint)
    link.latency, link.bandwidth, link.pinned = latency, bandwidth, True
    return link


def forget(endpoint: str | None = None) -> None:
    """Drop what was measured or pinned (of one endpoint, or of all)."""
    with _lock:
        if endpoint is None:
            _links.clear()
        else:
            _links.pop(endpoint, None)
