"""Files that are native programs or scripts: ELF, PE, Mach-O, Java classes, shebang scripts,
and CPython bytecode (`formats/pyc.py`: `import` runs it in place of the source a scan reads).

A model directory or archive has no need for programs; one that ships them (or names one like
weights) expects something to run or `dlopen` it: `torch.ops.load_library`, `tf.load_op_library`,
ctypes, a build step. Only the start of a file is judged, with the header checked beyond the
magic, so tensor bytes that happen to contain `\\x7fELF` somewhere raise nothing.
"""

from __future__ import annotations

import struct
from typing import ClassVar, Final

from ...formats import Format, has_model_extension
from ...formats.pyc import bytecode_kind
from ...rules.containers import EXECUTABLE_IN_MODEL
from ...rules.data import DISGUISED_EXECUTABLE, EXECUTABLE_FILE
from ..base import BaseScanner, IssueSeverity, ScanResult

_HEAD: Final = 4096
_MACHO_THIN: Final = (
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
)
_ELF_TYPES: Final = {1: "relocatable object", 2: "executable", 3: "shared object", 4: "core dump"}


def identify(head: bytes, size: int) -> str | None:
    """What kind of program `head` starts, or None when only the magic matched."""
    bytecode = bytecode_kind(head)
    if bytecode is not None:
        return bytecode
    if head.startswith(b"\x7fELF") and len(head) >= 20:
        if head[4] in (1, 2) and head[5] in (1, 2) and head[6] == 1:
            (etype,) = struct.unpack_from("<H" if head[5] == 1 else ">H", head, 16)
            return f"ELF {_ELF_TYPES.get(etype, 'file')}"
        return None
    if head.startswith(b"MZ") and len(head) >= 0x40:
        (lfanew,) = struct.unpack_from("<I", head, 0x3C)
        if lfanew + 24 <= len(head) and head[lfanew : lfanew + 4] == b"PE\x00\x00":
            (chars,) = struct.unpack_from("<H", head, lfanew + 22)
            return "PE DLL" if chars & 0x2000 else "PE executable"
        return "DOS/PE executable" if lfanew + 4 > len(head) and lfanew < size else None
    if head[:4] in _MACHO_THIN and len(head) >= 28:
        return "Mach-O binary"
    if head.startswith(b"\xca\xfe\xba\xbe") and len(head) >= 8:
        (n,) = struct.unpack_from(">I", head, 4)
        if 0 < n < 45:
            return "Mach-O universal binary"
        return "Java class file" if n >= 45 else None
    if head.startswith(b"#!"):
        line = head[2:258].split(b"\n", 1)[0].strip()
        if line.startswith(b"/") and all(32 <= c < 127 or c == 9 for c in line):
            return f"script ({line.decode('ascii')[:80]})"
        return None
    return None


class ExecutableScanner(BaseScanner):
    name = "executable"
    description = "Native programs, libraries and scripts shipped as or inside model files"
    supported_extensions: ClassVar[list[str]] = []
    formats = (Format.EXECUTABLE,)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        with open(path, "rb") as f:
            head = f.read(_HEAD)
        result.bytes_scanned = len(head)
        kind = identify(head, self.file_size(path))
        shown = self.display_path or path
        if kind is None:
            result.mark_inconclusive("unknown format: executable magic without a valid header")
            result.finish()
            return result
        result.metadata["format_details"] = {"executable": kind}
        container = self.ctx.config.get("model_container")
        if container:
            result.add_issue(
                f"Model container {container} ships a {kind}: {shown}",
                severity=IssueSeverity.CRITICAL,
                location=self.location(path, pos=0),
                details={"kind": kind, "container": str(container)},
                why="A model's own archive never needs a program or native library; one "
                "shipped inside it is the payload of whatever step extracts or loads it next.",
                rule=EXECUTABLE_IN_MODEL,
            )
        elif has_model_extension(shown):
            result.add_issue(
                f"File named like a model is a {kind}",
                severity=IssueSeverity.CRITICAL,
                location=self.location(path, pos=0),
                details={"kind": kind},
                why="A program disguised as model weights exists to be executed or loaded as "
                "a native library by some step that trusts the model.",
                rule=DISGUISED_EXECUTABLE,
            )
        else:
            result.add_issue(
                f"Executable content: {kind}",
                severity=IssueSeverity.WARNING,
                location=self.location(path, pos=0),
                details={"kind": kind},
                why=(
                    "Python imports bytecode in place of its source: what it runs is code no "
                    "scan of the model's sources reads."
                    if "bytecode" in kind
                    else "Native code shipped with a model runs with full privileges if "
                    "anything executes or loads it (custom-op loaders, ctypes, setup scripts)."
                ),
                rule=EXECUTABLE_FILE,
            )
        result.finish()
        return result
