"""Pin byte positions of findings with a second, exact opcode walk.

The C unpickler reports no positions, so for the streams that have findings we walk the
opcodes once more, reading frames as the C unpickler does (a FRAME only announces how many
bytes follow; the opcodes inside are read one after another like any others), and map the
n-th import and the n-th call the emulation saw to the n-th opcode of that kind.
"""

from __future__ import annotations

from typing import BinaryIO, Final

_GLOBAL_OPS: Final = frozenset({"GLOBAL", "STACK_GLOBAL", "INST", "EXT1", "EXT2", "EXT4"})
_CALL_OPS: Final = frozenset({"REDUCE", "NEWOBJ", "NEWOBJ_EX", "INST", "OBJ", "BUILD"})
_MAX_OPS: Final = 5_000_000


class Positions:
    def __init__(self) -> None:
        self.globals: list[tuple[int, str]] = []
        self.calls: list[tuple[int, str]] = []
        self.extensions: list[tuple[int, str, int]] = []


def walk(
    fileobj: BinaryIO, base: int = 0, need_globals: int = -1, need_calls: int = -1
) -> Positions:
    """Opcode positions (relative to where `fileobj` stands, plus `base`) up to STOP, or
    until `need_globals` imports and `need_calls` calls are located (-1: all)."""
    import pickletools  # only streams with findings get here; a worker imports it on first use

    out = Positions()
    try:
        for n, (op, arg, pos) in enumerate(pickletools.genops(fileobj)):
            name = op.name
            at = base + (pos or 0)
            if name in _GLOBAL_OPS:
                out.globals.append((at, name))
                if name.startswith("EXT"):
                    out.extensions.append((at, name, arg if isinstance(arg, int) else -1))
            if name in _CALL_OPS:
                out.calls.append((at, name))
            if n > _MAX_OPS:
                break
            if 0 <= need_globals <= len(out.globals) and 0 <= need_calls <= len(out.calls):
                break
    except Exception:
        pass
    return out
