"""Git LFS pointer files: what a clone without `git lfs` holds in place of a model's weights.

A pointer is a few lines of text (spec v1): `version https://git-lfs.github.com/spec/v1`,
then `oid sha256:<64 hex>` and `size <bytes>` (and optional `ext-` lines), under 1 KiB. A
repository cloned without LFS (a CI checkout without `lfs: true`) has one under every weight
file's name: no loader runs anything in it, but the model it stands for is not there to scan.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

__all__ = ["MAX_POINTER", "LfsPointer", "lfs_pointer"]

#: The spec caps a pointer at 1024 bytes.
MAX_POINTER: Final = 1024
_POINTER: Final = re.compile(
    rb"\Aversion https://(?:git-lfs\.github\.com|hawser\.github\.com)/spec/v1\n"
    rb"(?:ext-[^\n]{1,200}\n){0,8}"
    rb"oid sha256:(?P<oid>[0-9a-f]{64})\n"
    rb"size (?P<size>[0-9]{1,20})\n?\Z"
)


class LfsPointer(NamedTuple):
    sha256: str
    size: int


def lfs_pointer(data: bytes) -> LfsPointer | None:
    """The object a whole file's bytes point to, or None when they are no LFS pointer."""
    if len(data) > MAX_POINTER:
        return None
    m = _POINTER.match(data)
    if m is None:
        return None
    return LfsPointer(m["oid"].decode("ascii"), int(m["size"]))
