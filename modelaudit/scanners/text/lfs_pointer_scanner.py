"""Git LFS pointers under a model file's name (`formats/lfs.py`).

Nothing runs from a pointer, but the weights it stands for were not scanned: the file is
inconclusive, with an INFO naming the object and what to do, rather than a "malformed
safetensors header" WARNING from reading the pointer's text as weights.
"""

from __future__ import annotations

from ...formats import Format
from ...formats.lfs import MAX_POINTER, lfs_pointer
from ...rules.core import LFS_POINTER
from ..base import BaseScanner, IssueSeverity, ScanResult


class LfsPointerScanner(BaseScanner):
    name = "lfs_pointer"
    description = "Git LFS pointers standing in for files a clone did not fetch"
    formats = (Format.LFS_POINTER,)
    judges_bytes = True

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        data = self.whole_file(path)
        if data is None:
            with open(path, "rb") as f:
                data = f.read(MAX_POINTER + 1)
        result.bytes_scanned = len(data)
        pointer = lfs_pointer(data)
        if pointer is None:
            self.mark_malformed(result, path, "Git LFS pointer", "not a pointer past its head")
            result.finish()
            return result
        result.add_issue(
            f"Git LFS pointer: the {pointer.size}-byte object it stands for (sha256 "
            f"{pointer.sha256}) is not in this checkout and was not scanned",
            severity=IssueSeverity.INFO,
            location=self.location(path),
            details={"sha256": pointer.sha256, "size": pointer.size},
            why="A clone without Git LFS holds pointers in place of the weights.",
            rule=LFS_POINTER,
        )
        result.metadata["lfs_pointer"] = {"sha256": pointer.sha256, "size": pointer.size}
        result.mark_inconclusive("Git LFS pointer: content not fetched (git lfs pull)")
        result.finish()
        return result
