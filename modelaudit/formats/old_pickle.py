"""Is a magic-less file a protocol 0/1 pickle? Judge it by what a loader would do with it.

Protocol 0/1 pickles are ASCII with no header, and plenty of text ends with '.' (every MIT
LICENSE ends "SOFTWARE."). So the head is walked opcode by opcode as `pickle.load` would read
it: a file is a pickle when a loader would import something before the stream breaks (a
GLOBAL/INST naming a real dotted identifier, STACK_GLOBAL, an extension code), or when it
parses cleanly to its STOP. Text breaks within a few opcodes on a byte that is no opcode, or
names "modules" with spaces in them that no import can find: nothing would run.
"""

from __future__ import annotations

import io
import re
from typing import Final

_IDENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_IMPORTS: Final = frozenset({"STACK_GLOBAL", "EXT1", "EXT2", "EXT4"})
_NAMED_IMPORTS: Final = frozenset({"GLOBAL", "INST"})
#: Opcodes a long data-only pickle must show in its head before we call it one.
_MIN_DATA_OPS: Final = 8
#: Bytes a pickle may start with (no PROTO header needed).
PICKLE_FIRST_OPS: Final = frozenset(b"(]}cN)KJMIFSVUXBCGTlde\x8c\x8d\x8e\x88\x89\x95\x80\x93q")


def _names_importable(arg: object) -> bool:
    if not isinstance(arg, str):
        return False
    module, _, name = arg.partition(" ")
    return bool(_IDENT.fullmatch(module) and _IDENT.fullmatch(name))


def old_pickle_verdict(head: bytes, complete: bool) -> str:
    """ "pickle", "not" (a byte no loader reads as an opcode comes before any import), or
    "maybe" (valid opcodes until the head runs out). `head` is the whole file when
    `complete`. Only "not" may ever be called text: a long protocol 0 pickle is text too."""
    import pickletools

    stream = io.BytesIO(head)
    ops = 0
    try:
        for op, arg, _pos in pickletools.genops(stream):
            ops += 1
            if op.name in _IMPORTS or (op.name in _NAMED_IMPORTS and _names_importable(arg)):
                return "pickle"
            if op.name == "STOP":
                return "pickle" if ops >= 2 else "not"
    except Exception as exc:
        text = str(exc)
        truncated = "exhausted" in text or "remain" in text or "no newline" in text
        if not truncated:
            return "not"
        if complete:
            return "pickle" if ops >= 2 else "not"
        return "pickle" if ops >= _MIN_DATA_OPS else "maybe"
    return "maybe"


def looks_like_old_pickle(head: bytes, complete: bool) -> bool:
    return old_pickle_verdict(head, complete) == "pickle"


def whole_pickle_that_imports(data: bytes) -> bool:
    """The whole of `data` is one protocol 0/1 pickle program, from its first opcode to a STOP
    on its last bytes, and it imports something: whatever the file is called, `pickle.load`
    would run it. Text never parses this way, so this holds even for `.txt` or `.md` names."""
    import pickletools

    stream = io.BytesIO(data)
    imports = False
    last = ""
    try:
        for op, arg, _pos in pickletools.genops(stream):
            last = op.name
            if op.name in _IMPORTS or (op.name in _NAMED_IMPORTS and _names_importable(arg)):
                imports = True
    except Exception:
        return False
    return imports and last == "STOP" and not data[stream.tell() :].strip()
