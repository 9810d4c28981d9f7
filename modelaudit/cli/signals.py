"""SIGINT/SIGTERM around a scan: the caller's handlers are restored afterwards, and once the
scan is over a first signal lets the report be written."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

__all__ = ["finish_on_signals", "in_main_thread", "restore_handlers", "saved_handlers"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def saved_handlers() -> list[tuple[signal.Signals, Any]]:
    return [(s, signal.getsignal(s)) for s in _SIGNALS]


def restore_handlers(saved: list[tuple[signal.Signals, Any]]) -> None:
    if in_main_thread():
        for signum, handler in saved:
            if handler is not None:
                signal.signal(signum, handler)


def finish_on_signals(already_signalled: bool) -> None:
    """Once the scan is over, a first SIGINT/SIGTERM lets the report be written; a second
    (counting the one that stopped the scan) exits at once without it."""
    seen = [True] if already_signalled else []

    def handler(signum: int, frame: object) -> None:
        if seen:
            sys.stderr.write(
                f"modelaudit: {signal.Signals(signum).name} again, exiting without a report\n"
            )
            sys.stderr.flush()
            os._exit(128 + signum)
        seen.append(True)

    if in_main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
