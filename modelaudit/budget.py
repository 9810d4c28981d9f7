"""Work budgets for analyses whose input can share or nest structure.

A parser that follows offsets, references or aliases may meet the same node many times; each
such walk either visits every node once or charges a `WorkBudget`, so hostile input ends as
an inconclusive file with an `MA9004` finding instead of a hang. Lives below the scanners and
the formats (it needs only `findings` and `rules`), so both and the engine can use it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from .findings import IssueSeverity, ScanResult
from .rules.core import ANALYSIS_BUDGET


class BudgetExceeded(Exception):
    """Raised by `WorkBudget.charge` once the budget is spent."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"{what} budget of {limit} exhausted")
        self.what = what
        self.limit = limit


@dataclass
class WorkBudget:
    """Units of work (nodes visited, items produced, bytes copied) one analysis may spend.

    `used` is public so tests can measure an analysis's work deterministically.
    """

    what: str
    limit: int
    used: int = 0

    def charge(self, units: int = 1) -> None:
        self.used += units
        if self.used > self.limit:
            raise BudgetExceeded(self.what, self.limit)

    @property
    def exhausted(self) -> bool:
        return self.used > self.limit


def report_budget(result: ScanResult, location: str, exc: BudgetExceeded) -> None:
    """Say which budget ran out and leave the file inconclusive; earlier findings stay."""
    result.add_issue(
        f"Analysis stopped: {exc}",
        severity=IssueSeverity.INFO,
        location=location,
        details={"budget": exc.what, "limit": exc.limit},
        rule=ANALYSIS_BUDGET,
    )
    result.mark_inconclusive(f"analysis budget exhausted: {exc.what}")


class NotRegularFile(OSError):
    """The path is a FIFO, device, socket or folder: nothing is read from it."""


def read_capped(path: str, cap: int) -> bytes:
    """At most `cap + 1` bytes of the regular file at `path` (links followed).

    Opened without blocking and checked with fstat after opening, so a FIFO never blocks
    the scan and `/dev/zero` behind a link never feeds an unbounded read; a caller that gets
    more than `cap` bytes knows the file is over its cap without reading the rest.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"not a regular file: {path}")
        chunks: list[bytes] = []
        left = cap + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


__all__ = ["BudgetExceeded", "NotRegularFile", "WorkBudget", "read_capped", "report_budget"]
