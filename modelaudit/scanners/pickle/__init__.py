"""The pickle family: one engine for every pickle-bearing format, and the raw-pickle scanner.

`scan_pickle_stream` and `scan_pickle_bytes` (in `stream`) are the API container scanners
call; `policy` judges names, `stubs` records what a load would do, `emulate` drives
CPython's own unpickler over inert stubs.
"""

from __future__ import annotations

from .stream import PickleStreamInfo, scan_pickle_bytes, scan_pickle_stream

__all__ = ["PickleStreamInfo", "scan_pickle_bytes", "scan_pickle_stream"]
