"""What the parent can learn about a worker process without the async stack: why it ended,
and how much memory it holds."""

from __future__ import annotations

import os
import signal


def describe_status(status: int | None, returncode: int | None = None) -> str:
    """Why a worker died, in words: a signal (SIGKILL usually means out of memory) or a code."""
    sig: int | None = None
    code: int | None = returncode
    if status is not None and hasattr(os, "WIFSIGNALED"):
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
        elif os.WIFEXITED(status):
            code = os.WEXITSTATUS(status)
    elif returncode is not None and returncode < 0:
        sig, code = -returncode, None
    if sig is not None:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        if sig == getattr(signal, "SIGKILL", -1):
            return f"killed by {name} (out of memory or killed)"
        return f"killed by {name}"
    if code is not None:
        return f"exited with code {code}"
    return "ended"


def resident_bytes_of(pid: int) -> int | None:
    """Resident bytes of another process: /proc on Linux, psutil elsewhere if installed."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except Exception:
        return None
