"""The storage keys a PyTorch `data.pkl` names, read off its opcodes without unpickling.

torch.save writes each storage as a persistent id, the tuple `('storage', type, key,
location, numel)` handed to BINPERSID. The range planner needs those keys to know which
`data/` records torch will read as tensors (and which it will not, whose heads the PyTorch
zip scanner sniffs). This walk follows the stack only as far as that needs: strings, the memo,
tuples and persistent ids; every other opcode just moves the stack by its declared effect.
It may find fewer keys than the pickle engine (a stream that breaks early), never a key the
stream does not name: a record it does not list is fetched, which is always safe.
"""

from __future__ import annotations

import io
import pickletools
from typing import Any, Final

_STRINGS: Final = frozenset(
    {
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
    }
)
_PUTS: Final = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GETS: Final = frozenset({"GET", "BINGET", "LONG_BINGET"})
_MARK: Final = object()


def storage_keys(data: bytes, limit: int = 1_000_000) -> set[str]:
    """Keys of every storage persistent id in the pickle(s) of `data` (a record's bytes)."""
    keys: set[str] = set()
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    try:
        for count, (op, arg, _pos) in enumerate(pickletools.genops(io.BytesIO(data))):
            if count > limit:
                break
            _step(op, arg, stack, memo, keys)
    except Exception:
        pass  # a broken stream keeps the keys found before it
    return keys


def _pop_mark(stack: list[Any]) -> list[Any]:
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is _MARK:
            items = stack[i + 1 :]
            del stack[i:]
            return items
    raise ValueError("no mark")


def _step(
    op: pickletools.OpcodeInfo,
    arg: Any,
    stack: list[Any],
    memo: dict[int, Any],
    keys: set[str],
) -> None:
    name = op.name
    if name in _STRINGS:
        stack.append(arg.decode("latin-1") if isinstance(arg, bytes) else arg)
        return
    if name in _PUTS:
        memo[int(arg)] = stack[-1] if stack else None
        return
    if name == "MEMOIZE":
        memo[len(memo)] = stack[-1] if stack else None
        return
    if name in _GETS:
        stack.append(memo.get(int(arg)))
        return
    if name == "MARK":
        stack.append(_MARK)
        return
    if name == "TUPLE":
        stack.append(tuple(_pop_mark(stack)))
        return
    if name in ("TUPLE1", "TUPLE2", "TUPLE3"):
        n = int(name[-1])
        items = stack[-n:] if len(stack) >= n else []
        del stack[-n:]
        stack.append(tuple(items))
        return
    if name == "BINPERSID":
        pid = stack.pop() if stack else None
        if (
            isinstance(pid, tuple)
            and len(pid) >= 3
            and pid[0] == "storage"
            and isinstance(pid[2], str)
        ):
            keys.add(pid[2])
        stack.append(None)
        return
    if name == "STOP":
        stack.clear()
        return
    before = op.stack_before
    if pickletools.markobject in before:
        _pop_mark(stack)
        fixed = [s for s in before if s not in (pickletools.markobject, pickletools.stackslice)]
    else:
        fixed = list(before)
    if fixed:
        del stack[-len(fixed) :]
    stack.extend([None] * len(op.stack_after))
