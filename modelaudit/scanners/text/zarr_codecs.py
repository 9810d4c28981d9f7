"""Zarr array metadata whose codecs unpickle the chunks they decode.

An object array (`dtype "|O"`) needs an object codec, and numcodecs' `Pickle` is one:
`zarr` then runs `pickle.loads` on every chunk it reads. The chunks themselves are most often
compressed as well (Blosc, Zstd), so no scan of the chunk files sees the pickle; the
array's metadata says it is there: `.zarray` (zarr v2: `filters` and `compressor`, each
`{"id": ...}`) or `zarr.json` (v3: `codecs`, each `{"name": ...}`, numcodecs' own under
`numcodecs.pickle`).
"""

from __future__ import annotations

from typing import Any, Final

from ...rules.data import ZARR_PICKLE_CODEC
from ..base import BaseScanner, IssueSeverity, ScanResult

#: The metadata files of a zarr array, by name.
METADATA_NAMES: Final = frozenset({".zarray", "zarr.json"})
_PICKLE: Final = frozenset({"pickle", "numcodecs.pickle"})


def _codecs(doc: dict[str, Any]) -> list[str]:
    found: list[Any] = []
    for key in ("filters", "codecs"):
        value = doc.get(key)
        if isinstance(value, list):
            found.extend(value)
    found.append(doc.get("compressor"))
    names = []
    for codec in found:
        if isinstance(codec, dict):
            name = codec.get("id", codec.get("name"))
            if isinstance(name, str):
                names.append(name)
    return names


def report_zarr_codecs(
    scanner: BaseScanner, doc: dict[str, Any], path: str, result: ScanResult
) -> None:
    """A WARNING when the array's codecs unpickle its chunks."""
    pickled = [name for name in _codecs(doc) if name.lower() in _PICKLE]
    if not pickled:
        return
    result.add_issue(
        f"Zarr array decodes its chunks with the '{pickled[0]}' codec (pickle.loads on read)",
        severity=IssueSeverity.WARNING,
        location=scanner.location(path),
        details={"codec": pickled[0], "dtype": str(doc.get("dtype", doc.get("data_type")))},
        why="Reading the array's data unpickles every chunk it reads; a chunk can run any "
        "code, and compressed chunks hide it from a scan of the files.",
        rule=ZARR_PICKLE_CODEC,
    )
