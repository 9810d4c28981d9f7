"""Deterministic measures of an analysis's work, for doubling tests (never wall-clock time).

`measure(fn)` runs `fn` once under `sys.setprofile` and tracemalloc and returns:
- calls: Python and C function calls made (the node visits of a Python walk),
- peak: the peak of memory traced while it ran (what a recursive repr or an expansion holds),
- chars: for the functions named in `sized` ({function name: argument name}), the total length
  of that argument over every call (bytes handed to nested scans, path strings built per node).
"""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any


@dataclass
class Work:
    calls: int
    peak: int
    chars: int


def measure(fn: Callable[[], Any], sized: Mapping[str, str] | None = None) -> Work:
    fn()  # warm up: imports and caches are not the analysis's work
    counts = {"calls": 0, "chars": 0}
    wanted = dict(sized or {})

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" or event == "c_call":
            counts["calls"] += 1
            if event == "call" and frame.f_code.co_name in wanted:
                value = frame.f_locals.get(wanted[frame.f_code.co_name])
                if isinstance(value, (str, bytes, bytearray)):
                    counts["chars"] += len(value)

    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    return Work(counts["calls"], max(peak, 0), counts["chars"])


def assert_doubling(small: Work, large: Work, *, ratio: float = 2.6, slack: int = 0) -> None:
    """Doubling the input may at most roughly double every measure (plus a fixed slack)."""
    for name in ("calls", "peak", "chars"):
        a, b = getattr(small, name), getattr(large, name)
        floor = {"calls": 2000, "peak": 256 << 10, "chars": 4096}[name] + slack
        assert b <= ratio * a + floor, f"{name}: {a} at n, {b} at 2n"
