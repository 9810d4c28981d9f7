"""The event-loop probe behind the "never blocks the event loop" tests: code that holds the
loop is caught, a process merely kept off the CPU (a loaded machine) is not."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.remote_http import _remote_loop_probe
from tests.remote_http._remote_loop_probe import busy_stalls

CLEAN_PICKLE = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s."


def _target(tmp_path: Path) -> str:
    path = tmp_path / "model.pkl"
    path.write_bytes(CLEAN_PICKLE)
    return str(path)


def test_code_holding_the_loop_is_caught(tmp_path: Path) -> None:
    out = busy_stalls(_target(tmp_path), {**os.environ, "MODELAUDIT_PROBE_BURN": "0.5"})
    assert out["exit_code"] == 0
    assert out["busy"] and max(cpu for _wall, cpu, _where in out["busy"]) >= 0.5


def test_a_process_kept_off_the_cpu_is_not_a_stall(tmp_path: Path) -> None:
    """SIGSTOP for 0.6 s: a wall-clock gap of at least that, no CPU time used, nothing busy."""
    env = {**os.environ, "MODELAUDIT_PROBE_HOLD": "1"}
    proc = subprocess.Popen(
        [sys.executable, _remote_loop_probe.__file__, _target(tmp_path), "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().strip() == "ticking"
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.6)
        proc.send_signal(signal.SIGCONT)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    out = json.loads(stdout.splitlines()[-1])
    assert out["exit_code"] == 0
    assert out["max_gap"] >= 0.6
    assert out["stalls"] == []
