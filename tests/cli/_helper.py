"""Running the real `modelaudit` command, and the hostile inputs its user-facing tests need.

Every input is built from bytes here; nothing is ever loaded.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: posix.system('echo pwned') as a protocol-2 pickle (never loaded).
EVIL_PICKLE = b"\x80\x02cposix\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03."
#: An inert pickle: a dict of ints.
SAFE_PICKLE = b"\x80\x02}q\x00(K\x01K\x02u."

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2


def run(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
    stdin: int | None = subprocess.DEVNULL,
) -> subprocess.CompletedProcess[bytes]:
    """`python -m modelaudit ARGS` in a subprocess, with this tree on the path."""
    return subprocess.run(
        [sys.executable, "-m", "modelaudit", *args],
        capture_output=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=180,
        check=False,
        preexec_fn=preexec_fn,
        stdin=stdin,
    )


def json_report(proc: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def without_file_permission_override() -> None:
    """preexec_fn: the child cannot bypass file permissions, even when the tests run as root
    (a `chmod 000` folder must then be as unreadable to it as to any user)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
    # Dropping from the bounding set takes effect at exec for the effective set.


def run_on_terminal(
    *args: str, env: dict[str, str] | None = None, streams: tuple[str, ...] = ("stderr",)
) -> tuple[int, bytes, bytes]:
    """Run the CLI with the named streams on a pseudo-terminal (the others piped): its exit
    code, everything written to the terminal, and the piped stdout."""
    import pty
    import select

    master, slave = pty.openpty()
    kwargs: dict[str, Any] = {
        name: (slave if name in streams else subprocess.PIPE) for name in ("stdout", "stderr")
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelaudit", *args],
        stdin=subprocess.DEVNULL,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "200", **(env or {})},
        **kwargs,
    )
    os.close(slave)
    seen = bytearray()
    piped = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    if proc.stdout is not None:
        piped = proc.stdout.read()
        proc.stdout.close()
    if proc.stderr is not None:
        proc.stderr.close()
    code = proc.wait(timeout=180)
    os.close(master)
    return code, bytes(seen), piped
