"""Whether bytes hold a pickle a loader would run something from: read off its opcodes.

Shared by the text payload search (strings in safetensors metadata, PMML, msgpack) and the
pickle engine's nested scans (bytes a loader unpickles, strings inside a pickle): a check of
the first bytes alone missed a protocol-0 pickle that pads first (`N0`, `I1\n0`) or imports
with INST. Nothing is unpickled: `pickletools.genops` only parses the opcodes.
"""

from __future__ import annotations

import io
import pickletools
import re
from typing import Final

#: A protocol 0-2 GLOBAL opcode: `c<module>\n<name>\n`.
_PICKLE_GLOBAL: Final = re.compile(rb"(?:^|[(\n])c[A-Za-z_][\w.]*\n[A-Za-z_][\w.]*\n")
#: Opcodes that import (the only way a pickle reaches anything callable), and their bytes.
_IMPORT_OPS: Final = frozenset({"GLOBAL", "INST", "STACK_GLOBAL", "EXT1", "EXT2", "EXT4"})
_IMPORT_BYTES: Final = re.compile(rb"[ci][A-Za-z_][\w.]*\n|[\x93\x82\x83\x84]")


def looks_like_pickle(data: bytes) -> bool:
    """A binary pickle header, a protocol 0-2 GLOBAL opcode near the start, or opcodes that,
    read from the first byte as `pickle.loads` reads them, reach an import (GLOBAL or INST
    past the first 512 bytes, after padding; STACK_GLOBAL or EXT in a stream without a
    PROTO header, which the unpickler accepts) before a STOP or a byte no unpickler reads.
    Nothing runs in a pickle without an import, so one with none needs no walk. Linear."""
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return True
    if _PICKLE_GLOBAL.search(data[:512]):
        return True
    return reaches_import(data)


def reaches_import(data: bytes) -> bool:
    """Whether `data`'s opcodes, from its first byte, parse up to an import opcode (before a
    STOP or a byte no unpickler reads). Linear: a regex rules out most data without a walk."""
    if not _IMPORT_BYTES.search(data):
        return False
    try:
        for op, _arg, _pos in pickletools.genops(io.BytesIO(data)):
            if op.name in _IMPORT_OPS:
                return True
            if op.name == "STOP":
                return False
    except ValueError:
        return False
    return False
