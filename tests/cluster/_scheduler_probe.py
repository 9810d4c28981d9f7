"""A Dask scheduler preload for the cluster tests (`dask scheduler --preload this-file`).

It records every message the scheduler's handlers receive (task graphs, `Client.run`
broadcasts, cancels; heartbeats aside), flattened to bytes with serialized frames kept
byte for byte, in `MODELAUDIT_TEST_SCHEDULER_RECORD`: what a client sent to the cluster, as
the scheduler saw it, for the tests that prove no credential travels.
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any

_QUIET = {"heartbeat_worker", "heartbeat-client", "keep-alive", "ncores", "ncores_running"}


def _flatten(value: Any, out: list[bytes], depth: int = 0) -> None:
    if depth > 20:
        out.append(repr(value).encode())
        return
    frames = getattr(value, "frames", None)
    if frames is not None:
        out.append(repr(getattr(value, "header", None)).encode())
        out.extend(bytes(f) for f in frames)
    elif isinstance(value, bytes | bytearray | memoryview):
        out.append(bytes(value))
    elif isinstance(value, dict):
        for k, v in value.items():
            _flatten(k, out, depth + 1)
            _flatten(v, out, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            _flatten(v, out, depth + 1)
    else:
        out.append(repr(value).encode())


def dask_setup(scheduler: Any) -> None:
    record = os.environ.get("MODELAUDIT_TEST_SCHEDULER_RECORD")
    if not record:
        return
    path = os.path.join(record, "scheduler.bin")

    def write(op: str, kwargs: dict[str, Any]) -> None:
        out: list[bytes] = [f"\n== {op} ==\n".encode()]
        _flatten(kwargs, out)
        with open(path, "ab") as f:
            f.write(b"\n".join(out))

    def wrap(op: str, handler: Any) -> Any:
        if inspect.iscoroutinefunction(handler):

            @functools.wraps(handler)
            async def async_recorded(*args: Any, **kwargs: Any) -> Any:
                write(op, kwargs)
                return await handler(*args, **kwargs)

            return async_recorded

        @functools.wraps(handler)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            write(op, kwargs)
            return handler(*args, **kwargs)

        return recorded

    for table in (scheduler.handlers, scheduler.stream_handlers):
        for op, handler in list(table.items()):
            if op not in _QUIET:
                table[op] = wrap(op, handler)
