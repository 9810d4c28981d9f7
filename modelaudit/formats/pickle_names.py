"""The globals a pickle imports and the constants it pushes, read off its opcodes.

`pickletools.genops` parses the stream; nothing is resolved, imported or run. A
STACK_GLOBAL's module and name are the two strings pushed before it, fetched back through the
memo when the pickler memoized them (protocol 4 writes `BINUNICODE ... MEMOIZE`), so names
that repeat are still seen. Used where a scanner needs only what a small or leading part of
a pickle names (a legacy torch tar's records, the class an MLflow `python_model` rebuilds),
not the full analysis of scanners/pickle.
"""

from __future__ import annotations

import io
import os
import pickletools
from typing import Any, BinaryIO, NamedTuple

from ..budget import BudgetExceeded, WorkBudget

_UNICODE = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"})
_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET = frozenset({"GET", "BINGET", "LONG_BINGET"})
#: Opcodes whose argument is bookkeeping, not a value the pickle pushes.
_NOT_VALUES = frozenset({"PROTO", "FRAME"} | _PUT | _GET)
#: Strings kept for a STACK_GLOBAL to find (it takes the two on top).
_KEEP = 64


class PickleNames(NamedTuple):
    #: dotted names of the globals imported, in order
    names: list[str]
    #: str and int constants pushed, in order
    values: list[Any]
    #: the budget that stopped the walk before the stream's end (what came before is kept)
    stopped: BudgetExceeded | None = None


class _Clamped:
    """A file `genops` reads from, whose reads never ask for more than the file still holds:
    a length field of 2**62 becomes a short read (genops' ValueError), not a huge buffer."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._size = os.fstat(f.fileno()).st_size

    def read(self, n: int = -1) -> bytes:
        left = max(0, self._size - self._f.tell())
        return self._f.read(left if n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self._f.readline()

    def tell(self) -> int:
        return self._f.tell()


def pickle_names(
    data: bytes | BinaryIO,
    max_names: int = 0,
    lenient: bool = False,
    budget: WorkBudget | None = None,
    keep_values: bool = True,
) -> PickleNames:
    """Globals and constants of `data` (bytes, or a file read from where it stands) up to its
    STOP (or `max_names` names, if set). Linear in the bytes; `budget`, if given, is charged
    one unit per opcode and stops the walk (`stopped`). A malformed stream raises genops'
    ValueError, unless `lenient`: then what was read before it is returned. Without
    `keep_values` only the names are gathered (a walk of a whole large pickle)."""
    names: list[str] = []
    values: list[Any] = []
    strings: list[str | None] = []
    memo: dict[int, str | None] = {}
    stream: Any = io.BytesIO(data) if isinstance(data, bytes | bytearray) else _Clamped(data)
    try:
        for op, arg, _pos in pickletools.genops(stream):
            if budget is not None:
                budget.charge()
            name = op.name
            if name in ("GLOBAL", "INST") and isinstance(arg, str):
                names.append(arg.replace(" ", ".", 1))
                strings.append(None)
            elif name == "STACK_GLOBAL":
                if len(strings) >= 2 and strings[-2] and strings[-1]:
                    names.append(f"{strings[-2]}.{strings[-1]}")
                strings.append(None)
            elif name in _PUT and isinstance(arg, int):
                memo[arg] = strings[-1] if strings else None
            elif name == "MEMOIZE":
                memo[len(memo)] = strings[-1] if strings else None
            elif name in _GET and isinstance(arg, int):
                strings.append(memo.get(arg))
            elif name == "STOP":
                break
            elif name not in _NOT_VALUES:
                # (FRAME and PROTO have no stack effect: a frame may start between two strings)
                strings.append(arg if name in _UNICODE and isinstance(arg, str) else None)
                text = isinstance(arg, str) and ("UNICODE" in name or "STRING" in name)
                if keep_values and (text or isinstance(arg, int)):
                    values.append(arg)
            if len(strings) > _KEEP:
                del strings[:-2]
            if max_names and len(names) >= max_names:
                break
    except ValueError:
        if not lenient:
            raise
    except BudgetExceeded as exc:
        return PickleNames(names, values, exc)
    return PickleNames(names, values)
