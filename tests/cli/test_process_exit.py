"""The command ends its process without the interpreter's teardown (`cli.main.exit_now`),
and nothing a normal exit does for the user is lost: exit handlers run, buffered output is
flushed, a running non-daemon thread is waited for, and the exit code is the command's."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

_PROBE = """
import atexit, sys, threading, time
atexit.register(lambda: print("exit handler ran"))
print("buffered before the command")
if "--thread" in sys.argv:
    sys.argv.remove("--thread")
    def late():
        time.sleep(0.3)
        print("thread finished", flush=True)
    threading.Thread(target=late).start()
sys.argv[0] = "modelaudit"
from modelaudit.cli.main import console
console()
"""


def _probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_handlers_run_and_output_is_flushed(tmp_path: Path) -> None:
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    proc = _probe("scan", str(model), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "buffered before the command"
    assert lines[-1] == "exit handler ran"
    assert '"exit_code":0' in proc.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [(("rules", "MA1001"), 0), (("--help",), 0), (("scan", "--no-such-flag"), 2)],
)
def test_exit_codes_of_the_command_and_of_argparse(args: tuple[str, ...], code: int) -> None:
    proc = _probe(*args)
    assert proc.returncode == code, proc.stderr
    assert proc.stdout.splitlines()[-1] == "exit handler ran"


def test_findings_exit_one(tmp_path: Path) -> None:
    model = tmp_path / "evil.pkl"
    model.write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    proc = _probe("scan", str(model))
    assert proc.returncode == 1, proc.stderr


def test_a_running_thread_is_waited_for(tmp_path: Path) -> None:
    proc = _probe("rules", "MA1001", "--thread")
    assert proc.returncode == 0, proc.stderr
    assert "thread finished" in proc.stdout.splitlines()


def test_a_profiler_still_writes_its_data(tmp_path: Path) -> None:
    """Under cProfile (or a tracer such as coverage) the usual exit is taken: they write
    their data once the program returns."""
    out = tmp_path / "cli.prof"
    proc = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "modelaudit.cli", "rules"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0
