"""SIGINT/SIGTERM once a CLI scan is over and its report is being written: a first signal
lets the report be written, a second (counting one that stopped the scan) exits at once
without it.

Installed by the engine the moment its signal watcher lets go of the signals
(`ScanCall._stop_on_signals`): the watcher hands SIGINT back to Python's KeyboardInterrupt,
which, raised while the report is assembled, could land in a weakref callback and be
swallowed (the run then wrote the report it was told twice not to). The CLI's report phase
installs it again (cli/reports.py); what it has seen carries over."""

from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["finish_on_signals", "forget_signals"]

#: a signal already came (it stopped the scan, or one came once the scan was over)
_seen: list[bool] = []


def finish_on_signals(already_signalled: bool) -> None:
    """From now on (main thread only) a first SIGINT/SIGTERM is noted and a second exits."""
    if already_signalled and not _seen:
        _seen.append(True)

    def handler(signum: int, frame: object) -> None:
        if _seen:
            sys.stderr.write(
                f"modelaudit: {signal.Signals(signum).name} again, exiting without a report\n"
            )
            sys.stderr.flush()
            os._exit(128 + signum)
        _seen.append(True)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def forget_signals() -> None:
    """A run is over: the next one starts with no signal seen (in-process CLI runs)."""
    _seen.clear()
