"""What a request to one endpoint costs, measured from the responses seen so far.

The range planner weighs each round of ranged requests (waves of parallel requests times the
latency, plus bytes over the bandwidth) against fetching the rest of the object in one
streamed request, and switches to that whenever it is cheaper. Latency is the time to a
response's first byte; bandwidth is measured on bodies long enough to show it. Both start
from priors and are kept per endpoint for the life of the process, so the first objects of a
sweep teach the planner about the later ones.
"""

from __future__ import annotations

import math
import threading
from typing import Final

#: Before anything is measured: a cloud store reached over the internet.
PRIOR_LATENCY: Final = 0.03
PRIOR_BANDWIDTH: Final = 100e6
#: Bodies shorter than this say little about bandwidth.
MIN_SAMPLE: Final = 256 * 1024
_MIN_BANDWIDTH: Final = 1e6
_MAX_BANDWIDTH: Final = 4e9
_WEIGHT: Final = 0.3


class Link:
    """Latency (seconds) and bandwidth (bytes per second) of one endpoint."""

    def __init__(self) -> None:
        self.latency = PRIOR_LATENCY
        self.bandwidth = PRIOR_BANDWIDTH
        self.latency_samples = 0
        self.bandwidth_samples = 0
        #: set by `pin`: the figures are given, not measured
        self.pinned = False

    def observe(self, first_byte: float, size: int, elapsed: float) -> None:
        """One response: `first_byte` seconds to its first byte, `size` body bytes in
        `elapsed` seconds in all."""
        if self.pinned:
            return
        first_byte = max(0.0, first_byte)
        if self.latency_samples == 0:
            self.latency = first_byte
        else:
            self.latency += _WEIGHT * (first_byte - self.latency)
        self.latency_samples += 1
        body = elapsed - first_byte
        if size >= MIN_SAMPLE and body > 0:
            rate = min(_MAX_BANDWIDTH, max(_MIN_BANDWIDTH, size / body))
            if self.bandwidth_samples == 0:
                self.bandwidth = rate
            else:
                self.bandwidth += _WEIGHT * (rate - self.bandwidth)
            self.bandwidth_samples += 1

    def cost(self, requests: int, size: int, parallel: int = 1) -> float:
        """Seconds for `requests` requests moving `size` bytes, `parallel` at a time."""
        waves = math.ceil(requests / max(1, parallel)) if requests else 0
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
