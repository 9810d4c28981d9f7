"""Simulates a platform without some of Linux's sandbox pieces, in every process of a test.

`MODELAUDIT_SIMULATE` is a comma-separated list: no-resource (Windows: no rlimits), no-prctl
(macOS, Windows: no parent-death signal), no-fork (Windows: no fork server), no-pidfd,
no-sigxcpu, no-sigmask, no-nonblock (Windows: no O_NONBLOCK, and `os.set_blocking` works on pipes
only), no-positional (Windows: no `os.pread`/`os.pwrite`). Put this folder first on PYTHONPATH to use it.
"""

import os
import signal
import stat
import sys

_FLAGS = set(filter(None, os.environ.get("MODELAUDIT_SIMULATE", "").split(",")))

if "no-resource" in _FLAGS:
    sys.modules["resource"] = None  # type: ignore[assignment]
if "no-fork" in _FLAGS:
    for _name in ("fork", "forkpty"):
        if hasattr(os, _name):
            delattr(os, _name)
if "no-pidfd" in _FLAGS and hasattr(os, "pidfd_open"):
    del os.pidfd_open
if "no-sigxcpu" in _FLAGS:
    for _name in ("SIGXCPU", "SIGXFSZ"):
        if hasattr(signal, _name):
            delattr(signal, _name)
if "no-positional" in _FLAGS:
    for _name in ("pread", "pwrite"):
        if hasattr(os, _name):
            delattr(os, _name)
if "no-sigmask" in _FLAGS and hasattr(signal, "pthread_sigmask"):
    del signal.pthread_sigmask
if "no-prctl" in _FLAGS:
    import ctypes

    class _NoLibc(ctypes.CDLL):
        def __init__(self, name, *args, **kwargs):  # type: ignore[no-untyped-def]
            if name is None:
                raise OSError("simulated platform: no prctl")
            super().__init__(name, *args, **kwargs)

    ctypes.CDLL = _NoLibc  # type: ignore[misc]
if "no-nonblock" in _FLAGS:
    if hasattr(os, "O_NONBLOCK"):
        del os.O_NONBLOCK
    _set_blocking = os.set_blocking

    def _pipes_only(fd: int, blocking: bool) -> None:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            raise OSError(22, "simulated platform: set_blocking works on pipes only")
        _set_blocking(fd, blocking)

    os.set_blocking = _pipes_only
