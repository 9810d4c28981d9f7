"""Retries with jittered exponential backoff, and SDK clients shared by a source and its readers.

The engine closes a `Source` as soon as its listing ends, while readers it handed out may still
be fetching; `SharedClient` keeps the underlying SDK client open until the last of them is done.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")

ATTEMPTS = 5
BASE_DELAY = 0.2
MAX_DELAY = 8.0


def delay(attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (0-based), with full jitter."""
    ceiling: float = min(MAX_DELAY, BASE_DELAY * (2**attempt))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


async def retry(
    op: Callable[[], Awaitable[T]],
    transient: Callable[[BaseException], bool],
    attempts: int = ATTEMPTS,
) -> T:
    """Run `op`, again after a pause while it fails transiently; the last failure propagates."""
    for attempt in range(attempts):
        try:
            return await op()
        except Exception as exc:
            if attempt + 1 >= attempts or not transient(exc):
                raise
        await anyio.sleep(delay(attempt))
    raise AssertionError("unreachable")


class SharedClient:
    """Reference count over one SDK client; `close` runs when the count drops to zero."""

    def __init__(self, close: Callable[[], Awaitable[None]]) -> None:
        self._close = close
        self._refs = 1
        self._closed = False

    def retain(self) -> None:
        self._refs += 1

    async def release(self) -> None:
        self._refs -= 1
        if self._refs <= 0 and not self._closed:
            self._closed = True
            await self._close()
