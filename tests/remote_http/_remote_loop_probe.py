"""Run `modelaudit.scan(TARGET)` in a fresh process beside a ticker task; print the loop's gaps.

    python _remote_loop_probe.py TARGET [THRESHOLD_SECONDS]

A fresh process, because the set-up worth catching (SDK imports, client and session creation,
service-model loading) happens once per process. The ticker wakes every 2 ms and records the
longest time between two wake-ups; a watchdog thread samples the loop thread's stack whenever
the ticker has been silent for longer than THRESHOLD, so a stall is reported with the code that
held the loop. Prints one JSON line: {"max_gap", "stalls": [[seconds, stack], ...], "exit_code"}.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from typing import Any

from modelaudit import scan


def _where(thread_id: int) -> str:
    """The modelaudit frames of a thread's stack and the frame it is in now."""
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return ""
    frames = traceback.extract_stack(frame)
    ours = [f for f in frames if "/modelaudit/" in f.filename]
    shown = [*ours[-4:], *frames[-25:]]
    return " -> ".join(f"{f.filename.rsplit('/', 2)[-2:]}:{f.lineno} {f.name}" for f in shown)


async def main(target: str, threshold: float) -> dict[str, Any]:
    import anyio

    loop_thread = threading.get_ident()
    last = [time.monotonic()]
    gaps = [0.0]
    stalls: list[tuple[float, list[str]]] = []
    done = threading.Event()

    def watchdog() -> None:
        """While the ticker is silent past the threshold, sample where the loop thread is."""
        current: list[str] = []
        began = 0.0
        while not done.wait(threshold / 4):
            silent = time.monotonic() - last[0]
            if silent > threshold:
                if began != last[0]:
                    began, current = last[0], []
                    stalls.append((silent, current))  # type: ignore[arg-type]
                stalls[-1] = (silent, current)  # type: ignore[assignment]
                where = _where(loop_thread)
                if where not in current:
                    current.append(where)

    async def ticker() -> None:
        while True:
            await anyio.sleep(0.002)
            now = time.monotonic()
            gaps[0] = max(gaps[0], now - last[0])
            last[0] = now

    threading.Thread(target=watchdog, daemon=True).start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await anyio.sleep(0.05)
        last[0] = time.monotonic()
        gaps[0] = 0.0
        report = await scan(target)
        tg.cancel_scope.cancel()
    done.set()
    return {"max_gap": gaps[0], "stalls": stalls, "exit_code": report.exit_code}


def busy_stalls(target: str, env: dict[str, str], threshold: float = 0.2) -> dict[str, Any]:
    """Run the probe on `target` in a fresh process; its report plus `busy`: the stalls during
    which the loop thread was seen running code (a loop merely waiting in `select` for its
    turn on a busy machine is not the scanner's doing)."""
    import os
    import subprocess

    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), target, str(threshold)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    out["busy"] = [
        (silent, where)
        for silent, where in out["stalls"]
        if any("selectors.py" not in w for w in where)
    ]
    return out


if __name__ == "__main__":
    import anyio

    threshold = float(sys.argv[2]) if len(sys.argv) > 2 else 0.05
    print(json.dumps(anyio.run(main, sys.argv[1], threshold)))
