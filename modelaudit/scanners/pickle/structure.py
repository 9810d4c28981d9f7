"""Shape checks on what a pure-data pickle built: reference bombs, deep nesting, waste.

A pickle without imports cannot run code, but it can still be built to hurt whatever uses the
result (a few hundred bytes of shared references that expand to 10**40 items when walked, a
list nested 200,000 deep) or to hide work in objects it throws away. Only small streams are
walked, within a node budget, so this never costs time on real models.
"""

from __future__ import annotations

import re
from typing import Any, Final

MAX_STREAM: Final = 4 << 20
_BUDGET: Final = 500_000
_MAX_DEPTH: Final = 5_000
_MAX_EXPANDED: Final = 10_000_000
_WASTE_MIN: Final = 64 << 10
_CONTAINERS: Final = (list, tuple, dict, set, frozenset)
#: DUP and the memo GETs: the only opcodes that put an object already built on the stack.
_SHARING: Final = re.compile(rb"[2ghj]")


def cannot_flag(head: bytes, length: int) -> bool:
    """True when `check` provably finds nothing in what a pickle of `length` bytes, whose
    first bytes are `head`, builds without imports, calls or persistent ids: judged from
    its bytes, without a walk of the result.

    Every container is made by an opcode of its own, so a stream of at most `_MAX_DEPTH` bytes
    cannot nest deeper than that, and is far below the waste threshold. Without a byte of DUP
    or GET, wherever it sits, no object is referenced twice: walking the result visits at most
    one object per pushed value, far below `_MAX_EXPANDED`.
    """
    return length <= min(_MAX_DEPTH, len(head)) and _SHARING.search(head, 0, length) is None


def _payload(obj: Any) -> int:
    """Bytes of data a leaf carries (a 4096-bit integer is 512 bytes of LONG1/LONG4 digits)."""
    if isinstance(obj, (str, bytes, bytearray)):
        return len(obj)
    if isinstance(obj, int):
        return (obj.bit_length() + 7) // 8
    return 0


def _children(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    return list(obj)


def _split(obj: Any) -> tuple[list[Any], int, int]:
    """A container's container children (in order), its leaf count, and the bytes it adds
    (8 a slot plus what each leaf carries)."""
    kids = _children(obj)
    nested: list[Any] = []
    size = 8 * len(kids)
    for child in kids:
        kind = type(child)
        if kind is int:
            size += (child.bit_length() + 7) // 8
        elif kind is str or kind is bytes:
            size += len(child)
        elif isinstance(child, _CONTAINERS):
            nested.append(child)
        else:
            size += _payload(child)
    return nested, len(kids) - len(nested), size


def check(value: Any, stream_len: int) -> str | None:
    """A reason the result of a pure-data pickle is suspicious, or None."""
    memo: dict[int, tuple[int, int]] = {}
    unique_bytes = 0
    visits = 0
    stack: list[Any] = [value]
    active: set[int] = set()
    while stack:
        obj = stack.pop()
        if type(obj) is _Done:
            key = id(obj.container)
            active.discard(key)
            count, depth = 1 + obj.leaves, 0
            for child in obj.nested:
                c, d = memo.get(id(child), (1, 0))
                count += c
                if d > depth:
                    depth = d
            memo[key] = (min(count, 1 << 62), depth + 1)
            continue
        if not isinstance(obj, _CONTAINERS):
            continue
        key = id(obj)
        if key in memo or key in active:
            continue
        visits += 1
        if visits > _BUDGET:
            return None
        nested, leaves, size = _split(obj)
        unique_bytes += size + 8
        if not nested:
            memo[key] = (1 + leaves, 1)
            continue
        active.add(key)
        stack.append(_Done(obj, nested, leaves))
        stack.extend(nested)
    count, depth = memo.get(id(value), (1, 0)) if isinstance(value, _CONTAINERS) else (1, 0)
    if depth > _MAX_DEPTH:
        return f"the result is nested {depth} levels deep"
    if count > _MAX_EXPANDED:
        return f"shared references expand to about {count:.3g} objects when walked"
    if not isinstance(value, _CONTAINERS):
        unique_bytes += _payload(value)
    if stream_len >= _WASTE_MIN and unique_bytes * 50 < stream_len:
        return f"{stream_len} bytes of opcodes build a result of about {unique_bytes} bytes"
    return None


class _Done:
    """A container whose children were pushed: its totals are due once they are popped (a
    pure-data pickle cannot build one of these)."""

    __slots__ = ("container", "leaves", "nested")

    def __init__(self, container: Any, nested: list[Any], leaves: int) -> None:
        self.container = container
        self.nested = nested
        self.leaves = leaves
