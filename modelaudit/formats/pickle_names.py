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
import pickletools
from typing import Any, NamedTuple

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


def pickle_names(data: bytes, max_names: int = 0, lenient: bool = False) -> PickleNames:
    """Globals and constants of `data` up to its STOP (or `max_names` names, if set).
    Linear in the bytes. A malformed stream raises genops' ValueError, unless `lenient`:
    then what was read before it is returned."""
    names: list[str] = []
    values: list[Any] = []
    strings: list[str | None] = []
    memo: dict[int, str | None] = {}
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
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
                if text or isinstance(arg, int):
                    values.append(arg)
            if len(strings) > _KEEP:
                del strings[:-2]
            if max_names and len(names) >= max_names:
                break
    except ValueError:
        if not lenient:
            raise
    return PickleNames(names, values)
