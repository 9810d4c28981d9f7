"""TorchScript saved as a flatbuffer (`torch.jit.save_jit_module_to_flatbuffer`, file
identifier `PTMF` at offset 4): the same program as a torch.jit.save zip, in another container.

Both torch.jit.load and `_load_for_lite_interpreter` load it whatever its name, and run a
scripted `__setstate__` while loading: the jit path compiles the embedded source
(`jit_sources`), the lite path runs the bytecode, whose operator table names each builtin as
a string (`aten::from_file`). Flatbuffer strings are stored as plain bytes, so the file is
read as runs of text: runs that look like TorchScript source are judged together by
`containers.torchscript_code.find_file_ops_in` (a scripted class's own `save` method is not
torch's; the runs carry no module names, so a class is known by its name alone), and every
run is searched for the operator names. Nothing is parsed as a flatbuffer, compiled or run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO, ClassVar, Final

from ...formats import Format
from ...rules import containers as crules
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..containers.torchscript_code import (
    FILE_OPS,
    FileOpCall,
    Source,
    find_file_ops,
    find_file_ops_in,
)

#: Runs of text: printable ASCII, tabs and line ends, and UTF-8 bytes (a source's literals).
_TEXT_BYTES: Final = b"\t\n\r" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
_RUN: Final = re.compile(rb"[\t\n\r\x20-\x7e\x80-\xff]{6,}")
_OPERATOR: Final = re.compile(
    rb"[A-Za-z_][A-Za-z0-9_]*::(" + "|".join(FILE_OPS).encode() + rb")(?![A-Za-z0-9_])"
)
_SOURCE_HINTS: Final = (b"def ", b"torch", b"ops.", b"getattr")
_CHUNK: Final = 8 << 20
#: A run longer than this is judged in pieces (each still searched for operator names).
_MAX_RUN: Final = 16 << 20
#: Source runs kept to be judged together (past this, each is judged on its own).
_KEPT_SOURCES: Final = 16 << 20


def text_runs(f: BinaryIO) -> Iterator[bytes]:
    """Runs of text in the file, read in chunks; a run cut by a chunk's end is carried over
    to the next chunk whole (up to `_MAX_RUN`)."""
    carry = b""
    while chunk := f.read(_CHUNK):
        data = carry + chunk
        cut = len(data.rstrip(_TEXT_BYTES))
        if cut == 0 and len(data) < _MAX_RUN:
            carry = data
            continue
        cut = cut or len(data)
        yield from (m.group() for m in _RUN.finditer(data, 0, cut))
        carry = data[cut:]
    yield from (m.group() for m in _RUN.finditer(carry))


def _add_source_ops(found: dict[str, str], judged: Iterable[list[FileOpCall]]) -> None:
    for calls in judged:
        for call in calls:
            found.setdefault(call.op, f"{call.op} (TorchScript source)")


class TorchScriptFlatbufferScanner(BaseScanner):
    name = "torchscript_flatbuffer"
    description = "TorchScript flatbuffers (PTMF): builtins their source or bytecode call"
    supported_extensions: ClassVar[list[str]] = []
    formats = (Format.TORCHSCRIPT_FLATBUFFER,)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        result.metadata["format"] = Format.TORCHSCRIPT_FLATBUFFER
        found: dict[str, str] = {}
        sources: list[Source] = []
        kept = 0
        try:
            with open(path, "rb") as f:
                for run in text_runs(f):
                    for m in _OPERATOR.finditer(run):
                        found.setdefault(m.group(1).decode(), m.group().decode())
                    if any(h in run for h in _SOURCE_HINTS):
                        sources.append(Source(run.decode("utf-8", "replace"), None))
                        kept += len(run)
                        if kept > _KEPT_SOURCES:
                            _add_source_ops(found, (find_file_ops(s.text) for s in sources))
                            sources.clear()
                result.bytes_scanned = f.tell()
        except OSError as exc:
            result.mark_error(f"cannot read file: {exc.strerror or exc}")
            return result
        _add_source_ops(found, find_file_ops_in(sources))
        for op, how in sorted(found.items()):
            result.add_issue(
                f"TorchScript flatbuffer calls {how}: {FILE_OPS[op]}",
                severity=IssueSeverity.CRITICAL,
                location=self.location(path),
                details={"builtin": how},
                why="torch.jit.load and the lite interpreter load a PTMF file whatever its "
                "name and run its scripted __setstate__ while loading, forward on every "
                "call; this builtin reaches the host's files at a path the model chooses.",
                rule=crules.TORCHSCRIPT_FILE_ACCESS,
            )
        result.finish()
        return result
