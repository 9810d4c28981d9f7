"""Run `modelaudit.scan(TARGET)` twice in a fresh process beside a ticker task; print the loop's
gaps.

    python _remote_loop_probe.py TARGET [THRESHOLD_SECONDS]

A fresh process, because the set-up worth catching (SDK imports, client and session creation,
service-model loading) happens once per process; the second scan is a later call in the same
process (session and client reuse, per-call set-up). The ticker wakes every 2 ms and measures,
between two wake-ups, both the wall time and the CPU time the loop thread itself used. Only the
CPU time says the loop was held by running code: on a loaded machine the process waits for a
core for longer than any threshold, whatever line it happens to be on (a wall-clock stall with
a stack inside an import was once reported for code that ran for 30 ms). A watchdog thread
samples the loop thread's stack while the ticker is silent, so a stall is reported with the
code that held the loop. Prints one JSON line:
{"max_gap", "max_cpu_gap", "stalls": [[wall, cpu, stack], ...], "exit_code"}.

Set MODELAUDIT_PROBE_BURN=SECONDS to have the loop run code for that long before the scan (the
probe's own test that a stall is caught), MODELAUDIT_PROBE_HOLD=SECONDS to have it wait that
long, ticking, after printing "ticking" on stderr (to stop the process from outside).
"""

from __future__ import annotations

import json
import os
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
    gaps = [0.0, 0.0]
    #: stacks sampled during each silence, by the time of the tick that began it
    samples: dict[float, list[str]] = {}
    stalls: list[tuple[float, float, list[str]]] = []
    done = threading.Event()

    def watchdog() -> None:
        """While the ticker is silent past the threshold, sample where the loop thread is."""
        while not done.wait(threshold / 4):
            began = last[0]
            if time.monotonic() - began > threshold:
                where = _where(loop_thread)
                current = samples.setdefault(began, [])
                if where not in current:
                    current.append(where)

    async def ticker() -> None:
        cpu_last = time.thread_time()
        while True:
            await anyio.sleep(0.002)
            now, cpu = time.monotonic(), time.thread_time()
            wall, held = now - last[0], cpu - cpu_last
            gaps[0], gaps[1] = max(gaps[0], wall), max(gaps[1], held)
            seen = samples.pop(last[0], [])
            if held > threshold:
                stalls.append((wall, held, seen))
            last[0], cpu_last = now, cpu

    threading.Thread(target=watchdog, daemon=True).start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await anyio.sleep(0.05)
        if hold := float(os.environ.get("MODELAUDIT_PROBE_HOLD") or 0):
            print("ticking", file=sys.stderr, flush=True)
            await anyio.sleep(hold)
        if burn := float(os.environ.get("MODELAUDIT_PROBE_BURN") or 0):
            end = time.thread_time() + burn
            while time.thread_time() < end:
                pass
        for _ in range(2):
            report = await scan(target)
        await anyio.sleep(0.01)  # one more tick: the last stretch of the scan is measured
        tg.cancel_scope.cancel()
    done.set()
    return {
        "max_gap": gaps[0],
        "max_cpu_gap": gaps[1],
        "stalls": stalls,
        "exit_code": report.exit_code,
    }


def busy_stalls(target: str, env: dict[str, str], threshold: float = 0.2) -> dict[str, Any]:
    """Run the probe on `target` in a fresh process; its report plus `busy`: the stretches in
    which the loop thread ran code for longer than `threshold` without letting the ticker run
    (a loop merely waiting for its turn on a busy machine uses no CPU time and is not the
    scanner's doing)."""
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
    out["busy"] = out["stalls"]
    return out


if __name__ == "__main__":
    import anyio

    threshold = float(sys.argv[2]) if len(sys.argv) > 2 else 0.05
    print(json.dumps(anyio.run(main, sys.argv[1], threshold)))
