"""The workers' temp folders: removed when a run ends, and swept by the next run when the
run that made them was killed. Every run here has its own TMPDIR, so nothing outside the
test's folder is looked at."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from modelaudit.engine import workdirs
from tests.cli._helper import SAFE_PICKLE, run

ROOT = Path(__file__).resolve().parents[2]


def _folders(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith(workdirs.PREFIX))


def _holder(tmp: Path, then: str) -> subprocess.Popen[str]:
    """A process that makes a folder (with a worker's subfolder in it), prints it, then
    runs `then`."""
    code = (
        "import os, sys, time\n"
        "from modelaudit.engine import workdirs\n"
        "p = workdirs.make()\n"
        "os.makedirs(os.path.join(p, 'w1'))\n"
        "open(os.path.join(p, 'w1', 'spool'), 'w').write('x')\n"
        "print(p, flush=True)\n" + then
    )
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )


def test_a_killed_runs_folder_is_swept_and_a_live_ones_is_not(tmp_path: Path) -> None:
    killed = _holder(tmp_path, "time.sleep(120)")
    alive = _holder(tmp_path, "sys.stdin.read() if False else time.sleep(120)")
    try:
        assert killed.stdout is not None and alive.stdout is not None
        killed_dir = killed.stdout.readline().strip()
        alive_dir = alive.stdout.readline().strip()
        legacy = tmp_path / (workdirs.PREFIX + "a1b2c3d4")  # an earlier version's name
        legacy.mkdir()
        killed.send_signal(signal.SIGKILL)
        killed.wait(30)
        assert os.path.isdir(killed_dir), "SIGKILL leaves the folder behind"
        assert workdirs.sweep(str(tmp_path)) == [killed_dir]
        assert not os.path.exists(killed_dir)
        assert os.path.isdir(alive_dir) and legacy.is_dir()
    finally:
        for proc in (killed, alive):
            proc.kill()
            proc.wait(30)
    assert workdirs.sweep(str(tmp_path)) == [alive_dir]


def test_a_process_exiting_without_closing_leaves_nothing(tmp_path: Path) -> None:
    proc = _holder(tmp_path, "sys.exit(3)")
    assert proc.wait(60) == 3
    assert _folders(tmp_path) == []


def _tmp_and_models(tmp_path: Path, count: int) -> tuple[Path, Path]:
    """An empty TMPDIR for the runs and a folder of `count` small pickles."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    models = tmp_path / "models"
    models.mkdir()
    for i in range(count):
        (models / f"m{i}.pkl").write_bytes(SAFE_PICKLE)
    return tmp, models


def test_a_killed_scan_is_cleaned_up_by_the_next_one(tmp_path: Path) -> None:
    """A real CLI run over many files, killed with SIGKILL once its pool made its folder;
    the next run (one file, the forked-worker path) removes what the killed one left."""
    tmp, models = _tmp_and_models(tmp_path, 3000)
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    scan = subprocess.Popen(
        [sys.executable, "-m", "modelaudit", "scan", str(models), "--format", "json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    locked = workdirs.PREFIX + "L"
    try:
        deadline = time.monotonic() + 120
        # (killed between its mkdir and its lock, a run leaves an `N` folder that sweeps
        # leave alone for a minute, as another run's may be one: wait for the locked name)
        while (
            not any(n.startswith(locked) for n in _folders(tmp))
            and scan.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.002)
        scan.send_signal(signal.SIGKILL)
    finally:
        scan.kill()
        scan.wait(60)
    left = _folders(tmp)
    assert left, "the killed run had made its folder and could not remove it"
    one = tmp_path / "one.pkl"
    one.write_bytes(SAFE_PICKLE)
    done = run("scan", str(one), env={"TMPDIR": str(tmp)})
    assert done.returncode == 0, done.stderr
    assert _folders(tmp) == []


def test_finished_runs_leave_nothing(tmp_path: Path) -> None:
    tmp, models = _tmp_and_models(tmp_path, 20)
    for target in (models, models / "m0.pkl"):
        done = run("scan", str(target), env={"TMPDIR": str(tmp)})
        assert done.returncode == 0, done.stderr
        assert _folders(tmp) == []


def test_a_folder_is_never_swept_between_its_making_and_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run's sweep (a real process) lands in the moment after this run made its
    folder and before it locked it: the folder survives, since until locked it has a name
    sweeps leave alone."""
    original = workdirs._lock
    swept: list[str] = []

    def lock_after_a_sweep(path: str, flags: int = 0) -> int | None:
        if not swept:
            code = (
                f"from modelaudit.engine import workdirs; print(workdirs.sweep({str(tmp_path)!r}))"
            )
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
            )
            swept.append(out.stdout.strip())
        return original(path, flags)

    monkeypatch.setattr(workdirs, "_lock", lock_after_a_sweep)
    monkeypatch.setattr(workdirs, "_swept", {str(tmp_path)})
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = workdirs.make()
    try:
        assert swept == ["[]"]
        assert os.path.isdir(path)
        assert _folders(tmp_path) == [os.path.basename(path)]
    finally:
        workdirs.remove(path)


def test_a_folder_left_before_its_lock_is_swept_once_stale(tmp_path: Path) -> None:
    """A run killed between making its folder and locking it leaves a folder under the
    name sweeps leave alone while young; a minute later a sweep takes it."""
    left = tmp_path / (workdirs.PREFIX + "N" + "0123456789abcdef")
    left.mkdir()
    assert workdirs.sweep(str(tmp_path)) == []
    old = time.time() - 120
    os.utime(left, (old, old))
    assert workdirs.sweep(str(tmp_path)) == [str(left)]
    assert not left.exists()
