"""What hashing a pickle's dict keys and set members would cost, before the C unpickler does it.

CPython does not cache tuple hashes: hashing (or comparing) a tuple walks every element, so a
few hundred bytes of memoised tuples that each hold the previous one twice make one dict key
cost 2**60 steps, all inside C where no signal or limit can stop it. This walk follows the
opcodes with a stack of weights (the size of each value as a tree: 1 for scalars and for
lists, dicts and objects, which stop a hash; 1 + the items for tuples; 1 + the count for
frozensets, whose hash reuses their members' stored hashes) and charges every key and member
hashed. It returns the offset of the first opcode that would go over the budget, so the load
can stop there with what it found before. Only the head of a stream is walked (`WINDOW`):
the walk runs Python per opcode, and the C load's speed on big honest pickles matters more.

The same walk stops the load before a counted argument (BINBYTES8, BYTEARRAY8, BINUNICODE8,
their 4-byte forms) that announces more bytes than the stream has left: the C unpickler
allocates what a length announces before it reads a byte of it (and CPython 3.11 prints a stray
"SystemError: deallocated bytearray object has exported buffers" when a BYTEARRAY8 allocation
fails under the worker's memory limit), so a 20-byte file must not make it try 6 GiB.

`huge_memo_put` finds a PUT whose memo index no pickle writer would use: the C unpickler grows
its memo array to twice the index (16 bytes per index), so a 40-byte stream asks for tens of
GiB. The walk stops the load at such a PUT too (`first_stop(memo=True)`), and the stream is
then read again by the pure-Python unpickler, whose memo is a dict, so whatever follows the
PUT is still judged; past the window, the worker's memory budget stops the load instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, NamedTuple

#: Bytes of each stream walked.
WINDOW: Final = 256 << 10
#: Tree nodes hashed per stream before the load is cut (honest pickles hash few tuples).
HASH_BUDGET: Final = 20_000_000

_MARK: Final = -1
_CAP: Final = HASH_BUDGET + 1

# argument layouts, by opcode byte
_NEWLINE, _LEN1, _LEN4, _LEN8, _TWO_LINES = -1, -2, -3, -4, -5


#: Every opcode: (argument layout, (values popped, values pushed)); -1 popped: pops to the
#: mark and pushes its result, -2: works in place on the object under the mark (SETITEMS,
#: APPENDS, ADDITEMS). What `pickletools.opcodes` says, as a literal: importing pickletools
#: costs a worker several milliseconds (tests/pickle/test_preconditions.py derives it again).
OPCODE_TABLE: Final[dict[int, tuple[int, tuple[int, int]]]] = {
    0x28: (0, (0, 1)),  # MARK
    0x29: (0, (0, 1)),  # EMPTY_TUPLE
    0x2E: (0, (1, 0)),  # STOP
    0x30: (0, (1, 0)),  # POP
    0x31: (0, (-1, 0)),  # POP_MARK
    0x32: (0, (1, 2)),  # DUP
    0x42: (_LEN4, (0, 1)),  # BINBYTES
    0x43: (_LEN1, (0, 1)),  # SHORT_BINBYTES
    0x46: (_NEWLINE, (0, 1)),  # FLOAT
    0x47: (8, (0, 1)),  # BINFLOAT
    0x49: (_NEWLINE, (0, 1)),  # INT
    0x4A: (4, (0, 1)),  # BININT
    0x4B: (1, (0, 1)),  # BININT1
    0x4C: (_NEWLINE, (0, 1)),  # LONG
    0x4D: (2, (0, 1)),  # BININT2
    0x4E: (0, (0, 1)),  # NONE
    0x50: (_NEWLINE, (0, 1)),  # PERSID
    0x51: (0, (1, 1)),  # BINPERSID
    0x52: (0, (2, 1)),  # REDUCE
    0x53: (_NEWLINE, (0, 1)),  # STRING
    0x54: (_LEN4, (0, 1)),  # BINSTRING
    0x55: (_LEN1, (0, 1)),  # SHORT_BINSTRING
    0x56: (_NEWLINE, (0, 1)),  # UNICODE
    0x58: (_LEN4, (0, 1)),  # BINUNICODE
    0x5D: (0, (0, 1)),  # EMPTY_LIST
    0x61: (0, (2, 1)),  # APPEND
    0x62: (0, (2, 1)),  # BUILD
    0x63: (_TWO_LINES, (0, 1)),  # GLOBAL
    0x64: (0, (-1, 1)),  # DICT
    0x65: (0, (-2, 0)),  # APPENDS
    0x67: (_NEWLINE, (0, 1)),  # GET
    0x68: (1, (0, 1)),  # BINGET
    0x69: (_TWO_LINES, (-1, 1)),  # INST
    0x6A: (4, (0, 1)),  # LONG_BINGET
    0x6C: (0, (-1, 1)),  # LIST
    0x6F: (0, (-1, 1)),  # OBJ
    0x70: (_NEWLINE, (0, 0)),  # PUT
    0x71: (1, (0, 0)),  # BINPUT
    0x72: (4, (0, 0)),  # LONG_BINPUT
    0x73: (0, (3, 1)),  # SETITEM
    0x74: (0, (-1, 1)),  # TUPLE
    0x75: (0, (-2, 0)),  # SETITEMS
    0x7D: (0, (0, 1)),  # EMPTY_DICT
    0x80: (1, (0, 0)),  # PROTO
    0x81: (0, (2, 1)),  # NEWOBJ
    0x82: (1, (0, 1)),  # EXT1
    0x83: (2, (0, 1)),  # EXT2
    0x84: (4, (0, 1)),  # EXT4
    0x85: (0, (1, 1)),  # TUPLE1
    0x86: (0, (2, 1)),  # TUPLE2
    0x87: (0, (3, 1)),  # TUPLE3
    0x88: (0, (0, 1)),  # NEWTRUE
    0x89: (0, (0, 1)),  # NEWFALSE
    0x8A: (_LEN1, (0, 1)),  # LONG1
    0x8B: (_LEN4, (0, 1)),  # LONG4
    0x8C: (_LEN1, (0, 1)),  # SHORT_BINUNICODE
    0x8D: (_LEN8, (0, 1)),  # BINUNICODE8
    0x8E: (_LEN8, (0, 1)),  # BINBYTES8
    0x8F: (0, (0, 1)),  # EMPTY_SET
    0x90: (0, (-2, 0)),  # ADDITEMS
    0x91: (0, (-1, 1)),  # FROZENSET
    0x92: (0, (3, 1)),  # NEWOBJ_EX
    0x93: (0, (2, 1)),  # STACK_GLOBAL
    0x94: (0, (1, 1)),  # MEMOIZE
    0x95: (8, (0, 0)),  # FRAME
    0x96: (_LEN8, (0, 1)),  # BYTEARRAY8
    0x97: (0, (0, 1)),  # NEXT_BUFFER
    0x98: (0, (1, 1)),  # READONLY_BUFFER
}
_ARGS: Final[list[int | None]] = [
    OPCODE_TABLE[code][0] if code in OPCODE_TABLE else None for code in range(256)
]
_EFFECTS: Final = {code: effect for code, (_layout, effect) in OPCODE_TABLE.items()}
_TUPLES: Final = {ord("t"): None, 0x85: 1, 0x86: 2, 0x87: 3}
_GETS: Final = {ord("g"), ord("h"), ord("j")}
_PUTS: Final = {ord("p"), ord("q"), ord("r")}
_MEMOIZE: Final = 0x94
_DUP: Final = ord("2")
_MARK_OP: Final = ord("(")
_STOP: Final = ord(".")
_SETITEM, _SETITEMS, _DICT = ord("s"), ord("u"), ord("d")
_ADDITEMS, _FROZENSET = 0x90, 0x91
_SPECIAL: Final = (
    set(_TUPLES)
    | _GETS
    | _PUTS
    | {_MEMOIZE, _DUP, _MARK_OP, _STOP, _SETITEM, _SETITEMS, _DICT}
    | {_ADDITEMS, _FROZENSET}
)
#: Opcodes that pop nothing and push one value (True) or nothing at all (False).
_SIMPLE: Final = {
    code: after == 1
    for code, (before, after) in _EFFECTS.items()
    if code not in _SPECIAL and before == 0 and after <= 1
}


def _byte_class(codes: Iterable[int]) -> re.Pattern[bytes]:
    return re.compile(b"[" + b"".join(re.escape(bytes([c])) for c in sorted(codes)) + b"]")


#: Opcodes whose value can weigh more than 1 (tuples, frozensets), opcodes that put a value on
#: the stack a second time (DUP, the memo GETs), and counted arguments with their widths: a
#: stream that lacks a byte of the first two kinds, or whose every counted-argument byte
#: announces a length that fits, cannot stop (see `_cannot_stop`).
_WEIGHTY: Final = _byte_class({*_TUPLES, _FROZENSET})
_SHARING: Final = _byte_class({*_GETS, _DUP})
_COUNTED_WIDTH: Final = {
    code: 4 if layout == _LEN4 else 8
    for code, layout in enumerate(_ARGS)
    if layout in (_LEN4, _LEN8)
}
_COUNTED: Final = _byte_class(_COUNTED_WIDTH)


class Stop(NamedTuple):
    """Where the load must stop, and why: "hash" (the hashing budget), "length" (a counted
    argument longer than the rest of the stream: `announced` bytes, `left` remaining) or
    "memo" (a PUT of an index no writer uses, `announced`)."""

    at: int
    reason: str
    announced: int = 0
    left: int = 0


def over_budget_at(data: bytes, budget: int = HASH_BUDGET) -> int | None:
    """Offset of the opcode at which hashing would pass `budget` tree nodes, or None."""
    stop = first_stop(data, None, budget)
    return None if stop is None else stop.at


def first_stop(
    data: bytes, remaining: int | None, budget: int = HASH_BUDGET, *, memo: bool = False
) -> Stop | None:
    """The first opcode of `data` (the head of a stream) the load must not run: one whose
    hashing passes `budget` tree nodes, (when `remaining`, the bytes from `data[0]` to the
    end of the stream, is known) one whose counted argument runs past the end, or (`memo`)
    a PUT whose index no writer uses (`huge_memo_put`'s): the C unpickler's memo array would
    grow to it, up to the load's whole memory budget (768 MiB for a 200-byte stream) and a
    second of page zeroing before any limit stops it, so such a stream goes straight to the
    unpickler whose memo is a dict."""
    if _cannot_stop(data, remaining, budget, memo):
        return None
    return _walk(data, remaining, budget, huge_puts=memo)


def _cannot_stop(data: bytes, remaining: int | None, budget: int, memo: bool = False) -> bool:
    """True when no opcode of `data` can be a stop, proved from its bytes without a walk.

    Hashing: without tuples or frozensets every weight is at most 1, so a hash charges at most
    one node per value popped, and each opcode pushes at most one value. Without DUP or GET no
    value is pushed twice: a charged weight counts each opcode under it at most once, plus once
    more as a direct member of a frozenset that is charged in turn. Either way at most
    `2 * len(data)` nodes are charged. Lengths: a stop is at a counted-argument opcode whose
    announced end passes the stream's end; if no byte of such an opcode (wherever it sits,
    opcode or argument) announces that, none does.
    """
    if 2 * len(data) > budget or (_WEIGHTY.search(data) and _SHARING.search(data)):
        return False
    if memo and _may_put_huge(data):
        return False
    if remaining is not None:
        stream_end = max(remaining, len(data))
        for m in _COUNTED.finditer(data):
            at = m.start()
            width = _COUNTED_WIDTH[data[at]]
            if (
                at + 1 + width + int.from_bytes(data[at + 1 : at + 1 + width], "little")
                > stream_end
            ):
                return False
    return True


def _may_put_huge(data: bytes) -> bool:
    """Whether a byte of `data` could be a PUT or LONG_BINPUT of an index past
    `MEMO_INDEX_FLOOR` and past its own offset (wherever it sits, opcode or argument)."""
    if data.find(b"r") < 0 and data.find(b"p") < 0:
        return False  # (most small pickles: two scans in C, no regex)
    for m in _BIG_PUT.finditer(data):
        at = m.start()
        if data[at] == _LONG_BINPUT:
            index = int.from_bytes(data[at + 1 : at + 5], "little")
        else:
            index = int(m.group(1))
        if index >= MEMO_INDEX_FLOOR and index > at:
            return True
    return False


def _walk(data: bytes, remaining: int | None, budget: int, huge_puts: bool = False) -> Stop | None:
    """`first_stop` by following every opcode."""
    stream_end = len(data) if remaining is None else max(remaining, len(data))
    stack: list[int] = []
    push = stack.append
    memo: dict[int, int] = {}
    spent = 0
    pos = 0
    size = len(data)
    args, simple = _ARGS, _SIMPLE
    while pos < size:
        at = pos
        code = data[pos]
        pos += 1
        layout = args[code]
        if layout is None:
            return None  # not an opcode: the load will stop here too
        if code in simple:
            # pushes one scalar-like value (or nothing): the common case, kept short
            if layout >= 0:
                pos += layout
            elif layout == _LEN1:
                pos += 1 + (data[pos] if pos < size else 0)
            elif layout in (_LEN4, _LEN8):
                width = 4 if layout == _LEN4 else 8
                announced = int.from_bytes(data[pos : pos + width], "little")
                pos += width + announced
                if remaining is not None and pos > stream_end and pos - announced <= size:
                    return Stop(at, "length", announced, stream_end - (pos - announced))
            else:
                end = data.find(b"\n", pos)
                if end < 0:
                    return None
                if layout == _TWO_LINES:
                    end = data.find(b"\n", end + 1)
                    if end < 0:
                        return None
                pos = end + 1
            if simple[code]:
                push(1)
            continue
        arg = 0
        if layout > 0:
            arg = int.from_bytes(data[pos : pos + layout], "little")
            pos += layout
        elif layout == _NEWLINE:
            end = data.find(b"\n", pos)
            if end < 0:
                return None
            try:
                arg = int(data[pos:end])
            except ValueError:
                return None
            pos = end + 1
        if code == _STOP:
            return None
        if code == _MARK_OP:
            push(_MARK)
            continue
        if code == _DUP:
            if stack:
                push(stack[-1])
            continue
        if code in _GETS:
            push(memo.get(arg, 1))
            continue
        if code in _PUTS or code == _MEMOIZE:
            if huge_puts and code != _MEMOIZE and arg >= MEMO_INDEX_FLOOR and arg > at:
                return Stop(at, "memo", arg)
            if stack:
                memo[len(memo) if code == _MEMOIZE else arg] = stack[-1]
            continue
        before, after = _EFFECTS[code]
        if before < 0:
            items = _pop_mark(stack)
        else:
            items = stack[len(stack) - before :] if before else []
            if before:
                del stack[len(stack) - before :]
        cost = 0
        weight = 1
        if code in _TUPLES:
            weight = min(_CAP, 1 + sum(items))
        elif code == _FROZENSET:
            cost = sum(items)
            weight = 1 + len(items)
        elif code == _ADDITEMS:
            cost = sum(items)
        elif code in (_DICT, _SETITEMS):
            cost = sum(items[0::2])
        elif code == _SETITEM:
            cost = items[1] if len(items) > 1 else 0
        if cost:
            spent += cost
            if spent > budget:
                return Stop(at, "hash")
        if code == _SETITEM:
            push(items[0] if items else 1)  # the dict stays
        elif after:
            stack.extend([weight] * after)
    return None


#: A memo index below this costs the C unpickler at most 16 MiB, whatever the stream.
MEMO_INDEX_FLOOR: Final = 1 << 20
_LONG_BINPUT: Final = 0x72
#: A LONG_BINPUT whose 4-byte index is `MEMO_INDEX_FLOOR` or more, or a PUT of 7+ digits.
_BIG_PUT: Final = re.compile(
    rb"r(?:[\x00-\xff]{3}[\x01-\xff]|[\x00-\xff]{2}[\x10-\xff]\x00)|p(\d{7,})\n", re.DOTALL
)
_MEMO_PUTS: Final = frozenset({"PUT", "LONG_BINPUT"})


def huge_memo_put(data: bytes) -> tuple[int, int] | None:
    """(offset, index) of the first PUT or LONG_BINPUT in `data` (the head of a stream) whose
    index is both past `MEMO_INDEX_FLOOR` and past its own offset; None if there is none
    before the walk ends (the end of `data`, a STOP, or bytes that are not opcodes).

    Python numbers memo entries from 0 as it stores them, and each stored value took at
    least one opcode, so an honest index is below its offset. Only a load that ran out of
    memory asks, so `pickletools` (milliseconds to import) is imported here."""
    import pickletools

    try:
        for op, arg, at in pickletools.genops(data):
            if (
                op.name in _MEMO_PUTS
                and isinstance(arg, int)
                and at is not None
                and arg >= MEMO_INDEX_FLOOR
                and arg > at
            ):
                return at, arg
    except ValueError:
        pass  # bytes that are not opcodes end the walk, as they end the load
    return None


def _pop_mark(stack: list[int]) -> list[int]:
    """Pop and return the items above the topmost mark (the mark is dropped too)."""
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] == _MARK:
            items = stack[i + 1 :]
            del stack[i:]
            return items
    items = stack[:]
    stack.clear()
    return items
