"""Legacy GGML files (pre-GGUF llama.cpp): magic, version and hyperparameter sanity.

These files carry no templates or code, only a fixed header, a vocabulary and tensors; the
risk is a crafted header aimed at old C loaders, so the header is checked for values no
converter writes and the file is otherwise left unread.
"""

from __future__ import annotations

import struct
from typing import Final

from ...formats import Format
from ...rules.data import GGML_BAD_HEADER
from ..base import BaseScanner, IssueSeverity, ScanResult

#: magic as stored (little-endian uint32 spelled backwards, or big-endian) -> (name, versions)
_MAGICS: Final[dict[bytes, tuple[str, tuple[int, ...]]]] = {
    b"lmgg": ("ggml", ()),
    b"ggml": ("ggml", ()),
    b"fmgg": ("ggmf", (1,)),
    b"ggmf": ("ggmf", (1,)),
    b"tjgg": ("ggjt", (1, 2, 3)),
    b"ggjt": ("ggjt", (1, 2, 3)),
    b"algg": ("ggla", (1,)),
    b"ggla": ("ggla", (1,)),
}
_MAX_VOCAB: Final = 10_000_000
_MAX_DIM: Final = 1 << 20


class GgmlScanner(BaseScanner):
    name = "ggml"
    description = "Legacy GGML/GGMF/GGJT headers: magic, version and hyperparameter sanity"
    supported_extensions = [".ggml"]
    formats = (Format.GGML,)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        with open(path, "rb") as f:
            head = f.read(64)
        result.bytes_scanned = len(head)
        magic = head[:4]
        if magic not in _MAGICS:
            result.mark_inconclusive("malformed: not a GGML header")
            result.finish()
            return result
        kind, versions = _MAGICS[magic]
        endian = "<" if magic[:1] in b"lfta" else ">"
        offset = 4
        problems: list[str] = []
        version = None
        if versions:
            if len(head) < 8:
                result.mark_inconclusive("malformed: header truncated")
                result.finish()
                return result
            (version,) = struct.unpack_from(endian + "I", head, 4)
            offset = 8
            if version not in versions:
                problems.append(f"unknown {kind} version {version}")
        if kind == "ggla":
            params: tuple[int, ...] = ()
        elif len(head) < offset + 28:
            result.mark_inconclusive("malformed: header truncated")
            result.finish()
            return result
        else:
            params = struct.unpack_from(endian + "7i", head, offset)
            n_vocab, n_embd = params[0], params[1]
            if not 0 < n_vocab <= _MAX_VOCAB:
                problems.append(f"vocabulary size {n_vocab}")
            if not 0 < n_embd <= _MAX_DIM:
                problems.append(f"embedding size {n_embd}")
        result.metadata["format_details"] = {"magic": kind, "version": version}
        if problems:
            result.add_issue(
                f"Implausible GGML header: {', '.join(problems)}",
                severity=IssueSeverity.WARNING,
                location=self.location(path, pos=4),
                details={"problems": problems, "hparams": list(params)},
                why="Legacy loaders size buffers from these fields; crafted values corrupt "
                "memory in the process that loads the model.",
                rule=GGML_BAD_HEADER,
            )
            result.mark_inconclusive("malformed: GGML header not understood")
        result.finish()
        return result
