"""The scan command's head start (cli/head_start.py, engine/prefork.py): as soon as the
command line is parsed, the one-file run's worker (one local file) or the sweep's fork
server (anything else run locally) is forked, imports its side while the CLI imports its
own, and is then adopted or discarded."""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path

import pytest

from modelaudit.cli.early import close_early
from modelaudit.cli.head_start import head_start
from modelaudit.cli.parser import build_parser, with_command
from modelaudit.config import ScanConfig
from modelaudit.engine.direct import OneFileRun, one_local_file
from modelaudit.engine.prefork import Forked

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork: Linux")


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(with_command(["scan", *argv]))


def early_worker(args: argparse.Namespace) -> Forked | None:
    """The head start's worker; a fork server it started instead is stopped (and checked
    gone)."""
    head_start(args)
    if args.fork_server is not None:
        pid = args.fork_server[1]
        close_early(args.fork_server)
        assert _gone(pid)
        assert args.worker is None
    worker: Forked | None = args.worker
    return worker


def _gone(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    return path


@pytest.mark.parametrize(
    "extra",
    [
        ("--cache", "CACHE"),
        ("--shard", "1/2"),
        ("--cluster", "tcp://127.0.0.1:1"),
        ("--max-size", "10"),
        ("SECOND",),
    ],
)
def test_no_head_start_when_the_run_is_a_sweep(
    model: Path, tmp_path: Path, extra: tuple[str, ...]
) -> None:
    (tmp_path / "SECOND").write_bytes(b"{}")
    argv = [str(tmp_path / x) if x in ("CACHE", "SECOND") else x for x in extra]
    assert early_worker(_args(str(model), *argv)) is None


def test_no_head_start_for_a_folder_a_fifo_or_another_worker_start(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert early_worker(_args(str(tmp_path))) is None
    fifo = tmp_path / "pipe.pkl"
    os.mkfifo(fifo)
    assert early_worker(_args(str(fifo))) is None
    monkeypatch.setenv("MODELAUDIT_WORKER_START", "spawn")
    assert early_worker(_args(str(model))) is None
    monkeypatch.setenv("MODELAUDIT_WORKER_START", "auto")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:1")
    assert early_worker(_args(str(model))) is None


def test_the_one_file_run_adopts_the_early_worker(model: Path) -> None:
    worker = early_worker(_args(str(model)))
    assert isinstance(worker, Forked)
    pid = worker.pid
    config = ScanConfig()
    obj = one_local_file([str(model)], config)
    assert obj is not None
    with OneFileRun(obj, config, worker=worker) as run:
        run.start()
        assert run.run is not None and run.run.pid == pid
        assert worker.pid == 0  # handed over: discard() leaves it alone now
        report = run.report(["modelaudit", "scan", str(model)])
    worker.discard()
    assert _gone(pid)
    (fr,) = report.files
    assert fr.status.value == "complete" and fr.format == "pickle" and not fr.issues


def test_a_worker_nobody_adopts_is_killed_and_collected(model: Path) -> None:
    worker = early_worker(_args(str(model)))
    assert worker is not None
    pid = worker.pid
    worker.discard()
    assert worker.pid == 0 and worker.read_fd == worker.write_fd == -1
    assert _gone(pid)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_skipped_file_discards_it(model: Path, tmp_path: Path) -> None:
    """The settings may exclude the one file after the worker was forked: the run reports
    it skipped and the worker does not outlive the run."""
    worker = early_worker(_args(str(model)))
    assert worker is not None
    pid = worker.pid
    config = ScanConfig(exclude=["*.pkl"])
    obj = one_local_file([str(model)], config)
    assert obj is not None and obj.skipped is not None
    with OneFileRun(obj, config, worker=worker) as run:
        report = run.report()
    assert report.files[0].status.value == "skipped"
    assert _gone(pid)


@pytest.mark.parametrize(
    ("extra", "server"),
    [((), True), (("--cache", "CACHE"), True), (("--cluster", "tcp://127.0.0.1:1"), False)],
)
def test_a_sweep_gets_its_fork_server_early(
    tmp_path: Path, extra: tuple[str, ...], server: bool
) -> None:
    (tmp_path / "m.pkl").write_bytes(pickle.dumps([1]))
    argv = [str(tmp_path / x) if x == "CACHE" else x for x in extra]
    args = _args(str(tmp_path), *argv)
    head_start(args)
    assert args.worker is None
    assert (args.fork_server is not None) is server
    if args.fork_server is not None:
        pid = args.fork_server[1]
        close_early(args.fork_server)
        assert _gone(pid)


def test_the_cli_sweeps_with_the_early_fork_server(tmp_path: Path) -> None:
    """End to end, in process: a folder's sweep adopts the head start's fork server and
    leaves no child behind; a config error before the sweep closes it too."""
    import psutil

    from modelaudit.cli import main

    (tmp_path / "m.pkl").write_bytes(pickle.dumps({"w": [1]}))
    before = {p.pid for p in psutil.Process().children()}
    assert main(["scan", str(tmp_path), "--no-progress", "-q"]) == 0
    assert main(["scan", str(tmp_path), "--config", str(tmp_path / "missing.toml")]) == 2
    assert {p.pid for p in psutil.Process().children()} - before == set()
