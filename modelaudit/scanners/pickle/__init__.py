"""The pickle family: one engine for every pickle-bearing format, and the raw-pickle scanner.

`scan_pickle_stream` and `scan_pickle_bytes` (in `stream`) are the API container scanners
call; `policy` judges names, `stubs` records what a load would do, `emulate` drives
CPython's own unpickler over inert stubs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._lazy import load_export

if TYPE_CHECKING:
    from .stream import PickleStreamInfo, scan_pickle_bytes, scan_pickle_stream

_EXPORTS = {
    "PickleStreamInfo": ".stream",
    "scan_pickle_bytes": ".stream",
    "scan_pickle_stream": ".stream",
}
__all__ = [
    "PickleStreamInfo",
    "scan_pickle_bytes",
    "scan_pickle_stream",
]


def __getattr__(name: str) -> Any:
    return load_export(__name__, _EXPORTS, name)
