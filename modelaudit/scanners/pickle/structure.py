"""Shape checks on what a pure-data pickle built: reference bombs, deep nesting, waste.

A pickle without imports cannot run code, but it can still be built to hurt whatever uses the
result (a few hundred bytes of shared references that expand to 10**40 items when walked, a
list nested 200,000 deep) or to hide work in objects it throws away. Only small streams are
walked, within a node budget, so this never costs time on real models.
"""

from __future__ import annotations

from typing import Any, Final

MAX_STREAM: Final = 4 << 20
_BUDGET: Final = 500_000
_MAX_DEPTH: Final = 5_000
_MAX_EXPANDED: Final = 10_000_000
_WASTE_MIN: Final = 64 << 10
_CONTAINERS: Final = (list, tuple, dict, set, frozenset)


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


def check(value: Any, stream_len: int) -> str | None:
    """A reason the result of a pure-data pickle is suspicious, or None."""
    memo: dict[int, tuple[int, int]] = {}
    unique_bytes = 0
    visits = 0
    stack: list[tuple[Any, bool]] = [(value, False)]
    active: set[int] = set()
    while stack:
        obj, done = stack.pop()
        if not isinstance(obj, _CONTAINERS):
            continue
        key = id(obj)
        if done:
            active.discard(key)
            count, depth = 1, 0
            for child in _children(obj):
                if isinstance(child, _CONTAINERS):
                    c, d = memo.get(id(child), (1, 0))
                    count += c
                    depth = max(depth, d)
                else:
                    count += 1
            memo[key] = (min(count, 1 << 62), depth + 1)
            continue
        if key in memo or key in active:
            continue
        visits += 1
        if visits > _BUDGET:
            return None
        active.add(key)
        stack.append((obj, True))
        for child in _children(obj):
            unique_bytes += 8
            if isinstance(child, _CONTAINERS):
                stack.append((child, False))
            else:
                unique_bytes += _payload(child)
        unique_bytes += 8
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
