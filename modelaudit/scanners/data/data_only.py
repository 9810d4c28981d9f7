"""The shared shape of scanners for files that are data to every loader that reads them.

SentencePiece, fastText, CTranslate2 and word2vec files are parsed by C/C++ libraries (tiktoken
ranks by a line reader) that never execute anything from them, and their first bytes are no pickle opcode, so no pickle
loader can run them either. Such a scanner's job is to confirm the file is what its header
says, all the way through: then it is complete, quietly (the summary goes to the metadata).
A file that breaks halfway is still inert (its loader refuses it), so it is complete as well,
with an INFO saying so.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import BinaryIO, ClassVar

from ...formats.bounded_reader import Malformed
from ...rules.data import DATA_ONLY_CORRUPT
from ..base import BaseScanner, IssueSeverity, ScanResult


class DataOnlyScanner(BaseScanner):
    #: What the file is, in a user's words ("SentencePiece tokenizer model").
    kind: ClassVar[str] = ""
    #: Who reads it, for the finding ("the sentencepiece library").
    loader: ClassVar[str] = ""

    @abstractmethod
    def read(self, f: BinaryIO, size: int) -> str:
        """Parse the whole file and describe it, or raise `Malformed`."""

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        size = self.file_size(path)
        with open(path, "rb") as f:
            try:
                summary = self.read(f, size)
            except Malformed as exc:
                result.add_issue(
                    f"Corrupt {self.kind}: {exc}; {self.loader} refuses it and nothing in it runs",
                    severity=IssueSeverity.INFO,
                    location=self.location(path),
                    details={"format": str(self.ctx.format or ""), "error": str(exc)},
                    rule=DATA_ONLY_CORRUPT,
                )
            else:
                result.metadata["data_only"] = summary
        result.bytes_scanned = size
        result.finish()
        return result
