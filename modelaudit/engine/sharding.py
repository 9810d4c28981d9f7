"""`--shard K/N`: one of N disjoint, deterministic parts of a sweep, for CI matrix jobs.

An object belongs to part `1 + h % N`, where `h` is the first 8 bytes of the SHA-256 of its
URI (the name findings use). The hash is stable across machines, Python versions and runs
(unlike `hash()`), needs nothing but the listing, and spreads objects evenly whatever their
names, so N jobs running the same command scan every object exactly once between them.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["Shard", "parse_shard"]

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class Shard(NamedTuple):
    part: int
    parts: int

    def __str__(self) -> str:
        return f"{self.part}/{self.parts}"

    def holds(self, uri: str) -> bool:
        import hashlib  # (only runs with --shard use it: not on every sweep's start-up)

        digest = hashlib.sha256(uri.encode("utf-8", "surrogateescape")).digest()
        return 1 + int.from_bytes(digest[:8], "big") % self.parts == self.part


def parse_shard(text: str) -> Shard:
    """`"2/4"` -> Shard(2, 4); parts are numbered from 1, as CI matrices usually are."""
    match = _SHARD.match(text)
    if not match:
        raise ValueError(f"invalid shard {text!r}: use K/N, for example 1/4")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"invalid shard {text!r}: K must be between 1 and N")
    return Shard(index, count)
