"""A run that owns its event loop drops one harmless error the loop would print.

anyio's socket streams wait for readiness with `loop.add_reader(sock, future.set_result,
None)` and remove that reader in the future's done callback, which runs a loop turn later.
A receive cancelled in the turn its socket became readable (a deadline, a cancelled call, a
worker given back) then has its reader fire on the cancelled future: the loop logs the
InvalidStateError as "Exception in callback Future.set_result", an ERROR line on the CLI's
stderr, though nothing was lost (the cancelled receive reads nothing; the bytes stay in the
socket). Only loops this package starts get the handler: a caller's loop is left alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["ignore_late_wakeups"]


def ignore_late_wakeups() -> None:
    """Install, on the running loop, a handler that drops a readiness callback completing a
    future already done, and passes everything else on as before."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), asyncio.InvalidStateError) and "set_result" in repr(
            context.get("handle")
        ):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
