"""The command's own lines on stderr (`modelaudit: error: ...`), made printable."""

from __future__ import annotations

import sys

from ..reporters.safe import printable

__all__ = ["error"]


def error(message: str) -> None:
    print(f"modelaudit: error: {printable(message)}", file=sys.stderr)
