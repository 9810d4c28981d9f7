"""Raw pickle files of any protocol and extension, stacked pickles, dill and plain joblib."""

from __future__ import annotations

import io
from typing import BinaryIO, ClassVar

from ..base import BaseScanner, ScanResult
from . import scan_pickle_stream


class PickleScanner(BaseScanner):
    name: ClassVar[str] = "pickle"
    description: ClassVar[str] = (
        "Emulates the pickle loader symbolically and reports every import and call a load would "
        "make (raw pickles, stacked pickles, dill, plain joblib)."
    )
    supported_extensions: ClassVar[list[str]] = [
        ".pkl",
        ".pickle",
        ".dill",
        ".pt",
        ".pth",
        ".bin",
        ".ckpt",
        ".joblib",
    ]
    formats: ClassVar[tuple[str, ...]] = ("pickle",)
    judges_bytes = True

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        data = self.whole_file(path)
        f: BinaryIO
        try:
            f = io.BytesIO(data) if data is not None else open(path, "rb", buffering=0)  # noqa: SIM115
        except OSError as exc:
            result.mark_error(f"cannot open file: {exc.strerror or exc}")
            result.finish()
            return result
        with f:
            info = scan_pickle_stream(
                f,
                result,
                location=lambda pos: self.location(path, None, pos),
                ctx=self.ctx,
                stacked=True,
                depth=self.ctx.depth,
            )
            size = len(data) if data is not None else self.file_size(path)
            if info.complete and info.end < size:
                result.metadata["trailing_bytes"] = size - info.end
        result.metadata["pickle_count"] = info.pickles
        result.metadata["pickle_globals"] = info.globals[:200]
        result.finish()
        return result
