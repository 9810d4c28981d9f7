"""SIGINT/SIGTERM around a scan: the caller's handlers are restored afterwards, and once the
scan is over a first signal lets the report be written."""

from __future__ import annotations

import signal
import threading
from typing import Any

from ..engine.report_signals import finish_on_signals, forget_signals

__all__ = ["finish_on_signals", "in_main_thread", "restore_handlers", "saved_handlers"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def saved_handlers() -> list[tuple[signal.Signals, Any]]:
    return [(s, signal.getsignal(s)) for s in _SIGNALS]


def restore_handlers(saved: list[tuple[signal.Signals, Any]]) -> None:
    forget_signals()
    if in_main_thread():
        for signum, handler in saved:
            if handler is not None:
                signal.signal(signum, handler)
