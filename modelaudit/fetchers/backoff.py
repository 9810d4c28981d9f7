"""Retry pacing for every fetcher, and SDK clients shared by a source and its readers.

One policy: `ATTEMPTS` tries, pauses drawn with full jitter (uniformly between zero and an
exponential ceiling, so many clients hitting one throttled service spread out instead of
retrying in lockstep), and a server's Retry-After as a floor.

The engine closes a `Source` as soon as its listing ends, while readers it handed out may still
be fetching; `SharedClient` keeps the underlying SDK client open until the last of them is done.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

ATTEMPTS = 5
BASE_DELAY = 0.25
MAX_DELAY = 20.0
RETRY_AFTER_CAP = 60.0


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from now; None if absent."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import email.utils  # only when a server sends an HTTP date

        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def delay(attempt: int, retry_after: str | None = None) -> float:
    """Seconds to wait before retry number `attempt` (0-based): full jitter on an exponential
    ceiling; a server's Retry-After (capped) is a floor."""
    import random

    pause = random.uniform(0, min(MAX_DELAY, BASE_DELAY * 2**attempt))
    asked = retry_after_seconds(retry_after)
    if asked is not None:
        pause = max(pause, min(asked, RETRY_AFTER_CAP) + random.uniform(0, 0.1))
    return pause


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
        import anyio

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
