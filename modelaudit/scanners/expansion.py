"""One expansion budget per top-level file, shared by every nesting level and every member.

A 42.zip-style bomb is small at each level and huge in total, so a budget per container
(or per member) never trips. The engine creates one `ExpansionBudget` for each file it scans
and carries it through `ScanContext.scan_member` into every nested scan; every byte a
container decompresses or extracts is charged to it before it is written or handed on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

DEFAULT_MAX_RATIO: Final = 250.0
DEFAULT_RATIO_FLOOR: Final = 32 << 20
DEFAULT_MAX_EXPANDED: Final = 8 * 1024**3
#: Embedded-pickle candidates (`pickle/nested.py`) one top-level file may have scanned: a
#: base, and one more per 64 KiB of the file. Candidates nest (a candidate's bytes hold
#: more), so without one count for the whole file a 10 KB pickle cost 30,000 scans.
CANDIDATE_BASE: Final = 4096
CANDIDATE_PER_BYTES: Final = 64 << 10


@dataclass
class ExpansionBudget:
    """Bytes a file's containers may produce in total: `max_bytes`, and past `ratio_floor`
    no more than `max_ratio` times the top-level file's size."""

    max_bytes: int
    max_ratio: float
    ratio_floor: int
    source_size: int = 0
    used: int = 0
    #: Why the budget ran out (the first refusal), None while there is room.
    exceeded: str | None = None
    #: Embedded-pickle candidates scanned so far, and whether one was refused (reported once,
    #: by the outermost pickle stream: a nested scan's own notes are not kept).
    candidates: int = 0
    candidates_refused: bool = False
    candidates_reported: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any], source_size: int = 0) -> ExpansionBudget:
        return cls(
            max_bytes=int(config.get("max_expanded_size") or DEFAULT_MAX_EXPANDED),
            max_ratio=float(config.get("max_compression_ratio") or DEFAULT_MAX_RATIO),
            ratio_floor=int(config.get("compression_ratio_floor") or DEFAULT_RATIO_FLOOR),
            source_size=max(0, source_size),
        )

    @property
    def cap(self) -> int:
        """The total the file's containers may produce, whichever limit is lower."""
        if not self.source_size or not self.max_ratio:
            return self.max_bytes
        by_ratio = max(self.ratio_floor, int(self.max_ratio * self.source_size))
        return min(self.max_bytes, by_ratio)

    @property
    def remaining(self) -> int:
        return 0 if self.exceeded else max(0, self.cap - self.used)

    def why_not(self, pending: int) -> str | None:
        """Why `pending` more bytes may not be produced (None: they may)."""
        if self.exceeded:
            return self.exceeded
        total = self.used + pending
        if total <= self.cap:
            return None
        if self.cap < self.max_bytes:
            return (
                f"the file expands past {self.cap} bytes from {self.source_size}, a ratio above "
                f"{self.max_ratio:g}:1 across all nesting levels and members"
            )
        return (
            f"the file expands past max_expanded_size={self.max_bytes} bytes across all "
            "nesting levels and members"
        )

    @property
    def candidate_cap(self) -> int:
        return CANDIDATE_BASE + self.source_size // CANDIDATE_PER_BYTES

    def take_candidate(self) -> bool:
        """Count one embedded-pickle candidate scan; False once the file's share is spent."""
        if self.candidates >= self.candidate_cap:
            self.candidates_refused = True
            return False
        self.candidates += 1
        return True

    def charge(self, count: int) -> bool:
        """Take `count` bytes before they are produced; False (and `exceeded` set) when
        they do not fit, in which case nothing is taken."""
        reason = self.why_not(count)
        if reason:
            self.exceeded = reason
            return False
        self.used += count
        return True
