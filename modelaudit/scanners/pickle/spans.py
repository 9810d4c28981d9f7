"""Which stream offsets lie inside a string or bytes argument of the pickle that holds them.

A byte pattern that starts an embedded pickle is only a payload if some loader can reach it
as a value: the bytes of a BINBYTES, BINUNICODE, STRING... argument, which a `__setstate__`
or a `pickle.loads` in the loading program may unpickle. The same pattern inside a LONG1's
digits, a BINFLOAT or the opcodes themselves is an accident of the encoding (random 40-bit
integers hold `\\x80\\x02(` often enough). This walk follows the opcodes like `genops`,
without decoding arguments and jumping over long ones, so it is linear in the opcodes and
reads little more than the opcode bytes; it is charged a budget, and where it cannot follow
the stream (an unknown opcode, the budget spent, a missing byte) it answers "unknown", which
callers treat as "inside": a doubt never hides a finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

#: Argument kinds: fixed size n >= 0, or one of these.
_LINE: Final = -1  # up to a newline, not a string (INT, LONG, FLOAT, GET, PUT)
_LINE_STR: Final = -2  # up to a newline, a string value (STRING, UNICODE, PERSID)
_TWO_LINES: Final = -3  # GLOBAL, INST: two name lines
_LEN_STR: Final = -4  # length-prefixed string value; width in _LEN_WIDTH
_LEN_NUM: Final = -5  # length-prefixed integer digits (LONG1, LONG4)

_LEN_WIDTH: Final = {
    ord("T"): 4,  # BINSTRING
    ord("U"): 1,  # SHORT_BINSTRING
    ord("X"): 4,  # BINUNICODE
    0x8C: 1,  # SHORT_BINUNICODE
    0x8D: 8,  # BINUNICODE8
    ord("B"): 4,  # BINBYTES
    ord("C"): 1,  # SHORT_BINBYTES
    0x8E: 8,  # BINBYTES8
    0x96: 8,  # BYTEARRAY8
    0x8A: 1,  # LONG1
    0x8B: 4,  # LONG4
}

_NO_ARG: Final = b"().0123NRabdelostu}]\x81\x85\x86\x87\x88\x89\x90\x91\x92\x93\x94\x97\x98Q"
_FIXED: Final = {
    ord("J"): 4,  # BININT
    ord("K"): 1,  # BININT1
    ord("M"): 2,  # BININT2
    ord("G"): 8,  # BINFLOAT
    ord("h"): 1,  # BINGET
    ord("j"): 4,  # LONG_BINGET
    ord("q"): 1,  # BINPUT
    ord("r"): 4,  # LONG_BINPUT
    0x80: 1,  # PROTO
    0x82: 1,  # EXT1
    0x83: 2,  # EXT2
    0x84: 4,  # EXT4
    0x95: 8,  # FRAME (its contents are opcodes, read on)
}


def _table() -> list[int | None]:
    table: list[int | None] = [None] * 256
    for op in _NO_ARG:
        table[op] = 0
    for op, size in _FIXED.items():
        table[op] = size
    for op in b"IFLgp":
        table[op] = _LINE
    for op in b"SVP":
        table[op] = _LINE_STR
    for op in b"ci":
        table[op] = _TWO_LINES
    for op in _LEN_WIDTH:
        table[op] = _LEN_NUM if op in (0x8A, 0x8B) else _LEN_STR
    return table


_TABLE: Final = _table()
_WINDOW: Final = 1 << 20
#: Opcodes walked per stream at most (a 10 MB pickle of small records has about 4 M).
MAX_OPS: Final = 8_000_000

Read = Callable[[int, int], bytes]

#: String opcodes by the width of their length prefix.
_STRING_HEADS: Final = {1: b"CU\x8c", 4: b"BXT", 8: b"\x8d\x8e\x96"}


def starts_argument(read: Read, at: int) -> bool:
    """Whether a string/bytes opcode's argument starts at `at` (the header just before it
    announces at least one byte): how a whole pickle is stored as a value."""
    for width, ops in _STRING_HEADS.items():
        head = at - 1 - width
        if head < 0:
            continue
        got = read(head, 1 + width)
        if len(got) == 1 + width and got[0] in ops and int.from_bytes(got[1:], "little") > 0:
            return True
    return False


def _line_end(read: Read, at: int, wbase: int, window: bytes) -> tuple[int, int, bytes]:
    """Offset after the newline that ends the line at `at` (-1: none), and the window."""
    while True:
        r = at - wbase
        if 0 <= r < len(window):
            nl = window.find(b"\n", r)
            if nl >= 0:
                return wbase + nl + 1, wbase, window
            at = wbase + len(window)
        wbase, window = at, read(at, _WINDOW)
        if not window:
            return -1, wbase, window


class StringSpans:
    """Answers `inside(at)` for a fixed set of offsets after one walk, done on first use."""

    def __init__(
        self,
        read: Read | None,
        queries: Iterable[int],
        *,
        start: int,
        end: int,
        skipped: Iterable[tuple[int, int]] = (),
        max_ops: int = MAX_OPS,
    ) -> None:
        self._read = read
        self._queries = sorted(set(queries))
        self._start = start
        self._end = end
        self._skipped = sorted(skipped)
        self._max_ops = max_ops
        self._answers: dict[int, bool] | None = None

    def inside(self, at: int) -> bool:
        """Whether `at` lies inside a string/bytes argument; True when the walk cannot tell."""
        if self._answers is None:
            self._answers = self._walk()
        return self._answers.get(at, True)

    def _walk(self) -> dict[int, bool]:
        answers: dict[int, bool] = {}
        read = self._read
        queries = [q for q in self._queries if self._start <= q < self._end]
        if read is None or not queries:
            return answers
        skipped = [s for s in self._skipped if s[1] > self._start]
        qi = 0
        pos = self._start
        wbase, window = pos, b""
        ops = 0
        table = _TABLE
        while qi < len(queries) and pos < self._end and ops < self._max_ops:
            if skipped and pos >= skipped[0][0]:
                lo, hi = skipped.pop(0)
                if pos != lo and pos < hi:
                    break  # out of step with the loader's reading
                while qi < len(queries) and queries[qi] < hi:
                    qi += 1  # raw array data: the candidate scan skips it anyway
                pos = max(pos, hi)
                continue
            rel = pos - wbase
            if rel < 0 or rel + 9 > len(window):
                wbase, window = pos, read(pos, _WINDOW)
                rel = 0
                if not window:
                    break
            op = window[rel]
            kind = table[op]
            ops += 1
            if kind is None:
                break
            arg = pos + 1
            string = False
            if kind >= 0:
                nxt = arg + kind
            elif kind in (_LEN_STR, _LEN_NUM):
                width = _LEN_WIDTH[op]
                size = int.from_bytes(window[rel + 1 : rel + 1 + width], "little")
                if rel + 1 + width > len(window):
                    break
                arg = pos + 1 + width
                nxt = arg + size
                string = kind == _LEN_STR
            else:
                nxt = arg
                for _ in range(2 if kind == _TWO_LINES else 1):
                    nxt, wbase, window = _line_end(read, nxt, wbase, window)
                    if nxt < 0:
                        break
                if nxt < 0:
                    break
                string = kind == _LINE_STR
            while qi < len(queries) and queries[qi] < nxt:
                q = queries[qi]
                answers[q] = string and q >= arg
                qi += 1
            pos = nxt
        return answers


__all__ = ["MAX_OPS", "StringSpans", "starts_argument"]
